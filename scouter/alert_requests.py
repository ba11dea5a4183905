"""The alert routes' requests and response rows (server.md §2.11, client.md §3.1 #9): parsing and shaping, pure.

``GET /scouter/alerts`` carries a ``DriftAlertRequest`` as flat ``key=value`` pairs: ``name``, ``space``, ``version``
(required), ``limit_datetime`` (RFC 3339), ``active`` (``true``/``false``), ``limit`` (i32). ``active=false``, like
an absent ``active``, means every alert (upstream's behaviour, which the client relies on: §12 #15).

``PUT /scouter/alerts`` carries ``UpdateAlertStatus`` ``{"id": i32, "active": bool, "space": str}``, decoded by its
declaration in `scouter.wire.v064`.

The client parses each alert strictly: every field present with its exact type, ``id`` an integer, ``created_at``
with an offset, and ``alert`` a map of strings. `alert_document` guarantees that shape whatever a row holds.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

import attrs
import orjson

from scouter.binned import rfc3339
from scouter.records import parse_rfc3339
from scouter.wire.common import FaultyBody, convert_body, show
from scouter.wire.v064 import Alert, UpdateAlertStatus

__all__ = [
    "AlertQuery",
    "AlertRequestError",
    "AlertUpdate",
    "alert_document",
    "parse_alert_query",
    "parse_alert_update",
]

INT32_MAX: Final = 2**31 - 1
INT32_MIN: Final = -(2**31)


class AlertRequestError(ValueError):
    """A request that cannot be served; the message names the field and the problem."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@attrs.frozen
class AlertQuery:
    space: str
    name: str
    version: str
    since: datetime | None = None
    active_only: bool = False
    limit: int | None = None


@attrs.frozen
class AlertUpdate:
    id: int
    active: bool
    space: str


def _required(args: Mapping[str, str], field: str) -> str:
    value = args.get(field)
    if value is None:
        raise AlertRequestError(f"missing query parameter {field!r}")
    return value


def _bool(text: str, field: str) -> bool:
    if text == "true":
        return True
    if text == "false":
        return False
    raise AlertRequestError(f"{field}: expected true or false, got {text!r}")


def _limit(text: str) -> int:
    body = text[1:] if text[:1] in "+-" else text
    if not (body.isascii() and body.isdigit()):
        raise AlertRequestError(f"limit: expected an integer, got {text!r}")
    value = int(text)
    if not INT32_MIN <= value <= INT32_MAX:
        raise AlertRequestError(f"limit: out of range for a 32-bit integer, got {text!r}")
    if value < 0:  # upstream hands it to LIMIT, which PostgreSQL refuses (a 500 there)
        raise AlertRequestError(f"limit: must not be negative, got {value}")
    return value


def _datetime(text: str, field: str) -> datetime:
    # An unencoded '+' offset arrives as a space after form decoding; nothing else may hold one.
    if len(text) >= 6 and text[-6] == " ":
        text = f"{text[:-6]}+{text[-5:]}"
    try:
        return parse_rfc3339(text)
    except ValueError as exc:
        raise AlertRequestError(f"{field}: {exc}, got {text!r}") from None


def parse_alert_query(args: Mapping[str, str]) -> AlertQuery:
    """A ``DriftAlertRequest`` from the query string; `AlertRequestError` names the first bad field."""
    space, name, version = _required(args, "space"), _required(args, "name"), _required(args, "version")
    since_text = args.get("limit_datetime")
    active_text = args.get("active")
    limit_text = args.get("limit")
    return AlertQuery(
        space=space,
        name=name,
        version=version,
        since=None if since_text is None else _datetime(since_text, "limit_datetime"),
        active_only=False if active_text is None else _bool(active_text, "active"),
        limit=None if limit_text is None else _limit(limit_text),
    )


#: How each field's fault is worded (serde's words, which the 0.6.4 client has always seen).
_UPDATE_EXPECTED: Final = {"id": "a 32-bit integer", "active": "a boolean", "space": "a string"}


def parse_alert_update(body: dict[str, Any]) -> AlertUpdate:
    """An ``UpdateAlertStatus`` body; `AlertRequestError` names the first bad field (extra fields are ignored)."""
    try:
        update = convert_body(body, UpdateAlertStatus)
    except FaultyBody as exc:
        field, missing, value, _ = exc.fault
        if missing:
            raise AlertRequestError(f"missing field {field!r}") from None
        raise AlertRequestError(f"{field}: expected {_UPDATE_EXPECTED[field]}, got {show(value)}") from None
    return AlertUpdate(update.id, update.active, update.space)


def _string_map(alert: Any) -> dict[str, str]:
    """The stored alert map with every value a string (values of another type are written as JSON text)."""
    if isinstance(alert, (str, bytes)):
        alert = orjson.loads(alert)
    if not isinstance(alert, dict):
        return {}
    return {str(k): v if isinstance(v, str) else orjson.dumps(v).decode() for k, v in alert.items()}


def alert_document(
    created_at: datetime,
    name: str,
    space: str,
    version: str,
    entity_name: str,
    alert: Any,
    alert_id: int,
    drift_type: str,
    active: bool,
) -> Alert:
    """One element of ``{"alerts": [...]}``, in upstream's field order and with the exact types the client needs."""
    return Alert(
        created_at=rfc3339(created_at),
        name=name,
        space=space,
        version=version,
        entity_name=entity_name,
        alert=_string_map(alert),
        id=int(alert_id),
        drift_type=drift_type,
        active=bool(active),
    )
