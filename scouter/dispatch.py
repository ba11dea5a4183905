"""Alert dispatch without the I/O (spec §7, §12 #21 and #26): which channels a stored alert goes to, what each
message says, and what each channel's answer means. The dispatcher actor (``actors/dispatcher.py``) does the rest.

**Messages.** Alerts are grouped as upstream sends them. The SPC or PSI alerts of one check (same profile, same
``created_at``: a check stores its alerts in one transaction) make one message covering every alerting feature; a
custom-metric alert is a message of its own (one per alerting metric). Besides upstream's description (§7), every
message says why it fired: the rule or threshold, the window of data the check read, the sample size, and the
link-friendly ids of its alerts (``scouter-alert-<id>``, plus the ``GET /scouter/alerts`` query that finds them).

**Channels.** The profile's ``dispatch_config`` picks the primary channel, as upstream: Console, Slack or OpsGenie.
Slack without SLACK_APP_TOKEN and OpsGenie without OPSGENIE_API_KEY fall back to Console (upstream logs the error and
does the same); an unknown variant, or a profile that no longer exists, goes to Console too. Two channels of ours are
configured for the whole server rather than per profile: a JSON webhook (SCOUTER_WEBHOOK_URL) and PagerDuty Events
API v2 (SCOUTER_PAGERDUTY_ROUTING_KEY). When set, every message goes to them *in addition* to the primary channel.
One message on one channel is a *delivery*; each has its own state, so a failing webhook never re-sends the Slack
message.

**Answers.** A 2xx is sent (Slack: unless its JSON body says ``"ok": false``). Timeouts, transport errors, 408,
425, 429 and 5xx are retried with exponential backoff and jitter (after ``Retry-After`` when the answer has one);
any other status is a permanent failure, recorded with its reason. Payloads never contain credentials: tokens,
keys and the routing key are added to the request when it is sent.
"""

from __future__ import annotations

import email.utils
import hashlib
import hmac
import math
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import urlencode, urlsplit

import attrs
import orjson

from scouter.alerts import (
    DEFAULT_OPSGENIE_PRIORITY,
    DispatchStyle,
    console_text,
    custom_description,
    custom_reason,
    opsgenie_body,
    psi_description,
    psi_reason,
    slack_body,
    spc_description,
    spc_reason,
)
from scouter.binned import rfc3339
from scouter.checks import psi_threshold_of
from scouter.drift import (
    DEFAULT_SPC_RULE,
    AlertThreshold,
    AlertZone,
    CustomMetricAlert,
    PsiFeatureAlert,
    SpcAlert,
    SpcAlertType,
)
from scouter.profiles import (
    ConsoleDispatch,
    CustomDriftProfile,
    DispatchConfig,
    DriftProfile,
    OpsGenieDispatch,
    PsiDriftProfile,
    SlackDispatch,
    SpcDriftProfile,
)

__all__ = [
    "CHANNELS",
    "CONSOLE",
    "FAILED",
    "OPSGENIE",
    "PAGERDUTY",
    "RETRY",
    "SENT",
    "SLACK",
    "WEBHOOK",
    "AlertRow",
    "ChannelSetup",
    "CheckFacts",
    "Content",
    "Delivery",
    "Message",
    "Settled",
    "Verdict",
    "alert_ref",
    "backoff_delay",
    "excerpt",
    "group_alerts",
    "judge_answer",
    "message_key",
    "minimal_deliveries",
    "parse_retry_after",
    "plan_deliveries",
    "primary_channel",
    "redact_url",
    "render",
    "settle",
    "webhook_signature",
]

CONSOLE: Final = "console"
SLACK: Final = "slack"
OPSGENIE: Final = "opsgenie"
WEBHOOK: Final = "webhook"
PAGERDUTY: Final = "pagerduty"
CHANNELS: Final = (CONSOLE, SLACK, OPSGENIE, WEBHOOK, PAGERDUTY)

#: Drift types whose alerts of one check make one message (upstream: one message per task for SPC and PSI).
GROUPED_TYPES: Final = frozenset({"Spc", "Psi"})
#: PagerDuty dedup keys hold 255 characters, OpsGenie aliases 512: longer id lists are abbreviated.
MAX_KEY_LENGTH: Final = 200
#: Slack rejects a text object over 3000 characters, OpsGenie truncates messages at 130 and descriptions at 15000,
#: PagerDuty summaries at 1024.
SLACK_TEXT_LIMIT: Final = 3000
OPSGENIE_MESSAGE_LIMIT: Final = 130
OPSGENIE_DESCRIPTION_LIMIT: Final = 15000
PAGERDUTY_SUMMARY_LIMIT: Final = 1024
#: A Retry-After beyond this is treated as this (a misconfigured proxy must not park alerts for days).
MAX_RETRY_AFTER: Final = 3600.0


