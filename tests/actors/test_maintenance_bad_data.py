"""Partition maintenance never dies on stored data, and never drops a row committed while it decides to drop."""

from __future__ import annotations

import datetime
from collections.abc import AsyncIterator

import asyncpg
import pytest
import trio
from prometheus_client import CollectorRegistry
from trio_asyncio import aio_as_trio

from actors.database import Database, DatabaseHandle
from actors.maintenance import MaintenanceActor
from actors.metrics import ScouterMetrics

pytestmark = pytest.mark.postgres

UTC = datetime.UTC
TODAY = datetime.date(2026, 12, 7)


async def _spc_rows(db: Database, stamps: list[str], *, archived: bool = False) -> None:
    """Rows stored with SQL literals, as the decoder before the created_at bound let them through."""
    await db.execute(
        "INSERT INTO scouter.spc_drift (created_at, space, name, version, feature, value, archived)"
        " SELECT s::timestamptz, 'sp', 'nm', '1', 'f', 1.0, $2 FROM unnest($1::text[]) AS s",
        stamps,
        archived,
    )


async def _partitions(db: Database, table: str) -> set[str]:
    rows = await db.fetch(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        " JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = $1",
        table,
    )
    return {r["relname"] for r in rows}


async def test_hostile_created_at_rows_never_stop_maintenance(db: Database) -> None:
    """Rows of 9999-12-31, infinity, -infinity, 0001-01-01 and 300 distinct future days in the default partition
    (stored before the decoder bounded created_at): a round completes, creates partitions only for the bounded range
    around today (moving the one stranded row inside it), leaves the odd rows in the default partition, and reports
    them in its report, its log and a gauge."""
    future = [f"{TODAY + datetime.timedelta(days=10 + d)}T12:00:00Z" for d in range(300)]
    odd = ["9999-12-31T10:00:00Z", "infinity", "-infinity", "0001-01-01T00:00:00Z", *future]
    stranded = f"{TODAY - datetime.timedelta(days=2)}T08:00:00Z"
    await _spc_rows(db, [*odd, stranded])
    metrics = ScouterMetrics.create(CollectorRegistry(), process=False)
    actor = MaintenanceActor(DatabaseHandle(db), today=lambda: TODAY, days_ahead=4, metrics=metrics)
    with trio.fail_after(60):
        report = await actor.run_once()
    expected = {f"spc_drift_p{TODAY + datetime.timedelta(days=d):%Y%m%d}" for d in (-2, -1, 0, 1, 2, 3, 4)}
    assert expected | {"spc_drift_default"} == await _partitions(db, "spc_drift")
    assert 1 == await db.fetchval("SELECT count(*) FROM scouter.spc_drift_p20261205")
    assert len(odd) == await db.fetchval("SELECT count(*) FROM scouter.spc_drift_default")
    assert ("spc_drift", len(odd)) in report.outside_range
    gauge = metrics.registry.get_sample_value("scouter_partition_default_rows", {"table": "spc_drift"})
    assert len(odd) == gauge
    with trio.fail_after(60):
        again = await actor.run_once()  # and the next round too
    assert () == again.created


async def _hold_late_row(dsn: str, day: datetime.date) -> asyncpg.Connection:
    conn = await asyncpg.connect(dsn)
    await conn.execute("BEGIN")
    await conn.execute(
        "INSERT INTO scouter.spc_drift (created_at, space, name, version, feature, value)"
        " VALUES ($1, 'sp', 'nm', '1', 'late', 1.0)",
        datetime.datetime(day.year, day.month, day.day, 9, tzinfo=UTC),
    )
    return conn


async def _commit_and_close(conn: asyncpg.Connection) -> None:
    await conn.execute("COMMIT")
    await conn.close()


@pytest.fixture
async def late_writer(fresh_database_dsn: str) -> AsyncIterator[list[asyncpg.Connection]]:
    conns: list[asyncpg.Connection] = []
    yield conns
    for conn in conns:
        if not conn.is_closed():
            await aio_as_trio(conn.close)()


async def test_a_late_row_committed_while_maintenance_drops_is_kept(
    db: Database, fresh_database_dsn: str, late_writer: list[asyncpg.Connection]
) -> None:
    """A partition past retention whose rows are all archived is about to be dropped; a writer's transaction
    holding a late, unarchived row for that day commits while maintenance is between its check and the drop (it
    waits on the writer's lock: the interleaving is fixed by watching pg_locks). The row is acknowledged, so the
    partition must be kept, with the row in it."""
    actor = MaintenanceActor(DatabaseHandle(db), today=lambda: datetime.date(2026, 6, 1), days_ahead=1)
    await actor.run_once()  # today's partitions exist: the round below creates nothing and waits only to drop
    await MaintenanceActor(DatabaseHandle(db), today=lambda: datetime.date(2026, 3, 2), days_ahead=1).run_once()
    old = datetime.date(2026, 3, 1)  # the first partition the round below considers dropping
    await _spc_rows(db, [f"{old}T10:00:00Z"], archived=True)
    late = await aio_as_trio(_hold_late_row)(fresh_database_dsn, old)
    late_writer.append(late)
    reports = []
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(lambda: _collect(actor, reports))
            while not await db.fetchval(
                "SELECT EXISTS (SELECT 1 FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
                " WHERE NOT l.granted AND a.datname = current_database() AND a.application_name = 'scouter-py')"
            ):
                await trio.sleep(0.05)
            await aio_as_trio(_commit_and_close)(late)
    (report,) = reports
    assert "spc_drift_p20260301" in report.kept_unarchived
    assert "spc_drift_p20260301" not in report.dropped
    assert 1 == await db.fetchval("SELECT count(*) FROM scouter.spc_drift WHERE feature = 'late'")


async def _collect(actor: MaintenanceActor, reports: list[object]) -> None:
    reports.append(await actor.run_once())


async def test_default_rows_past_retention_are_deleted_once_archived(db: Database) -> None:
    """Rows older than the table's retention get no partition: they wait in the default partition, unarchived ones
    are kept, archived ones are deleted (what dropping their partition would have done)."""
    old = f"{TODAY - datetime.timedelta(days=100)}T08:00:00Z"
    await _spc_rows(db, [old])
    await _spc_rows(db, [old, old], archived=True)
    report = await MaintenanceActor(DatabaseHandle(db), today=lambda: TODAY, days_ahead=1).run_once()
    assert ("spc_drift", 2) in report.purged
    assert ("spc_drift", 1) in report.outside_range
    assert [False] == [r["archived"] for r in await db.fetch("SELECT archived FROM scouter.spc_drift_default")]
    assert not any(name.endswith(f"{TODAY - datetime.timedelta(days=100):%Y%m%d}") for name in report.created)
