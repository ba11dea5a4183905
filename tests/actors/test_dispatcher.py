"""The alert dispatcher against a real PostgreSQL and a fake channel server on 127.0.0.1 (wall clock): request bodies
field by field, retries with backoff and Retry-After, permanent failures, fan-out, and each message sent exactly once
across kills, restarts and replicas."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import hmac
import logging
import random
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from typing import Any

import asyncpg
import orjson
import pytest
import trio

from actors._dispatch_outbox import claim_due
from actors.alert_channel import AlertChannel, AlertNotice, StoredAlert, open_alert_channel
from actors.database import Database, DatabaseHandle, close_pool, migrate, open_pool
from actors.dispatcher import Dispatcher
from actors.metrics import ScouterMetrics
from actors.poller import Poller, PollerConfig
from config import DatabaseSettings, DispatchSettings
from scouter.binned import rfc3339
from scouter.profiles import ConsoleDispatch
from scouter.sql import INSERT_ALERTS, MIGRATIONS
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

from .fake_channel import FakeChannel, Reply

pytestmark = pytest.mark.postgres

ENTITY = ("cap", "model", "1.0.0")
SECOND = dt.timedelta(seconds=1)
HOUR = dt.timedelta(hours=1)
SLACK_TOKEN = "xoxb-test-token-0123"
OPSGENIE_KEY = "genie-key-0123"
ROUTING_KEY = "pd-routing-key-0123"
WEBHOOK_SECRET = "webhook-secret-0123"
WEBHOOK_PATH = "/hooks/s3cr3t-path-0123"
SLACK_PATH = "/api/chat.postMessage"
OPSGENIE_PATH = "/v2/alerts"
PAGERDUTY_PATH = "/v2/enqueue"
SECTION_7_HEADER = {
    "type": "header",
    "text": {"type": "plain_text", "text": ":rotating_light: Drift Detected :rotating_light:", "emoji": True},
}


def dispatch_settings(base: str, **overrides: Any) -> DispatchSettings:
    """Short timings; Slack and OpsGenie configured against the fake channel."""
    values: dict[str, Any] = {
        "slack_app_token": SLACK_TOKEN,
        "slack_api_url": f"{base}/api",
        "opsgenie_api_key": OPSGENIE_KEY,
        "opsgenie_api_url": f"{base}{OPSGENIE_PATH}",
        "timeout": 0.5,
        "max_attempts": 5,
        "backoff": 0.05,
        "backoff_max": 0.2,
        "lease": 3.0,
        "concurrency": 4,
        "poll": 0.1,
        **overrides,
    }
    return DispatchSettings(**values)


@pytest.fixture
async def channel() -> AsyncIterator[tuple[FakeChannel, str]]:
    """The fake channel server and its base URL."""
    server = FakeChannel()
    async with trio.open_nursery() as nursery:
        base = await nursery.start(server.serve)
        yield server, base
        nursery.cancel_scope.cancel(reason="test over")


@contextlib.asynccontextmanager
async def running(dispatcher: Dispatcher) -> AsyncIterator[None]:
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        await nursery.start(dispatcher.run, stop)
        try:
            yield
        finally:
            stop.set()


def with_dispatch(profile: dict[str, Any], dispatch: dict[str, Any]) -> dict[str, Any]:
    profile["config"]["alert_config"]["dispatch_config"] = dispatch
    return profile


async def _store(conn: asyncpg.Connection, entity: Sequence[str], drift_type: str, maps: str) -> list[int]:
    rows = await conn.fetch(INSERT_ALERTS, *entity, drift_type, maps)
    return [r["id"] for r in rows]


async def store_alerts(
    db: Database, drift_type: str, maps: list[dict[str, str]], entity: Sequence[str] = ENTITY
) -> list[int]:
    """Store the alerts of one check as the poller does (one statement, one transaction); returns their ids."""
    ids: list[int] = await db.run(_store, entity, drift_type, orjson.dumps(maps).decode(), transaction=True)
    return ids


async def settled(db: Database, count: int, within: float = 15.0) -> list[dict[str, Any]]:
    """Wait until `count` deliveries exist and none is pending; returns them in id order."""
    with trio.fail_after(within):
        while True:
            rows = [dict(r) for r in await db.fetch("SELECT * FROM scouter.alert_delivery ORDER BY id")]
            if len(rows) >= count and all(r["state"] != "pending" for r in rows):
                return rows
            await trio.sleep(0.05)


async def alert_states(db: Database) -> dict[int, str]:
    rows = await db.fetch("SELECT id, dispatch_state FROM scouter.drift_alert ORDER BY id")
    return {r["id"]: r["dispatch_state"] for r in rows}


def sample(metrics: ScouterMetrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


def custom_map(metric: str, training: str, observed: str, margin: str, condition: str) -> dict[str, str]:
    return {
        "entity_name": metric,
        "training_metric_value": training,
        "observed_metric_value": observed,
        "alert_threshold_value": margin,
        "alert_threshold": condition,
    }


# --- message bodies -------------------------------------------------------------------------------------------------


async def test_spc_check_becomes_one_slack_message(
    db: Database, metrics: ScouterMetrics, channel: tuple[FakeChannel, str], now: dt.datetime
) -> None:
    """A poller's SPC check with two out-of-bounds features: one chat.postMessage (§7 blocks, Bearer token) covering
    both, saying which rule fired, on how many points, in which window; the alerts end up 'sent'."""
    server, base = channel
    profile = with_dispatch(
        spc_profile({"feature_0": (0.0, 1.0), "feature_1": (5.0, 0.5)}), {"Slack": {"channel": "#drift"}}
    )
    due, previous = now - SECOND, now - HOUR
    await db.run(insert_profile, profile, due, previous)
    t = now - 30 * 60 * SECOND
    rows = [(t + i * SECOND, *ENTITY, "feature_0", 3.5 if i == 5 else 0.0) for i in range(6)]
    rows += [(t + i * SECOND, *ENTITY, "feature_1", 10.0 if i == 5 else 5.0) for i in range(6)]
    rows += [(previous - SECOND, *ENTITY, "feature_1", 5.0)]  # before the window: not counted
    await db.run(copy_rows, "spc_drift", SPC_COLUMNS, rows)
    send, notices = open_alert_channel(10)
    poller = Poller("test/poller-0", DatabaseHandle(db), AlertChannel(send, metrics), metrics, PollerConfig())
    claimed = await poller.claim()
    assert "drift" == await poller.check(claimed)  # type: ignore[arg-type]

    async with running(Dispatcher(DatabaseHandle(db), dispatch_settings(base), metrics, notices)):
        (delivery,) = await settled(db, 1)
    (request,) = server.requests
    alerts = await db.fetch("SELECT id, created_at, window_start, dispatch_state FROM scouter.drift_alert ORDER BY id")
    ids = [a["id"] for a in alerts]
    checked_at = rfc3339(alerts[0]["created_at"])

    assert ("POST", SLACK_PATH) == (request.method, request.path)
    assert f"Bearer {SLACK_TOKEN}" == request.headers["authorization"]
    assert request.headers["content-type"].startswith("application/json")
    body = request.json()
    assert ["channel", "blocks", "text"] == list(body)
    assert "#drift" == body["channel"]
    assert "Drift detected for cap/model/1.0.0" == body["text"]
    assert SECTION_7_HEADER == body["blocks"][0]
    assert {"type": "section", "text": {"type": "mrkdwn", "text": "*Name*: model *Space*: cap *Version*: 1.0.0"}} == (
        body["blocks"][1]
    )
    description = (
        "Drift has been detected for the following features:\n"
        "feature_0: \n    Out of bounds error in Zone 4\n"
        "feature_1: \n    Out of bounds error in Zone 4\n"
    )
    assert {"type": "section", "text": {"type": "mrkdwn", "text": description}} == body["blocks"][2]
    rule = "points beyond the three-sigma limits (zone 4 rule: 1 consecutive, 1 alternating)"
    why = (
        "*Why it fired*\n"
        f"• feature_0: Out of bounds in Zone 4: {rule}; each point is the mean of 25 values; 6 points in the window\n"
        f"• feature_1: Out of bounds in Zone 4: {rule}; each point is the mean of 25 values; 6 points in the window\n"
        f"Window: records after {rfc3339(previous)} up to {checked_at} (schedule 0 0 0 * * *)"
    )
    assert {"type": "section", "text": {"type": "mrkdwn", "text": why}} == body["blocks"][3]
    since = checked_at.replace(":", "%3A")
    link = f"/scouter/alerts?name=model&amp;space=cap&amp;version=1.0.0&amp;limit_datetime={since}"
    reference = f"Alert IDs: scouter-alert-{ids[0]}, scouter-alert-{ids[1]} (GET {link})"
    assert {"type": "context", "elements": [{"type": "mrkdwn", "text": reference}]} == body["blocks"][4]
    assert 5 == len(body["blocks"])
    assert [previous, previous] == [a["window_start"] for a in alerts]
    assert ["sent", "sent"] == [a["dispatch_state"] for a in alerts]
    assert ("slack", "sent", 1, 200, None, ids) == (
        delivery["channel"], delivery["state"], delivery["attempts"], delivery["last_status"], delivery["last_error"],
        delivery["alert_ids"],
    )  # fmt: skip
    assert delivery["sent_at"] is not None
    assert f"scouter-alert-{ids[0]}-{ids[1]}" == delivery["message_key"]
    assert 1.0 == sample(metrics, "scouter_alerts_dispatched_total", channel="slack")
    assert 1.0 == sample(metrics, "scouter_alert_dispatch_duration_seconds_count", channel="slack")
    assert 1.0 == sample(metrics, "scouter_alert_delivery_delay_seconds_count", channel="slack")


async def test_psi_check_becomes_one_opsgenie_alert(
    db: Database, metrics: ScouterMetrics, channel: tuple[FakeChannel, str], now: dt.datetime
) -> None:
    """PSI alerts of one check: one OpsGenie alert with GenieKey, upstream's body (§7) whose description ends with
    why it fired (PSI against the chi-square threshold, samples and bins), the message key as alias."""
    server, base = channel
    ten = [0.1] * 10
    dispatch = {"OpsGenie": {"team": "ml-team", "priority": "P2"}}
    previous = now - HOUR
    await db.run(
        insert_profile, with_dispatch(psi_profile({"feature_0": ten, "feature_1": ten}), dispatch), now, previous
    )
    t = now - 60 * SECOND
    counts = [(t, *ENTITY, "feature_0", b, 40) for b in range(1, 11)]  # 400 samples
    counts += [(t, *ENTITY, "feature_1", 1, 1000)]
    await db.run(copy_rows, "psi_drift", PSI_COLUMNS, counts)
    ids = await store_alerts(
        db,
        "Psi",
        [
            {"entity_name": "feature_0", "psi": "0.51", "threshold": "0.0423"},
            {"entity_name": "feature_1", "psi": "2.3", "threshold": "0.0169"},
        ],
    )

    async with running(Dispatcher(DatabaseHandle(db), dispatch_settings(base), metrics)):
        await settled(db, 1)
    (request,) = server.requests
    checked_at = rfc3339(await db.fetchval("SELECT created_at FROM scouter.drift_alert LIMIT 1"))

    assert ("POST", OPSGENIE_PATH) == (request.method, request.path)
    assert f"GenieKey {OPSGENIE_KEY}" == request.headers["authorization"]
    body = request.json()
    assert "Model drift detected for cap/model/1.0.0" == body["message"]
    description = (
        "PSI Drift has been detected for the following features:\n"
        "    feature_0: \n"
        "        Drift Value: Feature 'feature_0' has experienced drift, with a current PSI score of 0.51 that exceeds"
        " the configured threshold of 0.0423.\n"
        "    feature_1: \n"
        "        Drift Value: Feature 'feature_1' has experienced drift, with a current PSI score of 2.3 that exceeds"
        " the configured threshold of 0.0169.\n"
        "\n"
        "Why it fired:\n"
        "  - feature_0: PSI 0.51 > threshold 0.0423 (chi-square, alpha 0.05, 400 samples, 10 bins)\n"
        "  - feature_1: PSI 2.3 > threshold 0.0169 (chi-square, alpha 0.05, 1000 samples, 10 bins)\n"
        f"Window: records after {rfc3339(previous)} up to {checked_at} (schedule 0 0 0 * * *)\n"
        f"Alert IDs: scouter-alert-{ids[0]}, scouter-alert-{ids[1]} (GET /scouter/alerts?name=model&space=cap"
        f"&version=1.0.0&limit_datetime={checked_at.replace(':', '%3A')})\n"
    )
    assert description == body["description"]
    assert [{"name": "ml-team", "type": "team"}] == body["responders"]
    assert [{"name": "ml-team", "type": "team"}] == body["visibleTo"]
    assert ["Model Drift", "Scouter"] == body["tags"]
    assert "P2" == body["priority"]
    assert f"scouter-alert-{ids[0]}-{ids[1]}" == body["alias"]
    assert "scouter" == body["source"]
    assert f"{ids[0]},{ids[1]}" == body["details"]["alert_ids"]
    assert (rfc3339(previous), checked_at) == (body["details"]["window_start"], body["details"]["checked_at"])


async def test_custom_alerts_fan_out_one_message_per_metric(
    db: Database,
    metrics: ScouterMetrics,
    channel: tuple[FakeChannel, str],
    now: dt.datetime,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Two custom alerts of one check: one message per metric on Console (upstream's text), on the signed webhook
    and on PagerDuty; no credential or webhook path appears in the logs."""
    caplog.set_level(logging.DEBUG)
    server, base = channel
    previous = now - HOUR
    conditions = {"mae": ("Above", 2.0), "accuracy": ("Below", None)}
    await db.run(insert_profile, custom_profile({"mae": 12.0, "accuracy": 0.76}, conditions), now, previous)
    t = now - 60 * SECOND
    records = [(t + i * SECOND, *ENTITY, "mae", 14.5) for i in range(3)]
    records += [(t + i * SECOND, *ENTITY, "accuracy", 0.67) for i in range(2)]
    await db.run(copy_rows, "custom_drift", CUSTOM_COLUMNS, records)
    ids = await store_alerts(
        db,
        "Custom",
        [
            custom_map("accuracy", "0.76", "0.67", "None", "Below"),
            custom_map("mae", "12", "14.5", "2", "Above"),
        ],
    )
    settings = dispatch_settings(
        base,
        webhook_url=f"{base}{WEBHOOK_PATH}",
        webhook_secret=WEBHOOK_SECRET,
        pagerduty_routing_key=ROUTING_KEY,
        pagerduty_url=f"{base}{PAGERDUTY_PATH}",
        pagerduty_severity="error",
    )
    console: list[str] = []

    async with running(Dispatcher(DatabaseHandle(db), settings, metrics, console=console.append)):
        deliveries = await settled(db, 6)
    checked_at = rfc3339(await db.fetchval("SELECT created_at FROM scouter.drift_alert LIMIT 1"))

    assert Counter(["console", "webhook", "pagerduty"] * 2) == Counter(d["channel"] for d in deliveries)
    assert ["sent"] * 6 == [d["state"] for d in deliveries]
    window = f"Window: records after {rfc3339(previous)} up to {checked_at} (schedule 0 0 0 * * *)"
    accuracy_text = (
        "\nDrift detected for cap/model/1.0.0! \n"
        "The accuracy metric value has dropped below the initial value\n"
        "Initial Metric Value: 0.76\nCurrent Metric Value: 0.67\n"
        "Why it fired:\n"
        "  - accuracy: observed 0.67 < 0.76 (training 0.76, condition Below); the observed value is the mean of 2"
        " records in the window, each averaging 10 values\n"
        f"{window}\n"
        f"Alert IDs: scouter-alert-{ids[0]} (GET /scouter/alerts?name=model&space=cap&version=1.0.0"
        f"&limit_datetime={checked_at.replace(':', '%3A')})\n"
    )
    mae_header = "The mae metric value has increased beyond the threshold (initial value + 2)\n"
    assert 2 == len(console)
    accuracy, mae = sorted(console, key=lambda text: "mae" in text)  # sent concurrently: in either order
    assert accuracy_text == accuracy
    assert mae.startswith(f"\nDrift detected for cap/model/1.0.0! \n{mae_header}")
    assert "  - mae: observed 14.5 > 14 (training 12 + 2, condition Above); the observed value is the mean of 3" in mae

    hooks = {h.headers["x-scouter-delivery"]: h for h in server.to(WEBHOOK_PATH)}
    assert {f"scouter-alert-{ids[0]}", f"scouter-alert-{ids[1]}"} == set(hooks)
    assert 2 == len(server.to(WEBHOOK_PATH))
    for hook in hooks.values():
        signature = "sha256=" + hmac.new(WEBHOOK_SECRET.encode(), hook.body, hashlib.sha256).hexdigest()
        assert signature == hook.headers["x-scouter-signature"]
    first = hooks[f"scouter-alert-{ids[0]}"].json()
    assert ("scouter.drift_alert", f"scouter-alert-{ids[0]}", "Custom") == (
        first["type"],
        first["key"],
        first["drift_type"],
    )
    assert ("cap", "model", "1.0.0", checked_at) == (
        first["space"],
        first["name"],
        first["version"],
        first["created_at"],
    )
    assert {"start": rfc3339(previous), "end": checked_at} == first["window"]
    assert [
        {"id": ids[0], "ref": f"scouter-alert-{ids[0]}", "entity_name": "accuracy",
         "alert": custom_map("accuracy", "0.76", "0.67", "None", "Below")}
    ] == first["alerts"]  # fmt: skip
    assert {"accuracy": 2} == first["samples"]
    assert "console" == first["profile"]["primary_channel"]
    conditions_sent = first["profile"]["alert_config"]["alert_conditions"]
    assert {
        "accuracy": {"alert_threshold": "Below", "alert_threshold_value": None},
        "mae": {"alert_threshold": "Above", "alert_threshold_value": 2.0},
    } == conditions_sent

    pages = {r.json()["dedup_key"]: r.json() for r in server.to(PAGERDUTY_PATH)}
    assert 2 == len(server.to(PAGERDUTY_PATH))
    page = pages[f"scouter-alert-{ids[1]}"]
    assert (ROUTING_KEY, "trigger", f"scouter-alert-{ids[1]}") == (
        page["routing_key"], page["event_action"], page["dedup_key"]
    )  # fmt: skip
    assert page["payload"]["summary"].startswith("Drift detected for cap/model/1.0.0: mae: observed 14.5 > 14")
    assert ("error", checked_at, "cap", "model", "Custom drift") == (
        page["payload"]["severity"], page["payload"]["timestamp"], page["payload"]["group"],
        page["payload"]["component"], page["payload"]["class"],
    )  # fmt: skip
    assert [ids[1]] == page["payload"]["custom_details"]["alert_ids"]
    for secret in (SLACK_TOKEN, OPSGENIE_KEY, ROUTING_KEY, WEBHOOK_SECRET, "s3cr3t"):
        assert secret not in caplog.text
    stored = "".join(str(r["payload"]) for r in await db.fetch("SELECT payload FROM scouter.alert_delivery"))
    assert ROUTING_KEY not in stored


