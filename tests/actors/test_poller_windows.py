"""Drift check windows against a real PostgreSQL: successive checks of one profile tile time, so every record is
judged by exactly one check — a late check, a row committed while a bound is fixed, a record arriving long after its
window (counted as late), and profiles scheduled before the windows existed."""

from __future__ import annotations

import datetime as dt
from typing import Any

import asyncpg
import pytest
import trio
import trio_asyncio

from actors.alert_channel import AlertChannel, open_alert_channel
from actors.database import Database, DatabaseHandle, close_pool, migrate, open_pool
from actors.metrics import ScouterMetrics
from actors.poller import ClaimedCheck, Poller, PollerConfig
from actors.writer import WriterActor, open_inbox, write
from config import DatabaseSettings
from scouter.records import CustomRecord, DecodedBatch
from scouter.sql import MIGRATIONS
from tests.drift_profiles import (
    CUSTOM_COLUMNS,
    PSI_COLUMNS,
    SPC_COLUMNS,
    copy_rows,
    custom_profile,
    insert_profile,
    psi_profile,
    spc_profile,
)

pytestmark = pytest.mark.postgres

ENTITY = ("cap", "model", "1.0.0")
SECOND = dt.timedelta(seconds=1)
HOUR = dt.timedelta(hours=1)

# Every check that moves the bound: the window it read, [old previous_run, new previous_run), and who checked it.
CHECK_LOG = """
CREATE TABLE public.check_log (uid text, window_start timestamptz, window_end timestamptz, worker text);
CREATE FUNCTION public.log_check() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.previous_run IS DISTINCT FROM OLD.previous_run THEN
        INSERT INTO public.check_log VALUES (NEW.uid, OLD.previous_run, NEW.previous_run, OLD.claimed_by);
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER log_check AFTER UPDATE ON scouter.drift_profile FOR EACH ROW EXECUTE FUNCTION public.log_check();
"""


def make_poller(db: Database, metrics: ScouterMetrics, worker: str = "test/poller-0", index: int = 0) -> Poller:
    send, _ = open_alert_channel(100)
    config = PollerConfig(lease=30, check_timeout=10, stagger=0.0, idle_poll=0.2, min_wait=0.05)
    return Poller(worker, DatabaseHandle(db), AlertChannel(send, metrics), metrics, config, index=index)


async def check_due(db: Database, poller: Poller, uid: str) -> str:
    """Make the profile due now and run one check of it."""
    await db.execute("UPDATE scouter.drift_profile SET next_run = now() - interval '1 ms' WHERE uid = $1", uid)
    claimed = await poller.claim()
    assert isinstance(claimed, ClaimedCheck), claimed
    return await poller.check(claimed)


async def alert_count(db: Database) -> int:
    n: int = await db.fetchval("SELECT count(*) FROM scouter.drift_alert")
    return n


def late_records(metrics: ScouterMetrics, drift_type: str) -> float:
    value = metrics.registry.get_sample_value("scouter_drift_late_records_total", {"drift_type": drift_type})
    return value or 0.0


async def test_late_check_judges_a_record_once(db: Database, metrics: ScouterMetrics, now: dt.datetime) -> None:
    """Pollers stopped while a profile became due, one drifting record, pollers started: one alert, not one per
    check that still finds the record after the due time."""
    await db.execute(CHECK_LOG)
    profile = custom_profile({"mae": 1.0}, {"mae": ("Above", None)}, schedule="* * * * * *")
    await db.run(insert_profile, profile, now - 3 * SECOND, now - HOUR)  # due 3 s ago, nobody polling
    await db.run(copy_rows, "custom_drift", CUSTOM_COLUMNS, [(now - SECOND, *ENTITY, "mae", 5.0)])  # after due

    pollers = [make_poller(db, metrics, f"w/poller-{i}", i) for i in range(2)]
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        for poller in pollers:
            nursery.start_soon(poller.run, stop)
        with trio.fail_after(15):
            while await db.fetchval("SELECT count(*) FROM public.check_log") < 3:  # schedule: every second
                await trio.sleep(0.05)
        stop.set()

    assert 1 == await alert_count(db)


