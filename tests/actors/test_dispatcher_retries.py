"""The alert dispatcher against a real PostgreSQL and a fake channel server on 127.0.0.1 (wall clock): retries with
backoff and Retry-After, permanent failures, giving up, and a failing channel that does not resend the others."""

from __future__ import annotations

import datetime as dt

import pytest
import trio

from actors.database import Database, DatabaseHandle
from actors.dispatcher import Dispatcher
from actors.metrics import ScouterMetrics
from tests.drift_profiles import insert_profile, spc_profile

from .dispatch_support import (
    OPSGENIE_PATH,
    SLACK_PATH,
    WEBHOOK_PATH,
    alert_states,
    dispatch_settings,
    running,
    sample,
    settled,
    store_alerts,
    with_dispatch,
)
from .fake_channel import FakeChannel, Reply

pytestmark = pytest.mark.postgres


async def test_500_429_and_timeout_are_retried_with_backoff(
    db: Database, metrics: ScouterMetrics, channel: tuple[FakeChannel, str], now: dt.datetime
) -> None:
    """500, then 429 with Retry-After: 1, then no answer within the timeout, then 200: four identical requests,
    spaced by the backoff, the Retry-After and the timeout; recorded as sent after 4 attempts."""
    server, base = channel
    await db.run(insert_profile, with_dispatch(spc_profile({"f": (0.0, 1.0)}), {"Slack": {"channel": "#x"}}), now, None)
    await store_alerts(db, "Spc", [{"entity_name": "f", "kind": "Out of bounds", "zone": "Zone 4"}])
    server.script(
        SLACK_PATH,
        Reply(500, body=b'{"error": "boom"}'),
        Reply(429, {"Retry-After": "1"}, b'{"ok": false, "error": "ratelimited"}'),
        Reply(200, delay=1.5),  # the dispatcher gives up after 0.5 s
    )

    async with running(Dispatcher(DatabaseHandle(db), dispatch_settings(base), metrics)):
        (delivery,) = await settled(db, 1)
    at = [r.at for r in server.requests]

    assert 4 == len(server.requests)
    assert 1 == len({r.body for r in server.requests})
    assert at[1] - at[0] >= 0.025  # first backoff: between half and all of 0.05 s
    assert at[2] - at[1] >= 1.0  # Retry-After
    assert at[3] - at[2] >= 0.5 + 0.05  # the timeout, then the third backoff (half of 0.2 s at least)
    assert ("sent", 4, 200) == (delivery["state"], delivery["attempts"], delivery["last_status"])
    assert 3.0 == sample(metrics, "scouter_alerts_dispatch_retried_total", channel="slack")
    assert 1.0 == sample(metrics, "scouter_alerts_dispatched_total", channel="slack")


async def test_400_is_recorded_as_failed_with_its_reason(
    db: Database, metrics: ScouterMetrics, channel: tuple[FakeChannel, str], now: dt.datetime
) -> None:
    """A 400 is final: one request, the delivery and its alert 'failed', the status and body excerpt recorded."""
    server, base = channel
    await db.run(
        insert_profile,
        with_dispatch(spc_profile({"f": (0.0, 1.0)}), {"OpsGenie": {"team": "t", "priority": "P5"}}),
        now,
        None,
    )
    await store_alerts(db, "Spc", [{"entity_name": "f", "kind": "Out of bounds", "zone": "Zone 4"}])
    server.script(OPSGENIE_PATH, Reply(400, body=b'{"message": "Request body is not processable"}'))

    async with running(Dispatcher(DatabaseHandle(db), dispatch_settings(base), metrics)):
        (delivery,) = await settled(db, 1)
        await trio.sleep(0.3)  # a retry would come within this

    assert 1 == len(server.requests)
    assert ("failed", 1, 400) == (delivery["state"], delivery["attempts"], delivery["last_status"])
    assert 'HTTP 400: {"message": "Request body is not processable"}' == delivery["last_error"]
    assert ["failed"] == list((await alert_states(db)).values())
    assert 1.0 == sample(metrics, "scouter_alerts_dispatch_failed_total", channel="opsgenie", reason="rejected")


async def test_slack_ok_false_is_a_failure(
    db: Database, metrics: ScouterMetrics, channel: tuple[FakeChannel, str], now: dt.datetime
) -> None:
    """Slack answers errors with 200 and ``"ok": false``: channel_not_found is recorded as failed, not sent."""
    server, base = channel
    await db.run(
        insert_profile, with_dispatch(spc_profile({"f": (0.0, 1.0)}), {"Slack": {"channel": "#gone"}}), now, None
    )
    await store_alerts(db, "Spc", [{"entity_name": "f", "kind": "Out of bounds", "zone": "Zone 4"}])
    server.script(SLACK_PATH, Reply(200, body=b'{"ok": false, "error": "channel_not_found"}'))

    async with running(Dispatcher(DatabaseHandle(db), dispatch_settings(base), metrics)):
        (delivery,) = await settled(db, 1)

    assert ("failed", "Slack answered ok=false: channel_not_found") == (delivery["state"], delivery["last_error"])
    assert 1 == len(server.requests)


async def test_gives_up_after_max_attempts(
    db: Database, metrics: ScouterMetrics, channel: tuple[FakeChannel, str], now: dt.datetime
) -> None:
    """A channel that keeps answering 503: exactly max_attempts requests, then 'failed' naming the last error."""
    server, base = channel
    server.default = Reply(503, body=b"upstream unavailable")
    await db.run(insert_profile, with_dispatch(spc_profile({"f": (0.0, 1.0)}), {"Slack": {"channel": "#x"}}), now, None)
    await store_alerts(db, "Spc", [{"entity_name": "f", "kind": "Out of bounds", "zone": "Zone 4"}])

    async with running(Dispatcher(DatabaseHandle(db), dispatch_settings(base, max_attempts=3), metrics)):
        (delivery,) = await settled(db, 1)
        await trio.sleep(0.3)

    assert 3 == len(server.requests)
    assert ("failed", 3) == (delivery["state"], delivery["attempts"])
    assert "gave up after 3 attempts; last: HTTP 503: upstream unavailable" == delivery["last_error"]
    assert 1.0 == sample(metrics, "scouter_alerts_dispatch_failed_total", channel="slack", reason="gave_up")
    assert 2.0 == sample(metrics, "scouter_alerts_dispatch_retried_total", channel="slack")


async def test_a_failing_channel_does_not_resend_the_others(
    db: Database, metrics: ScouterMetrics, channel: tuple[FakeChannel, str], now: dt.datetime
) -> None:
    """Slack succeeds, the webhook fails twice then succeeds: Slack got the message once, the webhook three times,
    and the alert is 'sent' only when both are."""
    server, base = channel
    await db.run(insert_profile, with_dispatch(spc_profile({"f": (0.0, 1.0)}), {"Slack": {"channel": "#x"}}), now, None)
    await store_alerts(db, "Spc", [{"entity_name": "f", "kind": "Out of bounds", "zone": "Zone 4"}])
    server.script(WEBHOOK_PATH, Reply(502), Reply(504))

    settings = dispatch_settings(base, webhook_url=f"{base}{WEBHOOK_PATH}")
    async with running(Dispatcher(DatabaseHandle(db), settings, metrics)):
        await settled(db, 2)

    assert (1, 3) == (len(server.to(SLACK_PATH)), len(server.to(WEBHOOK_PATH)))
    assert ["sent"] == list((await alert_states(db)).values())
