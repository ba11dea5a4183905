"""Alert dispatch without I/O: grouping, channel selection, message bodies, answers, retry policy."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from typing import Any

import pytest

from scouter.alerts import DispatchStyle
from scouter.dispatch import (
    CONSOLE,
    FAILED,
    OPSGENIE,
    PAGERDUTY,
    RETRY,
    SENT,
    SLACK,
    WEBHOOK,
    AlertRow,
    ChannelSetup,
    CheckFacts,
    Message,
    Settled,
    Verdict,
    backoff_delay,
    excerpt,
    group_alerts,
    judge_answer,
    message_key,
    minimal_deliveries,
    parse_retry_after,
    plan_deliveries,
    primary_channel,
    redact_url,
    render,
    settle,
    webhook_signature,
)
from scouter.profiles import ConsoleDispatch, OpsGenieDispatch, SlackDispatch, profile_from_data
from tests.drift_profiles import custom_profile, psi_profile, spc_profile

T = dt.datetime(2026, 11, 22, 17, 6, 43, 680899, tzinfo=dt.UTC)
START = dt.datetime(2026, 11, 22, 17, 6, 38, tzinfo=dt.UTC)
ENTITY = ("cap", "model", "1.0.0")
NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def spc_row(
    alert_id: int, feature: str, kind: str = "Out of bounds", zone: str = "Zone 4", at: dt.datetime = T
) -> AlertRow:
    alert = {"entity_name": feature, "kind": kind, "zone": zone}
    return AlertRow(alert_id, at, *ENTITY, "Spc", feature, alert, START)


def custom_row(alert_id: int, metric: str, at: dt.datetime = T) -> AlertRow:
    alert = {
        "entity_name": metric,
        "training_metric_value": "12",
        "observed_metric_value": "14.5",
        "alert_threshold_value": "2",
        "alert_threshold": "Above",
    }
    return AlertRow(alert_id, at, *ENTITY, "Custom", metric, alert, START)


def spc_facts(dispatch: dict[str, Any] | None = None, samples: dict[str, int] | None = None) -> CheckFacts:
    doc = spc_profile({"feature_0": (0.0, 1.0), "feature_1": (0.0, 1.0)}, schedule="*/5 * * * * *")
    if dispatch is not None:
        doc["config"]["alert_config"]["dispatch_config"] = dispatch
    return CheckFacts(profile_from_data("Spc", doc), None, "*/5 * * * * *", samples or {})


# --- grouping -------------------------------------------------------------------------------------------------------


def test_spc_and_psi_alerts_of_one_check_make_one_message_custom_one_each() -> None:
    """Same check (created_at, entity, type) → one SPC message; each custom alert is a message of its own."""
    later = T + dt.timedelta(seconds=5)
    rows = [
        custom_row(5, "mae"),
        spc_row(2, "feature_1"),
        spc_row(1, "feature_0"),
        custom_row(6, "accuracy"),
        spc_row(7, "feature_0", at=later),
    ]

    messages = group_alerts(rows)

    assert [(1, 2), (5,), (6,), (7,)] == [m.ids for m in messages]


def test_message_key_is_stable_and_bounded() -> None:
    """Keys list the ids in order; a long list is abbreviated under 200 characters, still unique by first id."""
    assert "scouter-alert-3-41" == message_key([41, 3])
    long = message_key(range(1000, 1100))
    assert "scouter-alert-1000-and-99-more" == long


# --- channels -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dispatch", "setup", "expected"),
    [
        (ConsoleDispatch(True), ChannelSetup(slack=True), (CONSOLE, None)),
        (SlackDispatch("#x"), ChannelSetup(slack=True), (SLACK, None)),
        (
            SlackDispatch("#x"),
            ChannelSetup(),
            (CONSOLE, "Slack dispatch without SLACK_APP_TOKEN: sent to Console instead"),
        ),
        (OpsGenieDispatch("t", "P1"), ChannelSetup(opsgenie=True), (OPSGENIE, None)),
        (
            OpsGenieDispatch("t", "P1"),
            ChannelSetup(slack=True),
            (CONSOLE, "OpsGenie dispatch without OPSGENIE_API_KEY: sent to Console instead"),
        ),
        ({"Teams": {"url": "x"}}, ChannelSetup(), (CONSOLE, "unknown dispatch config Teams: sent to Console instead")),
        (None, ChannelSetup(), (CONSOLE, "no readable profile: sent to Console")),
    ],
)
def test_primary_channel(dispatch: Any, setup: ChannelSetup, expected: tuple[str, str | None]) -> None:
    """The profile picks the channel; Slack and OpsGenie without credentials fall back to Console, as upstream."""
    assert expected == primary_channel(dispatch, setup)


def test_webhook_and_pagerduty_fan_out_in_addition_to_the_profile_channel() -> None:
    """Configured server-wide, the webhook and PagerDuty get every message besides the profile's own channel."""
    (message,) = group_alerts([spc_row(1, "feature_0")])
    setup = ChannelSetup(slack=True, webhook=True, pagerduty=True)

    deliveries = plan_deliveries(message, spc_facts({"Slack": {"channel": "#ml"}}), setup)

    assert [SLACK, WEBHOOK, PAGERDUTY] == [d.channel for d in deliveries]
    assert [CONSOLE] == [d.channel for d in plan_deliveries(message, spc_facts(), ChannelSetup())]