async def test_slack_without_token_falls_back_to_console(
    db: Database, metrics: ScouterMetrics, channel: tuple[FakeChannel, str], now: dt.datetime
) -> None:
    """A Slack profile on a server without SLACK_APP_TOKEN: the message goes to Console, with a note why (as
    upstream); nothing is sent over HTTP."""
    server, base = channel
    await db.run(insert_profile, with_dispatch(spc_profile({"f": (0.0, 1.0)}), {"Slack": {"channel": "#x"}}), now, None)
    await store_alerts(db, "Spc", [{"entity_name": "f", "kind": "Out of bounds", "zone": "Zone 4"}])
    console: list[str] = []

    settings = dispatch_settings(base, slack_app_token=None)
    async with running(Dispatcher(DatabaseHandle(db), settings, metrics, console=console.append)):
        (delivery,) = await settled(db, 1)

    assert ("console", "sent") == (delivery["channel"], delivery["state"])
    assert "Slack dispatch without SLACK_APP_TOKEN: sent to Console instead" == delivery["note"]
    assert 1 == len(console)
    assert console[0].startswith(
        "\nDrift detected for cap/model/1.0.0! \nFeatures that have drifted: \n    f: \n"
        "        Kind: Out of bounds\n        Zone: Zone 4\nWhy it fired:\n"
    )
    assert "Window: every record up to" in console[0]  # previous_run NULL: the check read everything
    assert [] == server.requests


