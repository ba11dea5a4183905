"""Schema migrations and daily partitions against a real PostgreSQL."""

from __future__ import annotations

import datetime

import trio

from actors.database import Database, DatabaseHandle, close_pool, migrate, open_pool
from actors.maintenance import MaintenanceActor
from config import DatabaseSettings
from scouter.sql import MIGRATIONS

UTC = datetime.UTC


def at(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text).replace(tzinfo=UTC)


async def partition_of(db: Database, table: str, moment: datetime.datetime) -> list[str]:
    rows = await db.fetch(f"SELECT tableoid::regclass::text AS part FROM scouter.{table} WHERE created_at = $1", moment)
    return [r["part"] for r in rows]


async def insert_spc(db: Database, moment: datetime.datetime, feature: str = "f", archived: bool = False) -> None:
    await db.execute(
        "INSERT INTO scouter.spc_drift (created_at, space, name, version, feature, value, archived)"
        " VALUES ($1, 's', 'n', '1', $2, 1.0, $3)",
        moment, feature, archived,
    )  # fmt: skip


async def test_migrations_apply_once_and_rerun_is_a_no_op(db: Database) -> None:
    """From empty every migration applies once; a second run applies nothing and changes nothing."""
    versions = [r["version"] for r in await db.fetch("SELECT version FROM scouter.schema_migrations ORDER BY 1")]
    assert [m.version for m in MIGRATIONS] == versions
    assert [] == await migrate(db)
    tables = {
        r["relname"]
        for r in await db.fetch(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'scouter' AND c.relkind IN ('r', 'p')"
        )
    }
    expected = {
        "drift_profile",
        "spc_drift",
        "psi_drift",
        "custom_drift",
        "drift_alert",
        "observability_metric",
        "user",
        "consumer_offsets",
        "quarantine",
        "archive_log",
        "schema_migrations",
        "ingested_messages",
    }
    assert expected <= tables


async def test_replicas_migrating_at_once_take_turns(aio_loop: None, fresh_database_dsn: str) -> None:
    """Three pools migrating the same empty database concurrently: each migration is applied exactly once."""
    settings = DatabaseSettings(max_pool_size=2, min_pool_size=1)
    pools = [await open_pool(fresh_database_dsn, settings) for _ in range(3)]
    applied: list[list[int]] = []
    try:
        async with trio.open_nursery() as nursery:
            for pool in pools:
                nursery.start_soon(lambda p=pool: _collect(applied, p))
    finally:
        for pool in pools:
            await close_pool(pool)
    assert sorted(m.version for m in MIGRATIONS) == sorted(v for run in applied for v in run)


async def _collect(applied: list[list[int]], db: Database) -> None:
    applied.append(await migrate(db))


async def test_partitions_cover_day_and_month_boundaries(db: Database) -> None:
    """Rows either side of midnight and of a month end land in their own day's partition."""
    actor = MaintenanceActor(DatabaseHandle(db), today=lambda: datetime.date(2026, 1, 31), days_ahead=4)
    report = await actor.run_once()
    assert "spc_drift:2026-01-30" in report.created
    assert "spc_drift:2026-02-04" in report.created
    await insert_spc(db, at("2026-01-31 23:59:59.999999"))
    await insert_spc(db, at("2026-02-01 00:00:00"))
    assert ["scouter.spc_drift_p20260131"] == await partition_of(db, "spc_drift", at("2026-01-31 23:59:59.999999"))
    assert ["scouter.spc_drift_p20260201"] == await partition_of(db, "spc_drift", at("2026-02-01 00:00:00"))
    assert () == (await actor.run_once()).created  # idempotent