# --- bodies ---------------------------------------------------------------------------------------------------------


def test_console_text_is_upstreams_then_why_it_fired() -> None:
    """Console: "\\nDrift detected for s/n/v! \\n" + the Console description (§7), then rule, window and ids."""
    (message,) = group_alerts([spc_row(1, "feature_0"), spc_row(2, "feature_1", "Consecutive", "Zone 1")])

    (delivery,) = plan_deliveries(message, spc_facts(samples={"feature_0": 12}), ChannelSetup())

    expected = (
        "\nDrift detected for cap/model/1.0.0! \n"
        "Features that have drifted: \n"
        "    feature_0: \n"
        "        Kind: Out of bounds\n        Zone: Zone 4\n"
        "    feature_1: \n"
        "        Kind: Consecutive\n        Zone: Zone 1\n"
        "Why it fired:\n"
        "  - feature_0: Out of bounds in Zone 4: points beyond the three-sigma limits (zone 4 rule: 1 consecutive,"
        " 1 alternating); each point is the mean of 25 values; 12 points in the window\n"
        "  - feature_1: Consecutive in Zone 1: 8 consecutive points in zone 1 or beyond on one side of the center;"
        " each point is the mean of 25 values\n"
        "Window: records after 2026-11-22T17:06:38.000000Z up to 2026-11-22T17:06:43.680899Z"
        " (schedule */5 * * * * *)\n"
        "Alert IDs: scouter-alert-1, scouter-alert-2 (GET /scouter/alerts?name=model&space=cap&version=1.0.0"
        "&limit_datetime=2026-11-22T17%3A06%3A43.680899Z)\n"
    )
    assert {"text": expected} == delivery.payload
    assert delivery.note is None


def test_slack_body_keeps_upstreams_three_blocks_first() -> None:
    """Slack: channel, upstream's header/entity/description blocks unchanged, then why (mrkdwn-escaped) and ids."""
    (message,) = group_alerts([custom_row(9, "mae")])
    doc = custom_profile({"mae": 12.0}, {"mae": ("Above", 2.0)})
    doc["config"]["alert_config"]["dispatch_config"] = {"Slack": {"channel": "#ml"}}
    facts = CheckFacts(profile_from_data("Custom", doc), None, "0 0 0 * * *", {"mae": 3})

    (delivery,) = plan_deliveries(message, facts, ChannelSetup(slack=True))

    body = delivery.payload
    assert ["channel", "blocks", "text"] == list(body)
    assert "#ml" == body["channel"]
    assert [
        {
            "type": "header",
            "text": {"type": "plain_text", "text": ":rotating_light: Drift Detected :rotating_light:", "emoji": True},
        },
        {"type": "section", "text": {"type": "mrkdwn", "text": "*Name*: model *Space*: cap *Version*: 1.0.0"}},
        {
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": "The mae metric value has increased beyond the threshold (initial value + 2)\n"
                "Initial Metric Value: 12\nCurrent Metric Value: 14.5\n",
            },
        },
    ] == body["blocks"][:3]
    assert (
        "*Why it fired*\n"
        "• mae: observed 14.5 &gt; 14 (training 12 + 2, condition Above); the observed value is the mean of 3 records"
        " in the window, each averaging 10 values\n"
        "Window: records after 2026-11-22T17:06:38.000000Z up to 2026-11-22T17:06:43.680899Z (schedule 0 0 0 * * *)"
    ) == body["blocks"][3]["text"]["text"]
    assert body["blocks"][4]["elements"][0]["text"].startswith("Alert IDs: scouter-alert-9 (GET /scouter/alerts?")
    assert "Drift detected for cap/model/1.0.0" == body["text"]


