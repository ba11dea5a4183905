"""One delivery attempt per channel, on virtual time with httpx.MockTransport (no sockets, no database): the request
each channel gets, credentials added only when sending, and the timeout."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import orjson
import pytest
import trio
import trio.testing
from prometheus_client import CollectorRegistry

from actors.database import DatabaseHandle
from actors.dispatcher import ClaimedDelivery, Dispatcher
from actors.metrics import ScouterMetrics
from config import DispatchSettings
from scouter.dispatch import FAILED, RETRY, SENT, Verdict

PAYLOAD = {"channel": "#ml", "blocks": [], "text": "Drift detected for cap/model/1.0.0"}
Handler = Callable[[httpx.Request], httpx.Response | Awaitable[httpx.Response]]


def delivery(channel: str, payload: dict[str, Any] | None = None) -> ClaimedDelivery:
    return ClaimedDelivery(
        id=1,
        channel=channel,
        payload=dict(PAYLOAD if payload is None else payload),
        attempts=0,
        lease_token=uuid.uuid4(),
        message_key="scouter-alert-7-8",
        alert_ids=(7, 8),
        alert_created_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        space="cap",
        name="model",
        version="1.0.0",
        drift_type="Spc",
        reclaimed_from=None,
    )


SETTINGS = DispatchSettings(
    slack_app_token="xoxb-1",
    slack_api_url="https://slack.test/api/",
    opsgenie_api_key="genie-1",
    opsgenie_api_url="https://opsgenie.test/v2/alerts",
    webhook_url="https://hooks.test/T1/secret-path",
    webhook_secret="shh",
    pagerduty_routing_key="routing-1",
    pagerduty_url="https://events.test/v2/enqueue",
)


async def attempt(
    d: ClaimedDelivery, handler: Handler, settings: DispatchSettings = SETTINGS, console: list[str] | None = None
) -> tuple[Verdict, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    async def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        response = handler(request)
        return response if isinstance(response, httpx.Response) else await response

    sink = console if console is not None else []
    dispatcher = Dispatcher(
        DatabaseHandle(),
        settings,
        ScouterMetrics.create(CollectorRegistry(), process=False),
        console=sink.append,
    )
    async with httpx.AsyncClient(transport=httpx.MockTransport(record)) as client:
        verdict = await dispatcher.send(client, d)
    return verdict, seen


def ok(_: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json={"ok": True})


async def test_slack_request() -> None:
    """chat.postMessage under SLACK_API_URL, Bearer token, the stored body in its key order."""
    verdict, (request,) = await attempt(delivery("slack"), ok)

    assert Verdict(SENT, None, 200) == verdict
    assert "https://slack.test/api/chat.postMessage" == str(request.url)
    assert "Bearer xoxb-1" == request.headers["authorization"]
    assert orjson.dumps(PAYLOAD) == request.content


async def test_opsgenie_request() -> None:
    """OPSGENIE_API_URL itself, GenieKey authorization."""
    verdict, (request,) = await attempt(delivery("opsgenie", {"message": "m"}), lambda _: httpx.Response(202))

    assert SENT == verdict.outcome
    assert ("https://opsgenie.test/v2/alerts", "GenieKey genie-1") == (
        str(request.url),
        request.headers["authorization"],
    )


async def test_webhook_request_is_signed() -> None:
    """The webhook gets the body, its HMAC signature, the message key as delivery id, and no Authorization."""
    _, (request,) = await attempt(delivery("webhook", {"key": "scouter-alert-7-8"}), ok)

    body = orjson.dumps({"key": "scouter-alert-7-8"})
    assert body == request.content
    assert "sha256=" + hmac.new(b"shh", body, hashlib.sha256).hexdigest() == request.headers["x-scouter-signature"]
    assert ("scouter-alert-7-8", "drift_alert") == (
        request.headers["x-scouter-delivery"],
        request.headers["x-scouter-event"],
    )
    assert "authorization" not in request.headers


async def test_pagerduty_request_gets_the_routing_key() -> None:
    """The routing key is added to the event when it is sent, first."""
    _, (request,) = await attempt(delivery("pagerduty", {"event_action": "trigger"}), lambda _: httpx.Response(202))

    assert "https://events.test/v2/enqueue" == str(request.url)
    assert {"routing_key": "routing-1", "event_action": "trigger"} == orjson.loads(request.content)


async def test_console_prints_the_stored_text() -> None:
    """Console deliveries go to the console sink, never over HTTP."""
    console: list[str] = []
    verdict, seen = await attempt(delivery("console", {"text": "hello"}), ok, console=console)

    assert (Verdict(SENT), [], ["hello"]) == (verdict, seen, console)


async def test_a_channel_unconfigured_since_planning_fails() -> None:
    """A webhook delivery on a server without SCOUTER_WEBHOOK_URL is failed, not sent anywhere."""
    verdict, seen = await attempt(delivery("webhook"), ok, DispatchSettings())

    assert (Verdict(FAILED, "webhook is not configured on this server"), []) == (verdict, seen)


async def test_connection_errors_are_retried_without_showing_the_webhook_url() -> None:
    """A refused connection is retried; the error names the host only (webhook URLs hold credentials)."""

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"cannot reach {request.url}", request=request)

    verdict, _ = await attempt(delivery("webhook"), refuse)

    assert RETRY == verdict.outcome
    assert verdict.detail == "ConnectError talking to https://hooks.test/…: cannot reach https://hooks.test/…"


@pytest.mark.parametrize("channel", ["slack", "webhook"])
async def test_no_answer_within_the_timeout_is_retried(channel: str, mock_clock: trio.testing.MockClock) -> None:
    """A channel that never answers: the attempt ends after exactly the timeout (virtual time), as a retry."""

    async def hang(_: httpx.Request) -> httpx.Response:
        await trio.sleep_forever()
        raise AssertionError("unreachable")

    started = trio.current_time()
    with trio.fail_after(3600):
        verdict, _ = await attempt(delivery(channel), hang)

    assert 10.0 == trio.current_time() - started
    assert RETRY == verdict.outcome
    assert verdict.detail is not None
    assert verdict.detail.endswith("within 10 s")