# ------------------------------------------------------------------------------------------------ inputs


@attrs.frozen
class ChannelSetup:
    """Which channels this server can reach (from the settings; never the credentials themselves)."""

    slack: bool = False
    opsgenie: bool = False
    webhook: bool = False
    pagerduty: bool = False
    pagerduty_severity: str = "warning"


@attrs.frozen
class AlertRow:
    """A stored ``drift_alert`` row, as the dispatcher reads it."""

    id: int
    created_at: datetime
    space: str
    name: str
    version: str
    drift_type: str
    entity_name: str
    alert: Mapping[str, Any]
    #: The start of the data the check read (the profile's previous_run when the alert was stored); None: all data.
    window_start: datetime | None = None


@attrs.frozen
class CheckFacts:
    """What the planner looked up for a message."""

    profile: DriftProfile | None = None
    #: Why there is no profile (missing, or unreadable), for the message's note.
    problem: str | None = None
    schedule: str | None = None
    #: Records per feature or metric in the check's window (SPC points, PSI counts, custom records).
    samples: Mapping[str, int] = attrs.field(factory=dict)


def alert_ref(alert_id: int) -> str:
    """The link-friendly name of one alert."""
    return f"scouter-alert-{alert_id}"


def message_key(ids: Iterable[int]) -> str:
    """Stable, unique name of a message (its alerts' ids): webhook delivery id, OpsGenie alias, PagerDuty dedup key."""
    ordered = sorted(ids)
    key = "scouter-alert-" + "-".join(map(str, ordered))
    if len(key) > MAX_KEY_LENGTH:
        key = f"scouter-alert-{ordered[0]}-and-{len(ordered) - 1}-more"
    return key


@attrs.frozen
class Message:
    """The alerts one message covers (at least one), in id order."""

    alerts: tuple[AlertRow, ...]

    @property
    def head(self) -> AlertRow:
        return self.alerts[0]

    @property
    def ids(self) -> tuple[int, ...]:
        return tuple(row.id for row in self.alerts)

    @property
    def key(self) -> str:
        return message_key(self.ids)

    @property
    def space(self) -> str:
        return self.head.space

    @property
    def name(self) -> str:
        return self.head.name

    @property
    def version(self) -> str:
        return self.head.version

    @property
    def drift_type(self) -> str:
        return self.head.drift_type

    @property
    def created_at(self) -> datetime:
        return self.head.created_at

    @property
    def window_start(self) -> datetime | None:
        return self.head.window_start

    @property
    def entity(self) -> str:
        return f"{self.space}/{self.name}/{self.version}"


def group_alerts(rows: Iterable[AlertRow]) -> list[Message]:
    """Messages in the order their alerts were stored: one per SPC/PSI check, one per custom alert."""
    groups: dict[tuple[Any, ...], list[AlertRow]] = {}
    for row in sorted(rows, key=lambda r: (r.created_at, r.id)):
        if row.drift_type in GROUPED_TYPES:
            key: tuple[Any, ...] = (row.created_at, row.space, row.name, row.version, row.drift_type)
        else:
            key = (row.created_at, row.id)
        groups.setdefault(key, []).append(row)
    return [Message(tuple(rows)) for rows in groups.values()]


# ------------------------------------------------------------------------------------------------ content

_ZONES = {zone.display: zone for zone in AlertZone}
_KINDS = {kind.display: kind for kind in SpcAlertType}


def _text(alert: Mapping[str, Any], key: str) -> str:
    value = alert[key]
    if not isinstance(value, str):
        raise TypeError(f"alert field {key!r} is not a string")
    return value


def _spc_alert(row: AlertRow) -> SpcAlert:
    return SpcAlert(_ZONES[_text(row.alert, "zone")], _KINDS[_text(row.alert, "kind")])


def _psi_alert(row: AlertRow, facts: CheckFacts, profile: PsiDriftProfile | None) -> PsiFeatureAlert:
    feature = row.entity_name
    bins = len(profile.features[feature].bins) if profile is not None and feature in profile.features else None
    return PsiFeatureAlert(
        feature, float(_text(row.alert, "psi")), float(_text(row.alert, "threshold")), facts.samples.get(feature), bins
    )