def test_opsgenie_body_field_by_field() -> None:
    """OpsGenie: upstream's message, team responders and visibility, tags, priority; why appended; alias = key."""
    rows = [
        AlertRow(3, T, *ENTITY, "Psi", "f", {"entity_name": "f", "psi": "0.51", "threshold": "0.0423"}, None),
    ]
    (message,) = group_alerts(rows)
    doc = psi_profile({"f": [0.1] * 10})
    doc["config"]["alert_config"]["dispatch_config"] = {"OpsGenie": {"team": "ml", "priority": "P3"}}
    facts = CheckFacts(profile_from_data("Psi", doc), None, None, {"f": 400})

    (delivery,) = plan_deliveries(message, facts, ChannelSetup(opsgenie=True))

    assert {
        "message": "Model drift detected for cap/model/1.0.0",
        "description": "PSI Drift has been detected for the following features:\n"
        "    f: \n"
        "        Drift Value: Feature 'f' has experienced drift, with a current PSI score of 0.51 that exceeds the"
        " configured threshold of 0.0423.\n"
        "\nWhy it fired:\n"
        "  - f: PSI 0.51 > threshold 0.0423 (chi-square, alpha 0.05, 400 samples, 10 bins)\n"
        "Window: every record up to 2026-11-22T17:06:43.680899Z\n"
        "Alert IDs: scouter-alert-3 (GET /scouter/alerts?name=model&space=cap&version=1.0.0"
        "&limit_datetime=2026-11-22T17%3A06%3A43.680899Z)\n",
        "responders": [{"name": "ml", "type": "team"}],
        "visibleTo": [{"name": "ml", "type": "team"}],
        "tags": ["Model Drift", "Scouter"],
        "priority": "P3",
        "alias": "scouter-alert-3",
        "source": "scouter",
        "details": {
            "alert_ids": "3",
            "drift_type": "Psi",
            "window_start": "",
            "checked_at": "2026-11-22T17:06:43.680899Z",
            "alerts": "/scouter/alerts?name=model&space=cap&version=1.0.0"
            "&limit_datetime=2026-11-22T17%3A06%3A43.680899Z",
        },
    } == delivery.payload


def test_pagerduty_event_has_no_routing_key_and_dedups_by_message() -> None:
    """PagerDuty: a trigger with dedup_key = the message key; the routing key is added only when sending."""
    (message,) = group_alerts([spc_row(4, "feature_0"), spc_row(5, "feature_1")])

    deliveries = plan_deliveries(message, spc_facts(), ChannelSetup(pagerduty=True, pagerduty_severity="critical"))

    event = deliveries[1].payload
    assert "routing_key" not in event
    assert ("trigger", "scouter-alert-4-5", "Scouter") == (event["event_action"], event["dedup_key"], event["client"])
    payload = event["payload"]
    assert payload["summary"].startswith("Drift detected for cap/model/1.0.0: feature_0: Out of bounds in Zone 4")
    assert ("scouter:cap/model/1.0.0", "critical", "2026-11-22T17:06:43.680899Z") == (
        payload["source"],
        payload["severity"],
        payload["timestamp"],
    )
    assert [4, 5] == payload["custom_details"]["alert_ids"]
    assert {"scouter-alert-4", "scouter-alert-5"} == set(payload["custom_details"]["alerts"])


def test_webhook_payload_carries_alerts_profile_and_reasons() -> None:
    """The webhook document: key, entity, window, every alert with its id, the reasons and the alert config."""
    (message,) = group_alerts([spc_row(1, "feature_0")])

    webhook = plan_deliveries(message, spc_facts(samples={"feature_0": 3}), ChannelSetup(webhook=True))[1].payload

    assert ("scouter.drift_alert", "scouter-alert-1", "Spc") == (webhook["type"], webhook["key"], webhook["drift_type"])
    assert {"start": "2026-11-22T17:06:38.000000Z", "end": "2026-11-22T17:06:43.680899Z"} == webhook["window"]
    assert [
        {
            "id": 1,
            "ref": "scouter-alert-1",
            "entity_name": "feature_0",
            "alert": {"entity_name": "feature_0", "kind": "Out of bounds", "zone": "Zone 4"},
        }
    ] == webhook["alerts"]
    assert {"feature_0": 3} == webhook["samples"]
    assert "8 16 4 8 2 4 1 1" == webhook["profile"]["alert_config"]["rule"]["rule"]
    assert "console" == webhook["profile"]["primary_channel"]
    assert 1 == len(webhook["reasons"])


def test_alert_maps_that_do_not_parse_are_shown_as_stored() -> None:
    """An SPC map with an unknown zone, non-string values: every field, as text; still a message."""
    row = AlertRow(1, T, *ENTITY, "Spc", "f", {"entity_name": "f", "zone": "Zone 9", "kind": "X", "n": 3}, None)
    content = render(Message((row,)), CheckFacts())

    assert ("f: kind: X, n: 3, zone: Zone 9",) == content.reasons
    assert "Spc drift alerts:\n    f: kind: X, n: 3, zone: Zone 9\n" == content.descriptions[DispatchStyle.CONSOLE]
    (delivery,) = minimal_deliveries(Message((row,)), "boom")
    assert delivery.payload["text"].startswith("\nDrift detected for cap/model/1.0.0! \nSpc drift alerts:\n")