async def test_rows_before_their_partition_exists_are_kept_and_moved(db: Database) -> None:
    """A row for a day without a partition never fails: it waits in the default partition, and the next
    maintenance round creates that day's partition and moves it there (across a year boundary here), as long as
    the day is within the table's retention (older days get no partition: see test_maintenance_bad_data)."""
    actor = MaintenanceActor(DatabaseHandle(db), today=lambda: datetime.date(2026, 1, 1), days_ahead=1)
    await actor.run_once()
    old = at("2025-12-20 12:00:00")
    await insert_spc(db, old, "early")
    assert ["scouter.spc_drift_default"] == await partition_of(db, "spc_drift", old)
    report = await actor.run_once()
    assert "spc_drift:2025-12-20" in report.created
    assert ["scouter.spc_drift_p20251220"] == await partition_of(db, "spc_drift", old)
    assert 0 == await db.fetchval("SELECT count(*) FROM scouter.spc_drift_default")


async def test_rows_moved_out_of_the_default_partition_are_not_rolled_up_again(db: Database) -> None:
    """Rows were added to their minute and hourly rollups when they were stored (in the default partition, their
    day having no partition yet); the round that creates the partition and moves them there leaves the rollups as
    they were: still equal to the rows, not counting them twice."""
    actor = MaintenanceActor(DatabaseHandle(db), today=lambda: datetime.date(2026, 1, 1), days_ahead=1)
    await actor.run_once()
    for second in range(3):
        await insert_spc(db, at(f"2025-12-20 12:00:0{second}"), "early")

    async def rollups() -> list[tuple[str, int]]:
        return [
            (table, await db.fetchval(f"SELECT sum(count) FROM scouter.{table} WHERE feature = 'early'"))
            for table in ("spc_rollup", "spc_rollup_hour")
        ]

    assert [("spc_rollup", 3), ("spc_rollup_hour", 3)] == await rollups()
    assert "spc_drift:2025-12-20" in (await actor.run_once()).created
    assert [("spc_rollup", 3), ("spc_rollup_hour", 3)] == await rollups()


async def test_old_partitions_are_dropped_only_when_archived(db: Database) -> None:
    """Past retention: an archived or empty partition is dropped; one holding unarchived rows is kept."""
    then = MaintenanceActor(DatabaseHandle(db), today=lambda: datetime.date(2026, 3, 2), days_ahead=1)
    await then.run_once()  # partitions 03-01 .. 03-03
    await insert_spc(db, at("2026-03-01 10:00:00"), "not archived")
    await insert_spc(db, at("2026-03-02 10:00:00"), "archived", archived=True)
    now = MaintenanceActor(DatabaseHandle(db), today=lambda: datetime.date(2026, 6, 1), days_ahead=1)
    report = await now.run_once()
    assert "spc_drift_p20260301" in report.kept_unarchived
    assert {"spc_drift_p20260302", "spc_drift_p20260303"} <= set(report.dropped)
    assert "spc_drift_p20260301" not in report.dropped
    assert 1 == await db.fetchval("SELECT count(*) FROM scouter.spc_drift WHERE feature = 'not archived'")
    assert 0 == await db.fetchval("SELECT count(*) FROM scouter.spc_drift WHERE feature = 'archived'")
    # observability rows are never archived: past its 60 days the partition simply goes
    assert "observability_metric_p20260301" in report.dropped
    # alerts keep 365 days
    assert not any(p.startswith("drift_alert") for p in report.dropped)


async def test_maintenance_rounds_of_two_replicas_do_not_collide(db: Database) -> None:
    """Two replicas running maintenance at once: no error, every partition exists once."""
    actors = [MaintenanceActor(DatabaseHandle(db), today=lambda: datetime.date(2026, 7, 1)) for _ in range(2)]
    async with trio.open_nursery() as nursery:
        for actor in actors:
            nursery.start_soon(actor.run_once)
    count = await db.fetchval(
        "SELECT count(*) FROM pg_class WHERE relkind = 'r'"
        " AND (relname LIKE 'spc_drift_p202607%' OR relname = 'spc_drift_p20260630')"
    )
    assert 6 == count  # 06-30 .. 07-05
