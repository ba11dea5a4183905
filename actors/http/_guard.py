"""The one way a protected route declares who may call it: `@guarded(requirement)`, then `identity()` inside.

    @blueprint.get("/scouter/drift/spc")
    @guarded(Requirement.read())                # space from the query string (GET)
    async def spc() -> ...:
        who = identity()

    @blueprint.post("/scouter/profile")
    @guarded(Requirement.write())               # space from the JSON body (POST/PUT)
    async def register() -> ...:
        body = await json_body()                # the same parsed body the guard read

Where the requirement's `param` (the space or user name) is read from, unless `source=` says otherwise:
the route's path variable of that name if there is one; else the query string for GET, HEAD and DELETE; else the
top-level field of the JSON object body (POST, PUT, PATCH). `source=` may also be a function of the parsed JSON
body, for values nested deeper (e.g. the first record's space).

Authentication is upstream's middleware (§2.2) with upstream's later fix:

1. `x-bootstrap-token` equal to SCOUTER_BOOTSTRAP_KEY (constant-time) on POST /scouter/user: the bootstrap identity.
2. The token: cookie `access_token`, else `Authorization: Bearer`; neither: 401 "No access token provided".
3. A token that is not a correctly signed HS256 access token (forged, `alg: none`, signed with the refresh secret,
   malformed): 401 "Invalid token", always.
4. The user named by `sub` must still exist and be active, else 401. The request runs with the user's stored
   permissions, so a revoked permission or a deleted user takes effect within seconds (see `_auth_cache`), not
   when the token expires.
5. A correctly signed token that has expired is renewed when it was issued less than the refresh token's lifetime
   (24 h) ago and the user holds an unexpired stored refresh token (deleted by a password, permission or group
   change and by deactivation): a new access and refresh token are minted, the refresh token's hash is stored,
   the request proceeds and the response carries `Authorization: Bearer <new access token>` (the 0.6.4 client
   swaps it in). Otherwise 401 ("Token too old to renew; log in again", "No refresh token found").

Then the requirement is checked (403 with upstream's body). Tokens and passwords are never logged.
"""

from __future__ import annotations

import enum
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec, TypeAlias

import orjson
from quart import Response, current_app, g, request
from werkzeug.exceptions import BadRequest, UnprocessableEntity, UnsupportedMediaType

from scouter.auth import (
    BOOTSTRAP_IDENTITY,
    REFRESH_TTL_SECONDS,
    Access,
    Identity,
    Requirement,
    TokenError,
    bootstrap_grants,
    check,
    hash_refresh_token,
    mint_access,
    mint_refresh,
)

from .. import users
from ._context import HttpContext, context
from ._responses import error_response

log = logging.getLogger("actors.http.auth")

P = ParamSpec("P")

#: A function of the parsed JSON body returning the value a requirement checks (None when absent).
Extractor: TypeAlias = Callable[[Any], object]


class Source(enum.Enum):
    """Where a requirement's `param` is read from."""

    PATH = "path"  # the route variable of that name
    QUERY = "query"  # the query string
    BODY = "body"  # the top-level field of the JSON object body


_QUERY_METHODS = frozenset({"GET", "HEAD", "DELETE"})
_IDENTITY = "scouter_identity"
_BODY = "scouter_json_body"


def _unauthorized(message: str) -> tuple[dict[str, str], int]:
    return {"error": "Unauthorized", "message": message}, 401


# -- the request's identity and body ----------------------------------------------------------------------------
def identity() -> Identity:
    """The identity the current request acts as; only inside a `@guarded` handler."""
    who: Identity | None = g.get(_IDENTITY)
    if who is None:
        raise RuntimeError("identity() is only available inside a @guarded route")
    return who


async def json_body() -> Any:
    """The request body parsed as JSON (parsed once per request, shared with the guard).

    415 without a JSON content type, 400 naming the problem when the body is not JSON, 413 when too large.
    """
    if _BODY in g:
        return g.get(_BODY)
    if not request.is_json:
        raise UnsupportedMediaType("expected Content-Type: application/json")
    raw = await request.get_data(cache=True)
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"request body is not valid JSON: {exc}") from None
    setattr(g, _BODY, body)
    return body