# --- answers --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("channel", "status", "body", "retry_after", "expected"),
    [
        (WEBHOOK, 200, b"", None, Verdict(SENT, None, 200)),
        (PAGERDUTY, 202, b'{"status":"success"}', None, Verdict(SENT, None, 202)),
        (SLACK, 200, b'{"ok": true}', None, Verdict(SENT, None, 200)),
        (
            SLACK,
            200,
            b'{"ok": false, "error": "invalid_auth"}',
            None,
            Verdict(FAILED, "Slack answered ok=false: invalid_auth", 200),
        ),
        (
            SLACK,
            200,
            b'{"ok": false, "error": "ratelimited"}',
            "3",
            Verdict(RETRY, "Slack answered ok=false: ratelimited", 200, 3.0),
        ),
        (OPSGENIE, 500, b"oops", None, Verdict(RETRY, "HTTP 500: oops", 500)),
        (OPSGENIE, 429, b"", "7", Verdict(RETRY, "HTTP 429: (empty body)", 429, 7.0)),
        (WEBHOOK, 408, b"", None, Verdict(RETRY, "HTTP 408: (empty body)", 408)),
        (WEBHOOK, 400, b'{"error":\n "bad"}', None, Verdict(FAILED, 'HTTP 400: {"error": "bad"}', 400)),
        (WEBHOOK, 404, b"", "5", Verdict(FAILED, "HTTP 404: (empty body)", 404)),
        (WEBHOOK, 301, b"", None, Verdict(FAILED, "HTTP 301: (empty body)", 301)),
    ],
)
def test_judge_answer(channel: str, status: int, body: bytes, retry_after: str | None, expected: Verdict) -> None:
    """2xx sent (Slack: unless ok=false); 408, 429, 5xx retried with Retry-After; other answers final."""
    assert expected == judge_answer(channel, status, body, retry_after, NOW)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("120", 120.0),
        (" 1.5 ", 1.5),
        ("-4", 0.0),
        ("99999", 3600.0),
        ("Thu, 01 Jan 2026 00:00:30 GMT", 30.0),
        ("Wed, 31 Dec 2025 23:00:00 GMT", 0.0),
        ("soon", None),
        ("nan", None),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    """Delta-seconds or an HTTP-date, clamped to [0, 1 h]; unreadable values are ignored."""
    assert expected == parse_retry_after(value, NOW)


def test_backoff_doubles_with_equal_jitter_up_to_the_cap() -> None:
    """Attempt n waits between half and all of base·2^(n-1), never more than the cap."""
    assert [1.0, 2.0, 4.0, 5.0, 5.0] == [backoff_delay(n, 2.0, 10.0, 0.0) for n in range(1, 6)]
    assert [2.0, 4.0, 8.0, 10.0] == [backoff_delay(n, 2.0, 10.0, 1.0) for n in range(1, 5)]
    assert 10.0 == backoff_delay(500, 2.0, 10.0, 1.0)


def test_settle_applies_the_retry_policy() -> None:
    """Sent and failed are final; a retry waits the backoff or the Retry-After, until max_attempts is spent."""
    assert Settled("sent") == settle(Verdict(SENT), 0, 3, 1.0, 8.0, 0.5)
    assert Settled("failed", error="HTTP 400: x") == settle(Verdict(FAILED, "HTTP 400: x", 400), 0, 3, 1.0, 8.0, 0.5)
    assert Settled("pending", 1.5, "HTTP 500: x") == settle(Verdict(RETRY, "HTTP 500: x", 500), 1, 3, 1.0, 8.0, 0.5)
    assert Settled("pending", 30.0, "HTTP 429: x") == settle(
        Verdict(RETRY, "HTTP 429: x", 429, 30.0), 0, 3, 1.0, 8.0, 0.5
    )
    assert Settled("failed", 0.0, "gave up after 3 attempts; last: HTTP 500: x", True) == settle(
        Verdict(RETRY, "HTTP 500: x", 500), 2, 3, 1.0, 8.0, 0.5
    )


def test_webhook_signature_is_hmac_sha256_of_the_body() -> None:
    """``sha256=`` + the hex HMAC-SHA256 of the exact bytes, as receivers recompute it."""
    body = b'{"key": "scouter-alert-1"}'
    assert "sha256=" + hmac.new(b"k", body, hashlib.sha256).hexdigest() == webhook_signature("k", body)


def test_redact_url_and_excerpt() -> None:
    """Logged URLs keep scheme, host and port only; error excerpts are one clipped line."""
    assert "https://hooks.example.com/…" == redact_url("https://hooks.example.com/T000/B000/secret?x=1")
    assert "http://127.0.0.1:8080" == redact_url("http://127.0.0.1:8080/")
    assert "a b" == excerpt(b"a\n  b")
    assert 300 == len(excerpt(b"x" * 1000))
