"""The web dashboard: one page at ``/``, its assets at ``/ui/<name>``, and the profile list it starts from.

The page (``static/``: plain HTML, CSS and JavaScript with hand-drawn SVG charts; no build step, nothing fetched
from another origin) logs in through ``/scouter/auth/login``, keeps the token in memory only, and reads everything
through the API like any other client: ``GET /scouter/profiles`` below, ``GET /scouter/profile`` for control limits
and thresholds, the binned drift routes, and the alert routes to list and acknowledge alerts.

``GET /scouter/profiles`` is ours: upstream has no route listing profiles (server.md §2.4). Any authenticated caller
may ask; it gets the rows of the spaces it may read, all of them or those of ``?space=``. A space the caller may not
read simply lists nothing, like a space without profiles, so the answer never tells which spaces exist.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path
from typing import Any

import attrs
from quart import Blueprint, Response, request
from werkzeug.exceptions import NotFound

from scouter.auth import Requirement, can_read
from scouter.binned import rfc3339
from scouter.sql import LIST_PROFILES
from scouter.wire.v064 import AuthErrorBody, ErrorBody, ProfileList, ProfileListRequest, ProfileSummary

from ._context import context
from ._guard import guarded, identity
from ._openapi import BEARER, documented, undocumented
from ._responses import DB_ERRORS, database_failure, error_response, struct_response

blueprint = Blueprint("dashboard", __name__)

STATIC = Path(__file__).with_name("static")
INDEX = "index.html"

_CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
}

# Everything the page loads comes from this origin; scripts and styles only from files (no inline code), so an
# injected string can never run. The token lives in a JavaScript variable, so this is what guards it.
_SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


@attrs.frozen
class Asset:
    body: bytes
    content_type: str
    etag: str


@functools.cache
def assets() -> dict[str, Asset]:
    """The files of ``static/`` by name, read once (a few kilobytes). Nothing else can ever be served."""
    found = {}
    for path in sorted(STATIC.iterdir()):
        content_type = _CONTENT_TYPES.get(path.suffix)
        if content_type is not None and path.is_file():
            body = path.read_bytes()
            found[path.name] = Asset(body, content_type, hashlib.sha256(body).hexdigest()[:20])
    return found


async def _serve(name: str) -> Response:
    asset = assets().get(name)
    if asset is None:
        raise NotFound()
    response = Response(asset.body, content_type=asset.content_type)
    response.set_etag(asset.etag)
    response.headers["Cache-Control"] = "no-cache"  # revalidate: an upgraded server serves its own page at once
    response.headers.update(_SECURITY_HEADERS)
    return await response.make_conditional(request)  # 304 for a matching If-None-Match


@blueprint.get("/")
@undocumented
async def index() -> Response:
    return await _serve(INDEX)


@blueprint.get("/ui/<path:name>")
@undocumented
async def asset(name: str) -> Response:
    return await _serve(name)


def _stamp(moment: Any) -> str | None:
    return None if moment is None else rfc3339(moment)


@blueprint.get("/scouter/profiles")
@documented(
    tags=["profiles"],
    summary="List the profiles of the spaces the caller may read (of `space` only, when given).",
    security=BEARER,
    query=ProfileListRequest,
    responses={200: ProfileList, 401: AuthErrorBody, 500: ErrorBody, 503: ErrorBody},
)
@guarded(Requirement.authenticated())
async def list_profiles() -> Response:
    """``{"profiles": [...]}``: every profile of the readable spaces (of ``?space=`` only, when given)."""
    space = request.args.get("space") or None
    who = identity()
    # a space the caller may not read, or that no profile can have (PostgreSQL text holds no NUL), lists nothing
    if space is not None and (not can_read(who, space) or "\x00" in space):
        return struct_response(ProfileList(profiles=[]))
    try:
        rows = await context().db.fetch(LIST_PROFILES, space)
    except DB_ERRORS as exc:
        status, detail = database_failure(exc)
        return error_response(f"Failed to list drift profiles: {detail}", status)
    profiles = [
        ProfileSummary(
            space=row["space"],
            name=row["name"],
            version=row["version"],
            drift_type=row["drift_type"],
            uid=row["uid"],
            active=row["active"],
            schedule=row["schedule"],
            next_run=_stamp(row["next_run"]),
            previous_run=_stamp(row["previous_run"]),
            updated_at=_stamp(row["updated_at"]),
        )
        for row in rows
        if can_read(who, row["space"])
    ]
    return struct_response(ProfileList(profiles=profiles))