async def json_object() -> dict[str, Any]:
    """`json_body()` that must be a JSON object (422 otherwise)."""
    body = await json_body()
    if not isinstance(body, dict):
        raise UnprocessableEntity(f"request body must be a JSON object, not {_json_type(body)}")
    return body


def _json_type(value: Any) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number")


# -- authentication ---------------------------------------------------------------------------------------------
def _presented_token() -> str | None:
    cookie = request.cookies.get("access_token")
    if cookie:
        return cookie
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() == "bearer" and token:
        return token
    return None


#: The only route the bootstrap key opens (upstream: any POST whose path contains "/user").
_BOOTSTRAP_PATH = "/scouter/user"


def _bootstrap(ctx: HttpContext) -> bool:
    presented = request.headers.get("x-bootstrap-token")
    if presented is None:
        return False
    # bootstrap_grants is upstream's rule ("/user" in the path); the exact path keeps it to the one route.
    path = request.path.rstrip("/")
    return path == _BOOTSTRAP_PATH and bootstrap_grants(
        presented, ctx.settings.auth.bootstrap_key, method=request.method, path=path
    )


Outcome: TypeAlias = tuple[Identity, str | None] | tuple[dict[str, str], int]


async def authenticate(ctx: HttpContext, *, renew: bool = True) -> Outcome | None:
    """The identity and, when the token was renewed, the new access token; or the 401/500 answer to send.

    With `renew=False`, None instead of renewing a token that would be renewed (a check without side effects).
    """
    if _bootstrap(ctx):
        return BOOTSTRAP_IDENTITY, None
    token = _presented_token()
    if token is None:
        return _unauthorized("No access token provided")
    auth = ctx.settings.auth
    now = time.time()
    try:
        claimed, expired = ctx.auth_cache.verify(token, auth.encrypt_secret, now)
    except TokenError as exc:
        log.info("rejected a token: %s", exc.reason)  # the reason, never the token
        return _unauthorized("Invalid token")
    user = await ctx.auth_cache.user(ctx.db, claimed.username)
    if user is None:
        return _unauthorized("User not found")
    if not user.active:
        return _unauthorized("User is inactive")
    cutoff = user.tokens_valid_after
    if cutoff is not None and ctx.auth_cache.issued_before(token, auth.encrypt_secret, now, cutoff.timestamp()):
        return _unauthorized("Token issued before the password changed; log in again")
    if not expired:
        return user.identity, None
    if not ctx.auth_cache.renewable(token, auth.encrypt_secret, now):
        log.info("refused to renew a token of %r issued too long ago", claimed.username)
        return _unauthorized("Token too old to renew; log in again")
    if not renew:
        return None if user.refresh_valid(now) else _unauthorized("No refresh token found")
    return await _renew(ctx, user, claimed, now)


async def _renew(
    ctx: HttpContext, user: users.UserRow, claimed: Identity, now: float
) -> tuple[Identity, str | None] | tuple[dict[str, str], int]:
    """The expired-token path: proceed only while the user's stored refresh token is valid, and rotate it."""
    if not user.refresh_valid(now):
        return _unauthorized("No refresh token found")
    auth = ctx.settings.auth
    identity_now = user.identity
    access = mint_access(identity_now, auth.encrypt_secret, now)
    refresh = mint_refresh(identity_now, auth.refresh_secret, now)
    try:
        rotated = await users.rotate_refresh(
            ctx.db, user.username, hash_refresh_token(refresh), now + REFRESH_TTL_SECONDS, now
        )
    except Exception:
        log.exception("could not store the renewed refresh token of %r", user.username)
        return {"error": "Server Error", "message": "Failed to update refresh token"}, 500
    ctx.auth_cache.forget(user.username)
    if not rotated:  # revoked, expired or deactivated since it was read
        return _unauthorized("No refresh token found")
    log.info("renewed the expired access token of %r", claimed.username)
    return identity_now, access


#: The outcome of `refuse_unauthenticated`, which the guard then reuses.
_AUTHENTICATED = "scouter_authenticated"