def _custom_alert(row: AlertRow) -> CustomMetricAlert:
    margin = _text(row.alert, "alert_threshold_value")
    return CustomMetricAlert(
        row.entity_name,
        float(_text(row.alert, "training_metric_value")),
        float(_text(row.alert, "observed_metric_value")),
        AlertThreshold(_text(row.alert, "alert_threshold")),
        None if margin == "None" else float(margin),
    )


@attrs.frozen
class Content:
    """What every channel's message of one `Message` is made of."""

    message: Message
    #: Upstream's description text per dispatcher style (§7).
    descriptions: Mapping[DispatchStyle, str]
    #: One line per alert: which rule or threshold fired, on how much data.
    reasons: tuple[str, ...]
    #: The window of data the check read, and the schedule.
    window: str
    #: The alerts' ids and where to find them.
    reference: str

    @property
    def why(self) -> str:
        """The plain-text "why it fired" section appended to Console and OpsGenie messages."""
        lines = ["Why it fired:", *(f"  - {reason}" for reason in self.reasons), self.window, self.reference]
        return "\n".join(lines) + "\n"

    @property
    def summary(self) -> str:
        return f"Drift detected for {self.message.entity}"

    @property
    def alerts_path(self) -> str:
        return alerts_path(self.message)


def alerts_path(message: Message) -> str:
    """``/scouter/alerts?...``: the client's query that returns this message's alerts (and newer ones)."""
    query = urlencode(
        {
            "name": message.name,
            "space": message.space,
            "version": message.version,
            "limit_datetime": rfc3339(message.created_at),
        }
    )
    return f"/scouter/alerts?{query}"


def _spc_content(message: Message, facts: CheckFacts) -> tuple[dict[DispatchStyle, str], list[str]]:
    by_feature: dict[str, set[SpcAlert]] = {}
    for row in message.alerts:
        by_feature.setdefault(row.entity_name, set()).add(_spc_alert(row))
    profile = facts.profile if isinstance(facts.profile, SpcDriftProfile) else None
    rule = profile.rule if profile is not None else DEFAULT_SPC_RULE
    sample_size = profile.config.sample_size if profile is not None else None
    reasons = []
    for feature in sorted(by_feature):
        points = facts.samples.get(feature)
        tail = f"; {points} points in the window" if points is not None else ""
        reasons += [
            spc_reason(feature, a, rule, sample_size) + tail for a in sorted(by_feature[feature], key=SpcAlert.sort_key)
        ]
    return {style: spc_description(by_feature, style) for style in DispatchStyle}, reasons


def _psi_content(message: Message, facts: CheckFacts) -> tuple[dict[DispatchStyle, str], list[str]]:
    profile = facts.profile if isinstance(facts.profile, PsiDriftProfile) else None
    threshold = psi_threshold_of(profile.threshold) if profile is not None else None
    alerts = sorted((_psi_alert(row, facts, profile) for row in message.alerts), key=lambda a: a.feature)
    reasons = [psi_reason(alert, threshold) for alert in alerts]
    return {style: psi_description(alerts, style) for style in DispatchStyle}, reasons


def _custom_content(message: Message, facts: CheckFacts) -> tuple[dict[DispatchStyle, str], list[str]]:
    profile = facts.profile if isinstance(facts.profile, CustomDriftProfile) else None
    alerts = [_custom_alert(row) for row in message.alerts]
    reasons = []
    for alert in alerts:
        records = facts.samples.get(alert.metric)
        line = custom_reason(alert)
        if records is not None:
            line += f"; the observed value is the mean of {records} records in the window"
            if profile is not None:
                line += f", each averaging {profile.config.sample_size} values"
        reasons.append(line)
    return {style: "".join(custom_description(a, style) for a in alerts) for style in DispatchStyle}, reasons


def _generic_content(message: Message) -> tuple[dict[DispatchStyle, str], list[str]]:
    """For alert maps this server cannot read as their drift type: every field as stored."""
    lines = []
    for row in message.alerts:
        fields = ", ".join(f"{key}: {value}" for key, value in sorted(row.alert.items()) if key != "entity_name")
        lines.append(f"{row.entity_name}: {fields}" if fields else row.entity_name)
    description = f"{message.drift_type} drift alerts:\n" + "".join(f"    {line}\n" for line in lines)
    return {style: description for style in DispatchStyle}, lines


