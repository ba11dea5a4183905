"""Alert routes (server.md §2.11, server-v025.md §10): list a model's alerts, change an alert's status.

Listing is split by method, the only way to tell the clients apart here (§13.6): ``GET`` (0.6.4) filters by
space/name/version across drift types and serves the stored string maps; ``POST`` (0.25) takes a uid, pages with a
keyset cursor and serves typed `AlertMap`s (`scouter.alert_pages`). Both read the same rows.

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

from quart import Blueprint, Response, request

from scouter.alert_pages import page, query_bounds
from scouter.alert_requests import AlertRequestError, alert_document, parse_alert_query, parse_alert_update
from scouter.auth import Requirement, check
from scouter.sql import ALERTS_PAGE_NEXT, ALERTS_PAGE_PREVIOUS, LIST_ALERTS, SET_ALERT_ACTIVE
from scouter.wire.v025 import DriftAlertPaginationRequest, DriftAlertPaginationResponse, ShapeError, decode, encode
from scouter.wire.v064 import Alerts, AlertUpdated, DriftAlertRequest, ErrorBody, UpdateAlertStatus

from ._context import context
from ._guard import guarded, identity, json_object
from ._openapi import BEARER, BODY_ERRORS, QUERY_ERRORS, documented
from ._responses import DB_ERRORS, database_failure, error_response, raw_json_response, struct_response

blueprint = Blueprint("alerts", __name__)

_UPDATED = encode(AlertUpdated(updated=True))


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
        return error_response(f"Invalid alert request: {exc.reason}", 400)
    bad = _nul_in(space=query.space, name=query.name, version=query.version)
    if bad is not None:
        return error_response(f"Invalid alert request: {bad}: must not contain NUL", 400)
    try:
        rows = await context().db.fetch(
            LIST_ALERTS, query.space, query.name, query.version, query.since, query.active_only, query.limit
        )
    except DB_ERRORS as exc:
        status, detail = database_failure(exc)
        return error_response(f"Failed to get drift alerts: {detail}", status)
    alerts = [
        alert_document(
            r["created_at"], r["name"], r["space"], r["version"], r["entity_name"], r["alert"], r["id"],
            r["drift_type"], r["active"],
        )
        for r in rows
    ]  # fmt: skip
    return struct_response(Alerts(alerts=alerts))


@blueprint.post("/scouter/alerts")
@documented(
    tags=["alerts"],
    summary="scouter-ml 0.25: one page of an entity's drift alerts (by uid), newest first, typed.",
    security=BEARER,
    body=DriftAlertPaginationRequest,
    responses={**BODY_ERRORS, 200: DriftAlertPaginationResponse, 404: ErrorBody},
)
@guarded(Requirement.authenticated())  # read permission on the uid's entity's space, checked below
async def page_alerts() -> Response:
    try:
        wanted = decode(await json_object(), DriftAlertPaginationRequest)
    except ShapeError as exc:
        return error_response(f"Invalid alert request: {exc.reason}", 422)
    ctx = context()
    try:
        entity = await ctx.entities.one(ctx.db, wanted.uid)
    except DB_ERRORS as exc:
        status, detail = database_failure(exc)
        return error_response(f"Failed to get drift alerts: {detail}", status)
    if entity is None:
        return error_response("Failed to get drift alerts: no profile has this uid", 404)
    denied = check(Requirement.read(), identity(), space=entity.space)
    if denied is not None:
        return error_response(denied.error, denied.status)
    cursor_at, cursor_id, fetch = query_bounds(wanted)
    sql = ALERTS_PAGE_PREVIOUS if wanted.direction == "previous" else ALERTS_PAGE_NEXT
    try:
        rows = await ctx.db.fetch(
            sql, entity.space, entity.name, entity.version, entity.drift_type, wanted.active,
            wanted.start_datetime, wanted.end_datetime, cursor_at, cursor_id, fetch,
        )  # fmt: skip
    except DB_ERRORS as exc:
        status, detail = database_failure(exc)
        return error_response(f"Failed to get drift alerts: {detail}", status)
    return struct_response(page(wanted, rows))


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
        return error_response(f"Invalid alert update: {exc.reason}", 422)
    if _nul_in(space=update.space) is not None:
        return error_response("Invalid alert update: space: must not contain NUL", 422)
    try:
        row = await context().db.fetchrow(SET_ALERT_ACTIVE, update.id, update.active, update.space)
    except DB_ERRORS as exc:
        status, detail = database_failure(exc)
        return error_response(f"Failed to update drift alert: {detail}", status)
    if row is None:
        return error_response("Alert not found", 404)
    if row["active"] != update.active:  # upstream's check; an UPDATE that returned the row cannot differ
        return error_response("Failed to update drift alert status", 400)
    return raw_json_response(_UPDATED)
