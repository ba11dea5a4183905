"""`POST /scouter/alerts` of scouter-ml 0.25 (server-v025.md §10): typed alerts, keyset pages. Pure.

Alerts are stored once, as the 0.6.4 string map the pollers write (``{"entity_name", "kind", "zone"}`` ...), and
rendered per route: `GET /scouter/alerts` serves the map as stored, this module turns it into 0.25's externally
tagged `AlertMap` (§10.2: lossless apart from float formatting). A row whose map cannot be read is served as
``"None"``, as upstream serves an unparsable row.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Final, Literal

import orjson

from scouter.drift.spc import AlertZone, SpcAlertType
from scouter.wire.v025 import (
    AlertCursor,
    AlertItem,
    AlertMap,
    CustomAlertBody,
    DriftAlertPaginationRequest,
    DriftAlertPaginationResponse,
    PsiAlertBody,
    SpcAlertBody,
)

__all__ = ["DEFAULT_LIMIT", "alert_map", "page"]

#: Page size when the request leaves `limit` null (upstream's default).
DEFAULT_LIMIT: Final = 50

_KINDS: Final = {kind.display: kind.value for kind in SpcAlertType}
_ZONES: Final = {zone.display: zone.value for zone in AlertZone}
_THRESHOLDS: Final = ("Below", "Above", "Outside")


def _number(text: Any) -> float | None:
    if text is None or text == "None":
        return None
    return float(text)


def alert_map(drift_type: str, stored: Any) -> AlertMap | Literal["None"]:
    """The typed alert of a stored 0.6.4 string map; ``"None"`` when the map is not one of the three forms."""
    if isinstance(stored, (str, bytes)):
        stored = orjson.loads(stored)
    if not isinstance(stored, Mapping):
        return "None"
    try:
        if drift_type == "Spc":
            kind, zone = stored["kind"], stored["zone"]
            body = SpcAlertBody(str(stored["entity_name"]), _KINDS.get(kind, kind), _ZONES.get(zone, zone))
            return AlertMap(Spc=body)
        if drift_type == "Psi":
            drift, threshold = _number(stored["psi"]), _number(stored["threshold"])
            if drift is None or threshold is None:
                return "None"
            return AlertMap(Psi=PsiAlertBody(str(stored["entity_name"]), drift, threshold))
        if drift_type == "Custom":
            baseline, observed = _number(stored["training_metric_value"]), _number(stored["observed_metric_value"])
            threshold = stored["alert_threshold"]
            if baseline is None or observed is None or threshold not in _THRESHOLDS:
                return "None"
            return AlertMap(
                Custom=CustomAlertBody(
                    metric_name=str(stored["entity_name"]),
                    baseline_value=baseline,
                    observed_value=observed,
                    delta=_number(stored.get("alert_threshold_value")),
                    alert_threshold=threshold,
                )
            )
    except (KeyError, TypeError, ValueError):
        return "None"
    return "None"


def _valid_spc(alert: AlertMap | str) -> AlertMap | Literal["None"]:
    """An SPC map with a kind or zone outside the enums (not written by this server) is served as "None"."""
    if isinstance(alert, AlertMap) and alert.Spc is not None:
        if alert.Spc.kind not in _KINDS.values() or alert.Spc.zone not in _ZONES.values():
            return "None"
    return alert if isinstance(alert, AlertMap) else "None"


def _item(row: Mapping[str, Any]) -> AlertItem:
    return AlertItem(
        created_at=row["created_at"],
        entity_name=row["entity_name"],
        alert=_valid_spc(alert_map(row["drift_type"], row["alert"])),
        id=int(row["id"]),
        active=bool(row["active"]),
    )


def _cursor(item: AlertItem) -> AlertCursor:
    return AlertCursor(created_at=item.created_at, id=item.id)


def page(request: DriftAlertPaginationRequest, rows: Sequence[Mapping[str, Any]]) -> DriftAlertPaginationResponse:
    """The response to `request`, from the rows its query returned (at most limit + 1, in the query's order)."""
    limit = DEFAULT_LIMIT if request.limit is None else request.limit
    has_more = len(rows) > limit
    items = [_item(row) for row in rows[:limit]]
    has_cursor = request.cursor_created_at is not None
    if request.direction == "previous":
        items.reverse()  # fetched oldest first, served newest first
        return DriftAlertPaginationResponse(
            items=items,
            has_next=has_cursor,
            next_cursor=_cursor(items[-1]) if items else None,
            has_previous=has_more,
            previous_cursor=_cursor(items[0]) if has_more and items else None,
        )
    return DriftAlertPaginationResponse(
        items=items,
        has_next=has_more,
        next_cursor=_cursor(items[-1]) if has_more and items else None,
        has_previous=has_cursor,
        previous_cursor=_cursor(items[0]) if items else None,
    )


def query_bounds(request: DriftAlertPaginationRequest) -> tuple[datetime | None, int | None, int]:
    """(cursor created_at, cursor id, rows to fetch) of `request`; the cursor counts only with its created_at."""
    limit = DEFAULT_LIMIT if request.limit is None else request.limit
    if request.cursor_created_at is None:
        return None, None, limit + 1
    return request.cursor_created_at, request.cursor_id if request.cursor_id is not None else 0, limit + 1