_CONTENT = {"Spc": _spc_content, "Psi": _psi_content, "Custom": _custom_content}


def render(message: Message, facts: CheckFacts) -> Content:
    """The texts of `message`; alert maps that do not read as their drift type are shown field by field."""
    build = _CONTENT.get(message.drift_type)
    try:
        if build is None:
            raise ValueError(f"unknown drift type {message.drift_type!r}")
        descriptions, reasons = build(message, facts)
    except (KeyError, ValueError, TypeError):
        descriptions, reasons = _generic_content(message)
    end = rfc3339(message.created_at)
    start = message.window_start
    window = f"Window: records after {rfc3339(start)} up to {end}" if start else f"Window: every record up to {end}"
    if facts.schedule:
        window += f" (schedule {facts.schedule})"
    refs = ", ".join(alert_ref(i) for i in message.ids)
    reference = f"Alert IDs: {refs} (GET {alerts_path(message)})"
    return Content(message, descriptions, tuple(reasons), window, reference)


# ------------------------------------------------------------------------------------------------ payloads


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _mrkdwn(text: str) -> str:
    """Escape the three characters Slack's mrkdwn reserves (our lines contain ``>`` and ``<``)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _alert_map(row: AlertRow) -> dict[str, str]:
    return {
        str(key): value if isinstance(value, str) else orjson.dumps(value).decode() for key, value in row.alert.items()
    }


def console_payload(content: Content) -> dict[str, Any]:
    """``{"text": ...}``: upstream's Console text (§7) followed by why it fired."""
    m = content.message
    text = console_text(m.space, m.name, m.version, content.descriptions[DispatchStyle.CONSOLE])
    if text is None:  # an empty description: upstream prints nothing, but the alert still exists
        text = f"\nDrift detected for {m.space}/{m.name}/{m.version}! \n"
    return {"text": text + content.why}


def slack_payload(channel: str, content: Content) -> dict[str, Any]:
    """Upstream's ``chat.postMessage`` body (§7: header, entity, description blocks), then a section saying why it
    fired, a context block with the alert ids, and a ``text`` fallback for notifications."""
    m = content.message
    body = slack_body(
        channel, m.space, m.name, m.version, _clip(content.descriptions[DispatchStyle.SLACK], SLACK_TEXT_LIMIT)
    )
    why = "\n".join(["*Why it fired*", *(f"• {_mrkdwn(r)}" for r in content.reasons), _mrkdwn(content.window)])
    body["blocks"].append({"type": "section", "text": {"type": "mrkdwn", "text": _clip(why, SLACK_TEXT_LIMIT)}})
    body["blocks"].append(
        {
            "type": "context",
            "elements": [{"type": "mrkdwn", "text": _clip(_mrkdwn(content.reference), SLACK_TEXT_LIMIT)}],
        }
    )
    body["text"] = content.summary
    return body


def opsgenie_payload(team: str, priority: str | None, content: Content) -> dict[str, Any]:
    """Upstream's OpsGenie body (§7) with why it fired appended to the description, the message key as ``alias``
    (OpsGenie folds a repeated alias into the open alert) and the facts as ``details``."""
    m = content.message
    description = _clip(content.descriptions[DispatchStyle.OPSGENIE] + "\n" + content.why, OPSGENIE_DESCRIPTION_LIMIT)
    body = opsgenie_body(team, m.space, m.name, m.version, description, priority or DEFAULT_OPSGENIE_PRIORITY)
    body["message"] = _clip(body["message"], OPSGENIE_MESSAGE_LIMIT)
    body["alias"] = m.key
    body["source"] = "scouter"
    body["details"] = {
        "alert_ids": ",".join(map(str, m.ids)),
        "drift_type": m.drift_type,
        "window_start": rfc3339(m.window_start) if m.window_start else "",
        "checked_at": rfc3339(m.created_at),
        "alerts": content.alerts_path,
    }
    return body


