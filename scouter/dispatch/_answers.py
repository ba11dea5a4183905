"""What a channel's answer means for a delivery, and the retry policy (spec §12 #26).

A 2xx is sent (Slack: unless its JSON body says ``"ok": false``). Timeouts, transport errors, 408, 425, 429 and 5xx
are retried with exponential backoff and jitter (after ``Retry-After`` when the answer has one); any other status is
a permanent failure, recorded with its reason. Also here: the webhook's signature and the redaction of URLs for logs.
"""

from __future__ import annotations

import email.utils
import hashlib
import hmac
import math
from datetime import UTC, datetime
from typing import Final
from urllib.parse import urlsplit

import attrs
import orjson

from ._content import clip
from ._messages import SLACK

#: A Retry-After beyond this is treated as this (a misconfigured proxy must not park alerts for days).
MAX_RETRY_AFTER: Final = 3600.0

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
    return clip(text, limit) if text else "(empty body)"


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
