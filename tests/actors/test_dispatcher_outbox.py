"""The alert dispatcher's outbox in a real PostgreSQL: a poller's notice wakes an idle dispatcher, finished
deliveries are purged after the retention, and the migration leaves alerts stored before dispatch existed out."""

from __future__ import annotations

import datetime as dt

import pytest
import trio

from actors.alert_channel import AlertNotice, StoredAlert, open_alert_channel
from actors.database import Database, DatabaseHandle, close_pool, migrate, open_pool
from actors.dispatcher import Dispatcher
from actors.metrics import ScouterMetrics
from config import DatabaseSettings
from scouter.profiles import ConsoleDispatch
from scouter.sql import MIGRATIONS
from tests.drift_profiles import insert_profile, spc_profile

from .dispatch_support import (
    ENTITY,
    HOUR,
    WEBHOOK_PATH,
    dispatch_settings,
    running,
    seed_custom_messages,
    store_alerts,
)
from .fake_channel import FakeChannel

pytestmark = pytest.mark.postgres


async def test_a_notice_wakes_an_idle_dispatcher(
    db: Database, metrics: ScouterMetrics, channel: tuple[FakeChannel, str], now: dt.datetime
) -> None:
    """With a 30 s poll interval, a poller's notice gets the alert sent at once; dropped notices only cost the
    poll interval (every other test here sends none)."""
    server, base = channel
    send, notices = open_alert_channel(10)
    settings = dispatch_settings(base, webhook_url=f"{base}{WEBHOOK_PATH}", poll=30.0)
    await db.run(insert_profile, spc_profile({"f": (0.0, 1.0)}), now, None)
    dispatcher = Dispatcher(DatabaseHandle(db), settings, metrics, notices, console=lambda _: None)

    async with running(dispatcher):
        await trio.sleep(0.3)  # idle, waiting
        (alert_id,) = await store_alerts(db, "Spc", [{"entity_name": "f", "kind": "Out of bounds", "zone": "Zone 4"}])
        stored = StoredAlert(alert_id, now, {"entity_name": "f"})
        send.send_nowait(AlertNotice("uid", *ENTITY, "Spc", ConsoleDispatch(True), (stored,)))
        await server.wait_for(1, within=2.0)

    assert 1 == dispatcher.statistics().notices


async def test_purge_removes_old_finished_deliveries(
    db: Database, metrics: ScouterMetrics, channel: tuple[FakeChannel, str], now: dt.datetime
) -> None:
    """Finished deliveries older than the retention go; pending ones and recent ones stay."""
    _, base = channel
    await seed_custom_messages(db, now, 3)
    dispatcher = Dispatcher(DatabaseHandle(db), dispatch_settings(base, retention_days=30), metrics)
    await dispatcher.plan_once()
    await db.execute(
        "UPDATE scouter.alert_delivery SET state = CASE WHEN id % 3 = 0 THEN 'pending' ELSE 'sent' END,"
        " updated_at = now() - interval '31 days' WHERE id <= 4"
    )
    before = {r["id"]: r["state"] for r in await db.fetch("SELECT id, state FROM scouter.alert_delivery")}

    await dispatcher._maybe_purge()

    after = {r["id"] for r in await db.fetch("SELECT id FROM scouter.alert_delivery")}
    expected = {i for i, state in before.items() if i > 4 or state == "pending"}
    assert expected == after


async def test_migration_skips_alerts_stored_before_dispatch_existed(aio_loop: None, fresh_database_dsn: str) -> None:
    """Alerts stored before migration 20 are 'skipped' (no backlog flood at upgrade); new ones are 'pending' and
    carry the start of their check's window, copied from the profile's previous_run."""
    database = await open_pool(fresh_database_dsn, DatabaseSettings(max_pool_size=2, min_pool_size=1))
    try:
        await migrate(database, tuple(m for m in MIGRATIONS if m.version < 20))
        await store_alerts(database, "Spc", [{"entity_name": "f", "kind": "Out of bounds", "zone": "Zone 4"}])
        await migrate(database)
        previous = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
        await database.run(insert_profile, spc_profile({"f": (0.0, 1.0)}), previous + HOUR, previous)
        await store_alerts(database, "Spc", [{"entity_name": "f", "kind": "Out of bounds", "zone": "Zone 4"}])
        await store_alerts(database, "Spc", [{"entity_name": "f", "kind": "Trend", "zone": "NA"}], ("x", "y", "z"))

        rows = await database.fetch("SELECT id, dispatch_state, window_start FROM scouter.drift_alert ORDER BY id")
    finally:
        await close_pool(database)

    assert [(1, "skipped", None), (2, "pending", previous), (3, "pending", None)] == [tuple(r) for r in rows]
