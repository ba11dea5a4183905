"""Profile routes (server.md §2.8, server-v025.md §5-§6): register, update, activate, download, for both clients.

One row per (space, name, version, drift_type) (§12 #8), whose uid is the entity's. ``POST /scouter/profile``
branches on the body's keys (server-v025.md §13.2):

* without ``version_request`` (scouter-ml 0.6.4): the profile's own version; re-registering replaces the profile,
  its schedule and ``next_run`` and keeps ``active`` and the uid; a new row starts inactive;
* with it (0.25): the server picks the version (`scouter.versions`), stores the profile with that version and the
  uid in its config, applies ``active`` and ``deactivate_others`` in the same transaction; a version that already
  exists keeps its uid (upstream rotated it, breaking running queues).

Both get the superset answer ``{status, message, space, name, version, uid, active}``. ``GET /scouter/profile``
answers the superset profile (`scouter.profiles.superset_document`) that both clients parse, whoever registered it.
``PUT /scouter/profile`` recomputes the schedule (§12 #9). Success texts are upstream's, word for word.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime

import asyncpg
import orjson
from quart import Blueprint, Response, request

from scouter.auth import Requirement
from scouter.profile_requests import (
    ProfileRequestError,
    ProfileStatus,
    parse_get_profile,
    parse_profile_request,
    parse_profile_status,
)
from scouter.profile_superset import superset_document
from scouter.sql import (
    DEACTIVATE_OTHER_ENTITIES,
    DEACTIVATE_OTHER_VERSIONS,
    FAMILY_VERSIONS,
    GET_PROFILE,
    LOCK_VERSION_FAMILY,
    REGISTER_VERSION,
    SET_PROFILE_STATUS,
    UPDATE_PROFILE,
    UPSERT_PROFILE,
)
from scouter.versions import VersionError, next_version
from scouter.wire.v025 import RegisteredProfileResponse, RegisterProfileRequest, ShapeError, decode
from scouter.wire.v064 import ErrorBody, GetProfileRequest, ProfileStatusRequest, ScouterResponse

from ._context import context
from ._guard import guarded, json_object
from ._openapi import BEARER, BODY_ERRORS, QUERY_ERRORS, TAGGED_DRIFT_PROFILE, documented
from ._responses import DB_ERRORS, database_failure, error_response, json_response, struct_response

log = logging.getLogger("actors.http.profiles")

blueprint = Blueprint("profiles", __name__)

NOT_FOUND = "Drift profile not found"


def _success(message: str) -> Response:
    return struct_response(ScouterResponse(status="success", message=message))


def _affected(command_tag: str) -> int:
    """Rows touched, from a command tag such as ``UPDATE 2``."""
    return int(command_tag.rsplit(" ", 1)[-1])


_INSERTED = "Drift profile inserted successfully"


def _registered(space: str, name: str, version: str, uid: str, active: bool) -> Response:
    answer = RegisteredProfileResponse(
        status="success", message=_INSERTED, space=space, name=name, version=version, uid=uid, active=active
    )
    return struct_response(answer)


@blueprint.post("/scouter/profile")
@documented(
    tags=["profiles"],
    summary=(
        "Register a drift profile. Without `version_request` (scouter-ml 0.6.4) the profile's version is stored "
        "(a new one starts inactive; registering again replaces it). With it (0.25) the server picks the next "
        "version and applies `active` and `deactivate_others`. Both get the entity's uid."
    ),
    security=BEARER,
    body=RegisterProfileRequest,
    responses={**BODY_ERRORS, 200: RegisteredProfileResponse},
)
@guarded(Requirement.write())
async def register_profile() -> Response:
    now = datetime.now(UTC)
    body = await json_object()
    if "version_request" in body:
        return await _register_version(body, now)
    try:
        registration = parse_profile_request(body, now)
    except ProfileRequestError as exc:
        return error_response(f"Invalid drift profile: {exc.reason}", 400)
    profile = registration.profile
    try:
        row = await context().db.fetchrow(
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
            str(uuid.uuid4()),
        )
    except DB_ERRORS as exc:
        status, detail = database_failure(exc)
        return error_response(f"Failed to insert monitor profile: {detail}", status)
    assert row is not None  # an upsert always returns its row
    return _registered(profile.space, profile.name, profile.version, row["uid"], row["active"])


async def _register_version(body: dict[str, object], now: datetime) -> Response:
    """The scouter-ml 0.25 registration (server-v025.md §5): server-chosen version, uid, active, deactivate_others."""
    try:
        wanted = decode(body, RegisterProfileRequest)
    except ShapeError as exc:
        return error_response(f"Invalid drift profile: {exc.reason}", 400)
    if wanted.version_request is None:
        return error_response("Version request is required", 400)
    try:
        registration = parse_profile_request(body, now)
    except ProfileRequestError as exc:
        return error_response(f"Invalid drift profile: {exc.reason}", 400)
    profile = registration.profile
    asked = wanted.version_request
    document = orjson.loads(registration.profile_json)

    async def register(conn: asyncpg.Connection) -> tuple[str, str]:  # asyncio side, in a transaction
        family = (profile.space, profile.name, profile.drift_type)
        await conn.execute(LOCK_VERSION_FAMILY, *family)
        rows = await conn.fetch(FAMILY_VERSIONS, *family)
        version = next_version(
            [(r["version"], r["created_at"]) for r in rows],
            asked.version,
            asked.version_type,
            asked.pre_tag,
            asked.build_tag,
        )
        uid = next((r["uid"] for r in rows if r["version"] == version), None) or str(uuid.uuid4())
        document["config"]["uid"] = uid
        document["config"]["version"] = version  # the stored profile carries the version the server assigned
        await conn.fetchval(
            REGISTER_VERSION,
            uid,
            profile.space,
            profile.name,
            version,
            profile.drift_type,
            orjson.dumps(document).decode(),
            wanted.active,
            profile.schedule,
            registration.next_run,
            now,
            profile.scouter_version,
        )
        if wanted.active and wanted.deactivate_others:
            await conn.execute(DEACTIVATE_OTHER_ENTITIES, *family, uid)
        return uid, version

    try:
        uid, version = await context().db.run(register, transaction=True)
    except VersionError as exc:
        return error_response(f"Failed to get next profile version: {exc.reason}", 400)
    except DB_ERRORS as exc:
        status, detail = database_failure(exc)
        return error_response(f"Failed to insert monitor profile: {detail}", status)
    return _registered(profile.space, profile.name, version, uid, wanted.active)


@blueprint.put("/scouter/profile")
@documented(
    tags=["profiles"],
    summary="Update a registered drift profile and its schedule.",
    security=BEARER,
    body=RegisterProfileRequest,
    responses={**BODY_ERRORS, 200: ScouterResponse, 404: ErrorBody},
)
@guarded(Requirement.write())
async def update_profile() -> Response:
    now = datetime.now(UTC)
    try:
        registration = parse_profile_request(await json_object(), now)
    except ProfileRequestError as exc:
        return error_response(f"Invalid drift profile: {exc.reason}", 400)
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
        return error_response(f"Failed to update drift profile: {detail}", status)
    if _affected(tag) == 0:  # upstream answered success for nothing updated; say what happened
        return error_response(NOT_FOUND, 404)
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
        return error_response(f"Invalid request: {exc.reason}", 400)
    try:
        updated = await context().db.run(_set_status, status, transaction=True)
    except DB_ERRORS as exc:
        code, detail = database_failure(exc)
        return error_response(f"Failed to update profile status: {detail}", code)
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
    responses={**QUERY_ERRORS, 200: TAGGED_DRIFT_PROFILE, 404: ErrorBody},
)
@guarded(Requirement.read())
async def get_profile() -> Response:
    try:
        query = parse_get_profile(request.args)
    except ProfileRequestError as exc:
        return error_response(f"Invalid request: {exc.reason}", 400)
    try:
        row = await context().db.fetchrow(GET_PROFILE, query.space, query.name, query.version, query.drift_type)
    except DB_ERRORS as exc:
        code, detail = database_failure(exc)
        return error_response(f"Failed to get drift profile: {detail}", code)
    if row is None:
        return error_response(NOT_FOUND, 404)
    # Externally tagged, as both clients expect: {"Spc": {...}}, in the superset form both parse.
    document = superset_document(query.drift_type, orjson.loads(row["profile"]), row["uid"], row["version"])
    return json_response({query.drift_type: document})
