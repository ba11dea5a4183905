"""The HTTP side of a delivery: each channel's request, credentials added only now, and what its answer means.

Credentials come from the settings when the request is built and are never stored, logged or put in error records;
webhook URLs are shown as scheme, host and port only (`redact_url`), in logs and in error details alike.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import attrs
import httpx
import orjson
import trio

from config import DispatchSettings
from scouter.dispatch import (
    FAILED,
    OPSGENIE,
    PAGERDUTY,
    RETRY,
    SLACK,
    WEBHOOK,
    Verdict,
    judge_answer,
    redact_url,
    webhook_signature,
)


@attrs.frozen
class ChannelRequest:
    url: str
    headers: dict[str, str]
    body: bytes
    shown: str  # the URL as it may be logged


def channel_request(
    settings: DispatchSettings, channel: str, payload: dict[str, Any], message_key: str
) -> ChannelRequest | None:
    """The HTTP request of a delivery, credentials added now; None when the channel is not configured."""
    s = settings
    json_headers = {"Content-Type": "application/json; charset=utf-8"}
    if channel == SLACK and s.slack_app_token:
        url = s.slack_api_url.rstrip("/") + "/chat.postMessage"
        headers = {**json_headers, "Authorization": f"Bearer {s.slack_app_token}"}
        return ChannelRequest(url, headers, orjson.dumps(payload), url)
    if channel == OPSGENIE and s.opsgenie_api_key:
        headers = {**json_headers, "Authorization": f"GenieKey {s.opsgenie_api_key}"}
        return ChannelRequest(s.opsgenie_api_url, headers, orjson.dumps(payload), s.opsgenie_api_url)
    if channel == WEBHOOK and s.webhook_url:
        body = orjson.dumps(payload)
        headers = {**json_headers, "X-Scouter-Delivery": message_key, "X-Scouter-Event": "drift_alert"}
        if s.webhook_secret:
            headers["X-Scouter-Signature"] = webhook_signature(s.webhook_secret, body)
        return ChannelRequest(s.webhook_url, headers, body, redact_url(s.webhook_url))
    if channel == PAGERDUTY and s.pagerduty_routing_key:
        body = orjson.dumps({"routing_key": s.pagerduty_routing_key, **payload})
        return ChannelRequest(s.pagerduty_url, json_headers, body, s.pagerduty_url)
    return None


async def post(client: httpx.AsyncClient, channel: str, request: ChannelRequest, answer_within: float) -> Verdict:
    """One attempt at sending `request` on `channel`: what the channel answered, or why there was no answer."""
    try:
        with trio.fail_after(answer_within):
            response = await client.post(request.url, content=request.body, headers=request.headers)
    except (trio.TooSlowError, httpx.TimeoutException):
        return Verdict(RETRY, f"no answer from {request.shown} within {answer_within:g} s")
    except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
        return Verdict(FAILED, f"cannot send to {request.shown}: {type(exc).__name__}")
    except httpx.TransportError as exc:
        detail = str(exc).replace(request.url, request.shown)
        return Verdict(RETRY, f"{type(exc).__name__} talking to {request.shown}: {detail}"[:500])
    return judge_answer(
        channel, response.status_code, response.content, response.headers.get("retry-after"), dt.datetime.now(dt.UTC)
    )