# --- faults ---------------------------------------------------------------------------------------------------------


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


# --- exactly once ---------------------------------------------------------------------------------------------------


async def unfinished(db: Database) -> bool:
    """Nothing planned yet, or some delivery still pending."""
    states = [r["state"] for r in await db.fetch("SELECT state FROM scouter.alert_delivery")]
    return not states or "pending" in states


async def seed_custom_messages(db: Database, now: dt.datetime, count: int) -> list[str]:
    """`count` custom alerts (one message each) of a Console profile; returns their message keys."""
    await db.run(insert_profile, custom_profile({"mae": 1.0}, {"mae": ("Above", None)}), now, None)
    keys = []
    for i in range(count):
        (alert_id,) = await store_alerts(db, "Custom", [custom_map("mae", "1", str(2 + i), "None", "Above")])
        keys.append(f"scouter-alert-{alert_id}")
    return keys


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


# --- waking, planning ----------------------------------------------------------------------------------------------


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


async def test_unreadable_alerts_are_sent_as_stored(
    db: Database, metrics: ScouterMetrics, channel: tuple[FakeChannel, str], now: dt.datetime
) -> None:
    """An alert whose map does not read as its drift type, with no profile: still sent (Console), field by field."""
    _, base = channel
    await store_alerts(db, "Spc", [{"entity_name": "f", "zone": "Zone 9", "kind": "Odd", "extra": "1"}])
    console: list[str] = []

    async with running(Dispatcher(DatabaseHandle(db), dispatch_settings(base), metrics, console=console.append)):
        (delivery,) = await settled(db, 1)

    assert ("console", "sent", "profile not found: sent to Console") == (
        delivery["channel"], delivery["state"], delivery["note"]
    )  # fmt: skip
    assert console[0].startswith(
        "\nDrift detected for cap/model/1.0.0! \nSpc drift alerts:\n    f: extra: 1, kind: Odd, zone: Zone 9\n"
    )


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


# --- schema ---------------------------------------------------------------------------------------------------------


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