@pytest.fixture
async def open_transaction(aio_loop: None, fresh_database_dsn: str) -> Any:
    conn = await trio_asyncio.aio_as_trio(asyncpg.connect)(fresh_database_dsn)
    try:
        yield conn
    finally:
        await trio_asyncio.aio_as_trio(conn.close)()


async def test_row_committed_after_the_bound_is_judged_by_the_next_check_once(
    db: Database, metrics: ScouterMetrics, now: dt.datetime, open_transaction: asyncpg.Connection
) -> None:
    """A transaction holds a row created before the check's bound and commits after the check read: the check
    cannot see it, the next check judges it (and counts it late), the one after that does not judge it again."""
    profile = custom_profile({"mae": 1.0}, {"mae": ("Above", None)})
    uid = await db.run(insert_profile, profile, now - SECOND, now - HOUR)
    writer = open_transaction
    aio = trio_asyncio.aio_as_trio
    await aio(writer.execute)("BEGIN")
    await aio(copy_rows)(writer, "custom_drift", CUSTOM_COLUMNS, [(now - 30 * SECOND, *ENTITY, "mae", 5.0)])
    poller = make_poller(db, metrics)

    assert "clean" == await check_due(db, poller, uid)
    bound = (await db.fetchrow("SELECT previous_run FROM scouter.drift_profile WHERE uid = $1", uid))["previous_run"]
    assert now - 30 * SECOND < bound  # the row is before the bound the first check fixed
    await aio(writer.execute)("COMMIT")

    assert "drift" == await check_due(db, poller, uid)
    assert 1.0 == late_records(metrics, "Custom")
    assert "clean" == await check_due(db, poller, uid)
    assert 1 == await alert_count(db)
    assert 1.0 == late_records(metrics, "Custom")


def _late_row(drift_type: str, created_at: dt.datetime) -> tuple[dict[str, Any], str, tuple[str, ...], list[Any]]:
    """A profile and one record (one row per bin for PSI) that drifts, created at `created_at`."""
    if drift_type == "Spc":
        return spc_profile({"a": (0.0, 1.0)}), "spc_drift", SPC_COLUMNS, [(created_at, *ENTITY, "a", 9.0)]
    if drift_type == "Psi":
        rows = [(created_at, *ENTITY, "a", b, 500 if b == 1 else 0) for b in range(1, 11)]
        return psi_profile({"a": [0.1] * 10}), "psi_drift", PSI_COLUMNS, rows
    return (
        custom_profile({"a": 1.0}, {"a": ("Above", None)}),
        "custom_drift",
        CUSTOM_COLUMNS,
        [(created_at, *ENTITY, "a", 3.0)],
    )


@pytest.mark.parametrize("drift_type", ["Spc", "Psi", "Custom"])
async def test_backlog_record_is_counted_late_and_judged_once(
    db: Database, metrics: ScouterMetrics, now: dt.datetime, drift_type: str
) -> None:
    """A record two days old stored after several checks (a Kafka backlog): judged by the next check, counted as
    late, never judged again."""
    profile, table, columns, rows = _late_row(drift_type, now - 48 * HOUR)
    uid = await db.run(insert_profile, profile, now - SECOND, now - HOUR)
    poller = make_poller(db, metrics)
    assert "clean" == await check_due(db, poller, uid)
    assert "clean" == await check_due(db, poller, uid)
    await db.run(copy_rows, table, columns, rows)

    assert 1 == await db.fetchval("SELECT count(*) FROM scouter.drift_arrivals")  # the late transaction, logged
    assert "drift" == await check_due(db, poller, uid)
    assert float(len(rows)) == late_records(metrics, drift_type)
    assert 0 == await db.fetchval("SELECT count(*) FROM scouter.drift_arrivals")  # pruned by the check that judged
    assert "clean" == await check_due(db, poller, uid)
    assert 1 == await alert_count(db)


