"""Profile routes (server.md §2.8): register, update, activate, download.

One row per (space, name, version, drift_type) (§12 #8): re-registering replaces the profile, its schedule and
``next_run`` and keeps ``active``; a new row starts inactive. ``PUT /scouter/profile`` recomputes the schedule
(§12 #9). Success bodies are upstream's, word for word.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import asyncpg
from quart import Blueprint, Response, request

from scouter.auth import Requirement
from scouter.profile_requests import (
    ProfileRequestError,
    ProfileStatus,
    parse_get_profile,
    parse_profile_request,
    parse_profile_status,
)
from scouter.sql import DEACTIVATE_OTHER_VERSIONS, GET_PROFILE, SET_PROFILE_STATUS, UPDATE_PROFILE, UPSERT_PROFILE

from ._context import context
from ._guard import guarded, json_object
from ._openapi import (
    BEARER,
    BODY_ERRORS,
    QUERY_ERRORS,
    ErrorBody,
    GetProfileRequest,
    ProfileRequest,
    ProfileStatusRequest,
    ScouterResponse,
    TaggedDriftProfile,
    documented,
)
from ._responses import DB_ERRORS, database_failure, json_response, raw_json_response

log = logging.getLogger("actors.http.profiles")

blueprint = Blueprint("profiles", __name__)

NOT_FOUND = {"error": "Drift profile not found"}


def _success(message: str) -> Response:
    return json_response({"status": "success", "message": message})


def _affected(command_tag: str) -> int:
    """Rows touched, from a command tag such as ``UPDATE 2``."""
    return int(command_tag.rsplit(" ", 1)[-1])


@blueprint.post("/scouter/profile")
@documented(
    tags=["profiles"],
    summary="Register a drift profile (a new one starts inactive; registering again replaces it).",
    security=BEARER,
    body=ProfileRequest,
    responses={**BODY_ERRORS, 200: ScouterResponse},
)
@guarded(Requirement.write())
async def register_profile() -> Response:
    now = datetime.now(UTC)
    try:
        registration = parse_profile_request(await json_object(), now)
    except ProfileRequestError as exc:
        return json_response({"error": f"Invalid drift profile: {exc.reason}"}, 400)
    profile = registration.profile
    try:
        await context().db.fetchval(
            UPSERT_PROFILE,
            profile.space,
            profile.name,
            profile.version,
            profile.drift_type,
            registration.profile_json,
            profile.schedule,
            registration.next_run,
            now,
            profile.scouter_version,
        )
    except DB_ERRORS as exc:
        status, detail = database_failure(exc)
        return json_response({"error": f"Failed to insert monitor profile: {detail}"}, status)
    return _success("Drift profile inserted successfully")


@blueprint.put("/scouter/profile")
@documented(
    tags=["profiles"],
    summary="Update a registered drift profile and its schedule.",
    security=BEARER,
    body=ProfileRequest,
    responses={**BODY_ERRORS, 200: ScouterResponse, 404: ErrorBody},
)
@guarded(Requirement.write())
async def update_profile() -> Response:
    now = datetime.now(UTC)
    try:
        registration = parse_profile_request(await json_object(), now)
    except ProfileRequestError as exc:
        return json_response({"error": f"Invalid drift profile: {exc.reason}"}, 400)
    profile = registration.profile
    try:
        tag = await context().db.execute(
            UPDATE_PROFILE,
            profile.space,
            profile.name,
            profile.version,
            profile.drift_type,
            registration.profile_json,
            profile.schedule,
            registration.next_run,
            profile.scouter_version,
        )
    except DB_ERRORS as exc:
        status, detail = database_failure(exc)
        return json_response({"error": f"Failed to update drift profile: {detail}"}, status)
    if _affected(tag) == 0:  # upstream answered success for nothing updated; say what happened
        return json_response(NOT_FOUND, 404)
    return _success("Drift profile updated successfully")


async def _set_status(conn: asyncpg.Connection, status: ProfileStatus) -> int:  # asyncio side, in a transaction
    tag = await conn.execute(
        SET_PROFILE_STATUS, status.space, status.name, status.version, status.active, status.drift_type
    )
    updated = _affected(tag)
    if updated and status.deactivate_others:
        await conn.execute(DEACTIVATE_OTHER_VERSIONS, status.space, status.name, status.version, status.drift_type)
    return updated


@blueprint.put("/scouter/profile/status")
@documented(
    tags=["profiles"],
    summary="Activate or deactivate a drift profile.",
    security=BEARER,
    body=ProfileStatusRequest,
    responses={**BODY_ERRORS, 200: ScouterResponse},
)
@guarded(Requirement.write())
async def update_profile_status() -> Response:
    try:
        status = parse_profile_status(await json_object())
    except ProfileRequestError as exc:
        return json_response({"error": f"Invalid request: {exc.reason}"}, 400)
    try:
        updated = await context().db.run(_set_status, status, transaction=True)
    except DB_ERRORS as exc:
        code, detail = database_failure(exc)
        return json_response({"error": f"Failed to update profile status: {detail}"}, code)
    if updated == 0:
        # Upstream answers success whatever matched, and clean-up scripts written against it rely on that (the
        # client returns True); so do we, but say so in the log. Other versions are left alone (deactivate_others
        # never switches off the last active version for a profile that does not exist).
        log.warning(
            "PUT /scouter/profile/status: no drift profile %s/%s/%s%s; answered success as upstream, nothing changed",
            status.space, status.name, status.version, f" of type {status.drift_type}" if status.drift_type else "",
        )  # fmt: skip
    active = "true" if status.active else "false"  # Rust's bool Display
    return _success(f"Monitor profile status updated to {active} for {status.name} {status.space} {status.version}")


@blueprint.get("/scouter/profile")
@documented(
    tags=["profiles"],
    summary="Download a drift profile, tagged by its drift type.",
    security=BEARER,
    query=GetProfileRequest,
    responses={**QUERY_ERRORS, 200: TaggedDriftProfile, 404: ErrorBody},
)
@guarded(Requirement.read())
async def get_profile() -> Response:
    try:
        query = parse_get_profile(request.args)
    except ProfileRequestError as exc:
        return json_response({"error": f"Invalid request: {exc.reason}"}, 400)
    try:
        text = await context().db.fetchval(GET_PROFILE, query.space, query.name, query.version, query.drift_type)
    except DB_ERRORS as exc:
        code, detail = database_failure(exc)
        return json_response({"error": f"Failed to get drift profile: {detail}"}, code)
    if text is None:
        return json_response(NOT_FOUND, 404)
    # Externally tagged, as the client expects: {"Spc": {...}}; the stored document is served as stored.
    return raw_json_response(f'{{"{query.drift_type}":{text}}}')
