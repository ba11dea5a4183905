"""Each channel's request body of a message, and which channels a message goes to (spec §7, §12 #26).

The profile's ``dispatch_config`` picks the primary channel, as upstream: Console, Slack or OpsGenie. Slack without
SLACK_APP_TOKEN and OpsGenie without OPSGENIE_API_KEY fall back to Console (upstream logs the error and does the
same); an unknown variant, or a profile that no longer exists, goes to Console too. Two channels of ours are
configured for the whole server rather than per profile: a JSON webhook (SCOUTER_WEBHOOK_URL) and PagerDuty Events
API v2 (SCOUTER_PAGERDUTY_ROUTING_KEY). When set, every message goes to them *in addition* to the primary channel.
One message on one channel is a *delivery*; each has its own state, so a failing webhook never re-sends the Slack
message. Payloads never contain credentials: tokens, keys and the routing key are added to the request when it is
sent.
"""

from __future__ import annotations

from typing import Any, Final

import attrs
import orjson

from scouter.alerts import DEFAULT_OPSGENIE_PRIORITY, DispatchStyle, console_text, opsgenie_body, slack_body
from scouter.binned import rfc3339
from scouter.profiles import ConsoleDispatch, DispatchConfig, OpsGenieDispatch, SlackDispatch

from ._content import Content, clip, render
from ._messages import (
    CONSOLE,
    OPSGENIE,
    PAGERDUTY,
    SLACK,
    WEBHOOK,
    AlertRow,
    ChannelSetup,
    CheckFacts,
    Message,
    alert_ref,
)

#: Slack rejects a text object over 3000 characters, OpsGenie truncates messages at 130 and descriptions at 15000,
#: PagerDuty summaries at 1024.
SLACK_TEXT_LIMIT: Final = 3000
OPSGENIE_MESSAGE_LIMIT: Final = 130
OPSGENIE_DESCRIPTION_LIMIT: Final = 15000
PAGERDUTY_SUMMARY_LIMIT: Final = 1024


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
        channel, m.space, m.name, m.version, clip(content.descriptions[DispatchStyle.SLACK], SLACK_TEXT_LIMIT)
    )
    why = "\n".join(["*Why it fired*", *(f"• {_mrkdwn(r)}" for r in content.reasons), _mrkdwn(content.window)])
    body["blocks"].append({"type": "section", "text": {"type": "mrkdwn", "text": clip(why, SLACK_TEXT_LIMIT)}})
    body["blocks"].append(
        {
            "type": "context",
            "elements": [{"type": "mrkdwn", "text": clip(_mrkdwn(content.reference), SLACK_TEXT_LIMIT)}],
        }
    )
    body["text"] = content.summary
    return body


def opsgenie_payload(team: str, priority: str | None, content: Content) -> dict[str, Any]:
    """Upstream's OpsGenie body (§7) with why it fired appended to the description, the message key as ``alias``
    (OpsGenie folds a repeated alias into the open alert) and the facts as ``details``."""
    m = content.message
    description = clip(content.descriptions[DispatchStyle.OPSGENIE] + "\n" + content.why, OPSGENIE_DESCRIPTION_LIMIT)
    body = opsgenie_body(team, m.space, m.name, m.version, description, priority or DEFAULT_OPSGENIE_PRIORITY)
    body["message"] = clip(body["message"], OPSGENIE_MESSAGE_LIMIT)
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
            "summary": clip(f"{content.summary}: " + "; ".join(content.reasons), PAGERDUTY_SUMMARY_LIMIT),
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