async def test_backlog_through_the_writer_is_judged_once(
    db: Database, metrics: ScouterMetrics, now: dt.datetime
) -> None:
    """The same through the writer actor (the path of every transport): its rows carry their transaction."""
    uid = await db.run(insert_profile, custom_profile({"a": 1.0}, {"a": ("Above", None)}), now - SECOND, now - HOUR)
    poller = make_poller(db, metrics)
    assert "clean" == await check_due(db, poller, uid)
    send, receive = open_inbox(10)
    writer = WriterActor(receive, send, DatabaseHandle(db), metrics)
    stop = trio.Event()
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            await nursery.start(writer.run, stop)
            batch = DecodedBatch.from_records([CustomRecord(now - 24 * HOUR, *ENTITY, "a", 3.0)])
            assert (await write(send, batch)).ok
            stop.set()

    assert "drift" == await check_due(db, poller, uid)
    assert 1.0 == late_records(metrics, "Custom")
    assert "clean" == await check_due(db, poller, uid)
    assert 1 == await alert_count(db)


async def test_arrivals_are_logged_for_active_profiles_only(db: Database, now: dt.datetime) -> None:
    """One arrival per statement, entity and transaction of an active profile; none for inactive or unknown ones."""
    for name, active in (("on", True), ("off", False)):
        await db.run(insert_profile, custom_profile({"a": 1.0}, None, name=name), now, now, active)
    rows = [(now - i * SECOND, "cap", name, "1.0.0", "a", 1.0) for name in ("on", "off", "none") for i in range(3)]
    await db.run(copy_rows, "custom_drift", CUSTOM_COLUMNS, rows)
    logged = await db.fetch("SELECT drift_type, name, oldest, rows FROM scouter.drift_arrivals")
    assert [("Custom", "on", now - 2 * SECOND, 3)] == [tuple(r) for r in logged]


async def test_failed_check_keeps_the_bound(db: Database, metrics: ScouterMetrics, now: dt.datetime) -> None:
    """A failed check does not move the bound: its retry reads the same start, so nothing falls between."""
    uid = await db.run(insert_profile, spc_profile({"a": (0.0, 1.0)}, rule="8 16 4"), now - SECOND, now - HOUR)
    poller = make_poller(db, metrics)
    assert "failed" == await check_due(db, poller, uid)
    row = await db.fetchrow("SELECT previous_run, previous_snapshot FROM scouter.drift_profile WHERE uid = $1", uid)
    assert (now - HOUR, None) == (row["previous_run"], row["previous_snapshot"])


async def test_profiles_scheduled_before_the_upgrade_keep_their_bound(
    aio_loop: None, fresh_database_dsn: str, metrics: ScouterMetrics
) -> None:
    """A profile checked by the previous version keeps previous_run as its first bound; rows stored before the
    upgrade are judged by time alone (none counted late), and a record stored after it is judged once."""
    window_migrations = [m for m in MIGRATIONS if 130 <= m.version <= 139]
    assert window_migrations
    before = tuple(m for m in MIGRATIONS if m.version < window_migrations[0].version)
    db = await open_pool(fresh_database_dsn, DatabaseSettings(max_pool_size=4, min_pool_size=1))
    try:
        await migrate(db, before)
        now: dt.datetime = await db.fetchval("SELECT now()")
        profile = custom_profile({"a": 1.0}, {"a": ("Above", None)})
        uid = await db.run(insert_profile, profile, now - SECOND, now - 10 * SECOND)
        old = [(now - HOUR, *ENTITY, "a", 3.0), (now - 5 * SECOND, *ENTITY, "a", 0.5)]
        await db.run(copy_rows, "custom_drift", CUSTOM_COLUMNS, old)
        await migrate(db)

        poller = make_poller(db, metrics)
        assert "clean" == await check_due(db, poller, uid)  # reads [now - 10 s, bound): only the 0.5
        assert 0.0 == late_records(metrics, "Custom")
        await db.run(copy_rows, "custom_drift", CUSTOM_COLUMNS, [(now - 2 * SECOND, *ENTITY, "a", 3.0)])
        assert "drift" == await check_due(db, poller, uid)
        assert "clean" == await check_due(db, poller, uid)
        assert 1 == await alert_count(db)
    finally:
        await close_pool(db)