def webhook_payload(content: Content, facts: CheckFacts, primary: str) -> dict[str, Any]:
    """The webhook's JSON document: the alerts, the profile's alert configuration, why it fired."""
    m = content.message
    alert_config = None
    if facts.profile is not None:
        alert_config = facts.profile.raw.get("config", {}).get("alert_config")
    return {
        "type": "scouter.drift_alert",
        "key": m.key,
        "summary": content.summary,
        "space": m.space,
        "name": m.name,
        "version": m.version,
        "drift_type": m.drift_type,
        "created_at": rfc3339(m.created_at),
        "window": {"start": rfc3339(m.window_start) if m.window_start else None, "end": rfc3339(m.created_at)},
        "alerts": [
            {"id": row.id, "ref": alert_ref(row.id), "entity_name": row.entity_name, "alert": _alert_map(row)}
            for row in m.alerts
        ],
        "reasons": list(content.reasons),
        "samples": dict(facts.samples),
        "description": content.descriptions[DispatchStyle.CONSOLE],
        "profile": {"schedule": facts.schedule, "alert_config": alert_config, "primary_channel": primary},
        "link": content.alerts_path,
    }


def pagerduty_payload(content: Content, severity: str) -> dict[str, Any]:
    """A PagerDuty Events API v2 ``trigger`` without its ``routing_key`` (added when sent); ``dedup_key`` is the
    message key, so a repeated delivery updates the same incident."""
    m = content.message
    return {
        "event_action": "trigger",
        "dedup_key": m.key,
        "client": "Scouter",
        "payload": {
            "summary": _clip(f"{content.summary}: " + "; ".join(content.reasons), PAGERDUTY_SUMMARY_LIMIT),
            "source": f"scouter:{m.entity}",
            "severity": severity,
            "timestamp": rfc3339(m.created_at),
            "component": m.name,
            "group": m.space,
            "class": f"{m.drift_type} drift",
            "custom_details": {
                "alert_ids": list(m.ids),
                "reasons": list(content.reasons),
                "window": content.window,
                "alerts": {alert_ref(row.id): _alert_map(row) for row in m.alerts},
                "link": content.alerts_path,
            },
        },
    }


@attrs.frozen
class Delivery:
    """One message on one channel, ready to be stored: the request body (no credentials) and why this channel."""

    channel: str
    payload: dict[str, Any]
    note: str | None = None


def primary_channel(dispatch: DispatchConfig | None, setup: ChannelSetup) -> tuple[str, str | None]:
    """The channel a profile's ``dispatch_config`` selects, and a note when it falls back to Console."""
    if isinstance(dispatch, SlackDispatch):
        if setup.slack:
            return SLACK, None
        return CONSOLE, "Slack dispatch without SLACK_APP_TOKEN: sent to Console instead"
    if isinstance(dispatch, OpsGenieDispatch):
        if setup.opsgenie:
            return OPSGENIE, None
        return CONSOLE, "OpsGenie dispatch without OPSGENIE_API_KEY: sent to Console instead"
    if isinstance(dispatch, ConsoleDispatch):
        return CONSOLE, None
    if dispatch is None:
        return CONSOLE, "no readable profile: sent to Console"
    return CONSOLE, f"unknown dispatch config {', '.join(map(str, dispatch)) or '{}'}: sent to Console instead"


def plan_deliveries(message: Message, facts: CheckFacts, setup: ChannelSetup) -> list[Delivery]:
    """The deliveries of `message`: the profile's channel, then the webhook and PagerDuty when configured."""
    content = render(message, facts)
    dispatch = facts.profile.dispatch_config if facts.profile is not None else None
    channel, note = primary_channel(dispatch, setup)
    if facts.profile is None and facts.problem:
        note = f"{facts.problem}: sent to Console"
    if isinstance(dispatch, SlackDispatch) and channel == SLACK:
        deliveries = [Delivery(SLACK, slack_payload(dispatch.channel, content))]
    elif isinstance(dispatch, OpsGenieDispatch) and channel == OPSGENIE:
        deliveries = [Delivery(OPSGENIE, opsgenie_payload(dispatch.team, dispatch.priority, content))]
    else:
        deliveries = [Delivery(CONSOLE, console_payload(content), note)]
    if setup.webhook:
        deliveries.append(Delivery(WEBHOOK, webhook_payload(content, facts, channel)))
    if setup.pagerduty:
        deliveries.append(Delivery(PAGERDUTY, pagerduty_payload(content, setup.pagerduty_severity)))
    return deliveries


