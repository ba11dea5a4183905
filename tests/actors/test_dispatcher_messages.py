"""The alert dispatcher against a real PostgreSQL and a fake channel server on 127.0.0.1: the message each channel
gets for a check (Slack, OpsGenie, Console, the signed webhook, PagerDuty), field by field, and its fallbacks."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
from collections import Counter

import pytest

from actors.alert_channel import AlertChannel, open_alert_channel
from actors.database import Database, DatabaseHandle
from actors.dispatcher import Dispatcher
from actors.metrics import ScouterMetrics
from actors.poller import Poller, PollerConfig
from scouter.binned import rfc3339
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

from .dispatch_support import (
    ENTITY,
    HOUR,
    OPSGENIE_KEY,
    OPSGENIE_PATH,
    PAGERDUTY_PATH,
    ROUTING_KEY,
    SECOND,
    SECTION_7_HEADER,
    SLACK_PATH,
    SLACK_TOKEN,
    WEBHOOK_PATH,
    WEBHOOK_SECRET,
    custom_map,
    dispatch_settings,
    running,
    sample,
    settled,
    store_alerts,
    with_dispatch,
)
from .fake_channel import FakeChannel

pytestmark = pytest.mark.postgres


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
