"""Alert routes (server.md §2.11): list a model's alerts, change an alert's status.

Differences from upstream v0.6.4, on purpose:

* both routes check permissions (§12 #14): read on ``space`` to list, write on ``space`` to update;
* ``PUT`` matches the space as well as the id, so a writer of one space cannot flip another space's alert by guessing
  its id; an id that matches nothing (unknown, or in another space) is a 404 ``{"error": "Alert not found"}``
  (upstream answers 500 for an unknown id). The 0.6.4 client never calls ``PUT``;
* a malformed query is a 400 naming the field (upstream: a plain-text framework 400), a malformed body a 422;
  a negative ``limit`` is a 400 (upstream: a 500 from PostgreSQL), and so is a NUL in ``space``, ``name`` or
  ``version`` (PostgreSQL text cannot hold one; a 422 in the body of ``PUT``).
"""

from __future__ import annotations

import orjson
from quart import Blueprint, Response, request

from scouter.alert_requests import AlertRequestError, alert_document, parse_alert_query, parse_alert_update
from scouter.auth import Requirement
from scouter.sql import LIST_ALERTS, SET_ALERT_ACTIVE

from ._context import context
from ._guard import guarded, json_object
from ._openapi import (
    BEARER,
    BODY_ERRORS,
    QUERY_ERRORS,
    Alerts,
    AlertUpdated,
    DriftAlertRequest,
    ErrorBody,
    UpdateAlertStatus,
    documented,
)
from ._responses import DB_ERRORS, database_failure, json_response, raw_json_response

blueprint = Blueprint("alerts", __name__)

_UPDATED = orjson.dumps({"updated": True})


def _nul_in(**fields: str) -> str | None:
    """The first field holding a NUL, which PostgreSQL text cannot store (so nothing stored can match it)."""
    return next((name for name, value in fields.items() if "\x00" in value), None)


@blueprint.get("/scouter/alerts")
@documented(
    tags=["alerts"],
    summary="A model's drift alerts, newest first.",
    security=BEARER,
    query=DriftAlertRequest,
    responses={**QUERY_ERRORS, 200: Alerts},
)
@guarded(Requirement.read())
async def list_alerts() -> Response:
    try:
        query = parse_alert_query(request.args)
    except AlertRequestError as exc:
        return json_response({"error": f"Invalid alert request: {exc.reason}"}, 400)
    bad = _nul_in(space=query.space, name=query.name, version=query.version)
    if bad is not None:
        return json_response({"error": f"Invalid alert request: {bad}: must not contain NUL"}, 400)
    try:
        rows = await context().db.fetch(
            LIST_ALERTS, query.space, query.name, query.version, query.since, query.active_only, query.limit
        )
    except DB_ERRORS as exc:
        status, detail = database_failure(exc)
        return json_response({"error": f"Failed to get drift alerts: {detail}"}, status)
    alerts = [
        alert_document(
            r["created_at"], r["name"], r["space"], r["version"], r["entity_name"], r["alert"], r["id"],
            r["drift_type"], r["active"],
        )
        for r in rows
    ]  # fmt: skip
    return json_response({"alerts": alerts})


@blueprint.put("/scouter/alerts")
@documented(
    tags=["alerts"],
    summary="Acknowledge (deactivate) or reactivate an alert.",
    security=BEARER,
    body=UpdateAlertStatus,
    responses={**BODY_ERRORS, 200: AlertUpdated, 404: ErrorBody},
)
@guarded(Requirement.write())
async def update_alert() -> Response:
    try:
        update = parse_alert_update(await json_object())
    except AlertRequestError as exc:
        return json_response({"error": f"Invalid alert update: {exc.reason}"}, 422)
    if _nul_in(space=update.space) is not None:
        return json_response({"error": "Invalid alert update: space: must not contain NUL"}, 422)
    try:
        row = await context().db.fetchrow(SET_ALERT_ACTIVE, update.id, update.active, update.space)
    except DB_ERRORS as exc:
        status, detail = database_failure(exc)
        return json_response({"error": f"Failed to update drift alert: {detail}"}, status)
    if row is None:
        return json_response({"error": "Alert not found"}, 404)
    if row["active"] != update.active:  # upstream's check; an UPDATE that returned the row cannot differ
        return json_response({"error": "Failed to update drift alert status"}, 400)
    return raw_json_response(_UPDATED)