def minimal_deliveries(message: Message, problem: str) -> list[Delivery]:
    """A Console message listing the alerts as stored: what is sent when planning failed unexpectedly."""
    content = render(Message(message.alerts), CheckFacts(problem=problem))
    text = f"\nDrift detected for {message.entity}! \n" + content.descriptions[DispatchStyle.CONSOLE] + content.why
    return [Delivery(CONSOLE, {"text": text}, f"planning failed ({problem}): sent to Console")]


# ------------------------------------------------------------------------------------------------ answers

SENT: Final = "sent"
RETRY: Final = "retry"
FAILED: Final = "failed"

_RETRY_STATUS = frozenset({408, 425, 429})
#: Slack answers 200 with ``"ok": false``; these errors are worth another try, every other one is final.
_SLACK_TRANSIENT = frozenset({"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"})


@attrs.frozen
class Verdict:
    """What one attempt came to: sent, retry (with the server's Retry-After, if any) or failed."""

    outcome: str
    detail: str | None = None
    status: int | None = None
    retry_after: float | None = None


def excerpt(body: bytes, limit: int = 300) -> str:
    """The start of a response body, on one line, for the error record."""
    text = " ".join(body.decode("utf-8", "replace").split())
    return _clip(text, limit) if text else "(empty body)"


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP-date), at most `MAX_RETRY_AFTER`;
    None when absent or unreadable."""
    if value is None:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - now).total_seconds()
    if math.isnan(seconds):
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def _slack_error(body: bytes) -> str | None:
    """The ``error`` of a Slack answer whose ``ok`` is false; None when it succeeded (or is not Slack JSON)."""
    try:
        answer = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if isinstance(answer, dict) and answer.get("ok") is False:
        return str(answer.get("error") or "unknown error")
    return None


def judge_answer(channel: str, status: int, body: bytes, retry_after: str | None, now: datetime) -> Verdict:
    """What an HTTP answer of a channel means for the delivery."""
    wait = parse_retry_after(retry_after, now)
    if 200 <= status < 300:
        error = _slack_error(body) if channel == SLACK else None
        if error is None:
            return Verdict(SENT, None, status)
        outcome = RETRY if error in _SLACK_TRANSIENT else FAILED
        return Verdict(outcome, f"Slack answered ok=false: {error}", status, wait)
    detail = f"HTTP {status}: {excerpt(body)}"
    if status in _RETRY_STATUS or status >= 500:
        return Verdict(RETRY, detail, status, wait)
    return Verdict(FAILED, detail, status)


def backoff_delay(attempt: int, base: float, cap: float, unit: float) -> float:
    """Seconds before retrying after the `attempt`-th failed attempt (1, 2, ...): ``base · 2^(attempt-1)`` capped
    at `cap`, with "equal jitter" (`unit` uniform in [0, 1) picks between half and all of it), so replicas that
    failed together spread out yet every retry still backs off."""
    ceiling = min(cap, base * 2.0 ** min(max(attempt, 1) - 1, 60))
    return ceiling / 2 + ceiling / 2 * unit


@attrs.frozen
class Settled:
    """The delivery's next state after an attempt: sent, failed, or pending again in `delay` seconds."""

    state: str  # "sent" | "failed" | "pending"
    delay: float = 0.0
    error: str | None = None
    gave_up: bool = False


def settle(verdict: Verdict, attempts_before: int, max_attempts: int, base: float, cap: float, unit: float) -> Settled:
    """Apply the retry policy to an attempt's verdict (`unit`: a uniform random number in [0, 1) for the jitter)."""
    attempt = attempts_before + 1
    if verdict.outcome == SENT:
        return Settled("sent")
    if verdict.outcome == FAILED:
        return Settled("failed", error=verdict.detail)
    if attempt >= max_attempts:
        return Settled("failed", error=f"gave up after {attempt} attempts; last: {verdict.detail}", gave_up=True)
    if verdict.retry_after:
        return Settled("pending", verdict.retry_after, verdict.detail)
    return Settled("pending", backoff_delay(attempt, base, cap, unit), verdict.detail)


def webhook_signature(secret: str, body: bytes) -> str:
    """``X-Scouter-Signature`` value: ``sha256=`` and the hex HMAC-SHA256 of the exact body bytes."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def redact_url(url: str) -> str:
    """Scheme, host and port only: webhook URLs often carry their credential in the path or query."""
    parts = urlsplit(url)
    port = f":{parts.port}" if parts.port else ""
    rest = "/…" if parts.path not in ("", "/") or parts.query else ""
    return f"{parts.scheme}://{parts.hostname or ''}{port}{rest}"