async def refuse_unauthenticated() -> Response | None:
    """Run before the request body is read: a guarded route's request without valid credentials is answered 401
    at once, its body never read. The connection is closed, since its unread body cannot be skipped. An
    authenticated request returns None, and the guard reuses the outcome. A token due for renewal is renewed by the
    guard, after the body is read: a renewal must reach the client, which a 413 here would prevent."""
    rule = request.url_rule
    view = None if rule is None else current_app.view_functions.get(rule.endpoint)
    if getattr(view, "__scouter_requirement__", None) is None:
        return None
    outcome = await authenticate(context(), renew=False)
    if outcome is None:
        return None
    if isinstance(outcome[0], Identity):
        setattr(g, _AUTHENTICATED, outcome)
        return None
    response = await current_app.make_response(outcome)
    response.headers["Connection"] = "close"
    return response


# -- authorisation ----------------------------------------------------------------------------------------------
async def _param_value(requirement: Requirement, source: Source | Extractor | None, view_args: dict[str, Any]) -> str:
    name = requirement.param
    assert name is not None  # requirements that need a value always name it
    if callable(source):
        body = await json_object()
        try:
            value = source(body)
        except (LookupError, TypeError, AttributeError):
            # The extractor met a body of another shape than it expects: the client's mistake, not ours.
            raise UnprocessableEntity(f"cannot find {name!r} in the request body") from None
        return _must_be_text(value, name)
    if source is None:
        if name in view_args:
            source = Source.PATH
        elif request.method in _QUERY_METHODS:
            source = Source.QUERY
        else:
            source = Source.BODY
    if source is Source.PATH:
        return str(view_args[name])
    if source is Source.QUERY:
        values = request.args.getlist(name)
        if not values:
            raise BadRequest(f"missing query parameter {name!r}")
        return values[0]
    return _must_be_text((await json_object()).get(name), name)


def _must_be_text(value: object, name: str) -> str:
    if value is None:
        raise UnprocessableEntity(f"missing field {name!r}")
    if not isinstance(value, str):
        raise UnprocessableEntity(f"field {name!r} must be a string")
    return value


def _needs_value(requirement: Requirement) -> bool:
    return requirement.access not in (Access.AUTHENTICATED, Access.ADMIN)


def guarded(
    requirement: Requirement, *, source: Source | Extractor | None = None
) -> Callable[[Callable[P, Awaitable[Any]]], Callable[P, Awaitable[Response]]]:
    """Authenticate the request, check `requirement`, then run the handler (see the module docstring).

    The wrapped view keeps its name and carries `__scouter_requirement__`, so tests can assert every API route is
    guarded.
    """
    if _needs_value(requirement) and requirement.param is None:
        raise ValueError(f"{requirement!r} names no request field to check")

    def decorate(view: Callable[P, Awaitable[Any]]) -> Callable[P, Awaitable[Response]]:
        @functools.wraps(view)
        async def wrapper(*args: P.args, **kwargs: P.kwargs) -> Response:
            outcome = g.pop(_AUTHENTICATED, None) or await authenticate(context())
            assert outcome is not None  # renew=True always decides
            if not isinstance(outcome[0], Identity):
                return await current_app.make_response(outcome)
            who, renewed = outcome
            setattr(g, _IDENTITY, who)
            try:
                denied = None
                if _needs_value(requirement):
                    value = await _param_value(requirement, source, dict(kwargs))
                    if requirement.access is Access.ADMIN_OR_SELF:
                        denied = check(requirement, who, username=value)
                    else:
                        denied = check(requirement, who, space=value)
                else:
                    denied = check(requirement, who)
                if denied is not None:
                    response = error_response(denied.error, denied.status)
                else:
                    response = await current_app.make_response(await view(*args, **kwargs))
            except Exception as exc:
                if renewed is None:
                    raise
                # The renewal already rotated the stored refresh token: the new access token must reach the client
                # even when the request itself fails, or its old token stops working at the next request.
                response = await current_app.make_response(await current_app.handle_user_exception(exc))
            if renewed is not None:
                response.headers["Authorization"] = f"Bearer {renewed}"
            return response

        wrapper.__scouter_requirement__ = requirement  # type: ignore[attr-defined]
        return wrapper

    return decorate


__all__ = [
    "Extractor",
    "Source",
    "authenticate",
    "guarded",
    "identity",
    "json_body",
    "json_object",
    "refuse_unauthenticated",
]
