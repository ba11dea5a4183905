"""The alert dispatcher against a real PostgreSQL and a fake channel server on 127.0.0.1 (wall clock): each message
sent exactly once across kills and restarts, a dead dispatcher's expired leases, and two replicas sharing the work."""

from __future__ import annotations

import datetime as dt
import random
from collections import Counter

import pytest
import trio

from actors._dispatch_outbox import claim_due
from actors.database import Database, DatabaseHandle
from actors.dispatcher import Dispatcher
from actors.metrics import ScouterMetrics
from tests.drift_profiles import insert_profile, spc_profile

from .dispatch_support import (
    WEBHOOK_PATH,
    alert_states,
    dispatch_settings,
    running,
    sample,
    seed_custom_messages,
    settled,
    store_alerts,
)
from .fake_channel import FakeChannel, Reply

pytestmark = pytest.mark.postgres


async def unfinished(db: Database) -> bool:
    """Nothing planned yet, or some delivery still pending."""
    states = [r["state"] for r in await db.fetch("SELECT state FROM scouter.alert_delivery")]
    return not states or "pending" in states


async def test_killed_and_restarted_dispatcher_sends_each_message_once(
    db: Database, metrics: ScouterMetrics, channel: tuple[FakeChannel, str], now: dt.datetime
) -> None:
    """A dispatcher cancelled again and again while requests are in flight (the channel answers slowly), restarted
    each time: every message reaches the webhook and the console exactly once."""
    server, base = channel
    server.default = Reply(200, delay=0.15)
    keys = await seed_custom_messages(db, now, 12)
    settings = dispatch_settings(base, webhook_url=f"{base}{WEBHOOK_PATH}", concurrency=3)
    console: list[str] = []
    rng = random.Random(8)
    kills = 0

    with trio.fail_after(60):
        while await unfinished(db):
            dispatcher = Dispatcher(DatabaseHandle(db), settings, metrics, console=console.append)
            async with trio.open_nursery() as nursery:
                await nursery.start(dispatcher.run, trio.Event())
                await trio.sleep(rng.uniform(0.05, 0.4))
                in_flight = sum(1 for r in server.requests if not r.answered.is_set())
                kills += in_flight > 0
                started = trio.current_time()
                nursery.cancel_scope.cancel(reason="kill")  # a crash of the actor, not a polite stop
            assert trio.current_time() - started < settings.timeout + 1  # in-flight sends finish, then it dies

    assert kills >= 2  # the loop really killed dispatchers with requests in flight
    assert Counter(keys) == Counter(r.headers["x-scouter-delivery"] for r in server.requests)
    assert 12 == len(console)
    assert 12 == len({text.split("Alert IDs: ")[1].split(" ")[0] for text in console})
    assert {"sent"} == set((await alert_states(db)).values())


async def test_a_dead_dispatchers_deliveries_are_sent_when_its_lease_expires(
    db: Database, metrics: ScouterMetrics, channel: tuple[FakeChannel, str], now: dt.datetime
) -> None:
    """Deliveries claimed by a dispatcher that died before recording anything (its process was killed): another
    dispatcher takes them over once the lease expires, and counts the take-over."""
    server, base = channel
    keys = await seed_custom_messages(db, now, 3)
    settings = dispatch_settings(base, webhook_url=f"{base}{WEBHOOK_PATH}", lease=1.5)
    planner = Dispatcher(DatabaseHandle(db), settings, metrics)
    await planner.plan_once()
    dead = await db.run(claim_due, 10, 1.5, "dead-host:1/dispatcher", [])
    assert 6 == len(dead)  # console and webhook for each message
    started = trio.current_time()

    async with running(Dispatcher(DatabaseHandle(db), settings, metrics, console=lambda _: None)):
        await settled(db, 6)

    assert trio.current_time() - started >= 1.0  # not before the lease ran out
    assert sorted(keys) == sorted(r.headers["x-scouter-delivery"] for r in server.requests)
    assert 6.0 == sample(metrics, "scouter_alert_deliveries_reclaimed_total")


async def test_two_dispatchers_share_the_work(
    db: Database, metrics: ScouterMetrics, channel: tuple[FakeChannel, str], now: dt.datetime
) -> None:
    """Two replicas' dispatchers on one database: ten SPC checks of two features become ten webhook messages of two
    alerts each, every one sent once."""
    server, base = channel
    server.default = Reply(200, delay=0.02)
    await db.run(insert_profile, spc_profile({"a": (0.0, 1.0), "b": (0.0, 1.0)}), now, None)
    for _ in range(10):
        await store_alerts(
            db,
            "Spc",
            [
                {"entity_name": "a", "kind": "Out of bounds", "zone": "Zone 4"},
                {"entity_name": "b", "kind": "Consecutive", "zone": "Zone 1"},
            ],
        )
    settings = dispatch_settings(base, webhook_url=f"{base}{WEBHOOK_PATH}", concurrency=2)
    first = Dispatcher(DatabaseHandle(db), settings, metrics, worker_id="a", console=lambda _: None)
    second = Dispatcher(DatabaseHandle(db), settings, metrics, worker_id="b", console=lambda _: None)

    async with running(first), running(second):
        deliveries = await settled(db, 20)

    hooks = server.to(WEBHOOK_PATH)
    assert 10 == len(hooks) == len({h.headers["x-scouter-delivery"] for h in hooks})
    assert all(2 == len(h.json()["alerts"]) for h in hooks)
    assert 20 == len(deliveries)
    assert first.statistics().sent > 0
    assert second.statistics().sent > 0
