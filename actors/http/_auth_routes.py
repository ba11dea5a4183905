"""`/scouter/auth/login`, `/refresh` and `/validate` (§2.6), with upstream's bodies and the fixes of §12 #6, #18.

Login failures are throttled per user name and client address, and per client address (`LoginLimits`: exponential
back-off, capped, never a lock-out), so an attacker elsewhere cannot keep the owner out; a throttled attempt gets 429
with `Retry-After`, which the 0.6.4 client reports like any 4xx: "Unauthorized". The client address is the peer's,
or with SCOUTER_TRUSTED_PROXY_HOPS=n the n-th address from the right of X-Forwarded-For (a client can write
anything to the left of what its proxies append).
"""

from __future__ import annotations

import logging
import math
import time

import trio
from quart import Blueprint, Response, request

from scouter.auth import (
    REFRESH_TTL_SECONDS,
    TokenError,
    hash_refresh_token,
    mint_access,
    mint_refresh,
    verify_access,
    verify_access_renewable,
    verify_password,
)
from scouter.wire.v064 import AuthErrorBody, ErrorBody
from scouter.wire.v064_accounts import LoginHeaders, Token, Validated

from .. import users
from ._context import HttpContext, context
from ._openapi import BEARER_ONLY, documented
from ._responses import struct_response

log = logging.getLogger("actors.http.auth")

blueprint = Blueprint("auth", __name__)


def _login_header(name: str) -> str | Response:
    """The value of header `name` (`Username`, `Password`), or upstream's 400 when it is missing or not ASCII."""
    value = request.headers.get(name)
    if value is None:
        return struct_response(ErrorBody(error=f"{name} header not found"), 400)
    if not value.isascii():
        return struct_response(ErrorBody(error=f"Invalid {name.lower()} format"), 400)
    return value


def client_address(trusted_hops: int) -> str:
    """Who is logging in, for throttling: the peer, unless trusted proxies say who connected to them."""
    peer = request.remote_addr or "unknown"
    if trusted_hops == 0:
        return peer
    forwarded = [hop.strip() for hop in ",".join(request.headers.getlist("X-Forwarded-For")).split(",") if hop.strip()]
    if not forwarded:
        return peer
    return forwarded[-trusted_hops] if len(forwarded) >= trusted_hops else forwarded[0]


def _bearer() -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


async def _new_refresh(ctx: HttpContext, user: users.UserRow, now: float) -> bool:
    """Mint a refresh token for `user` and store its hash; False when the user vanished meanwhile."""
    refresh = mint_refresh(user.identity, ctx.settings.auth.refresh_secret, now)
    stored = await users.store_refresh(ctx.db, user.username, hash_refresh_token(refresh), now + REFRESH_TTL_SECONDS)
    ctx.auth_cache.forget(user.username)
    return stored


@blueprint.get("/scouter/auth/login")
@documented(
    tags=["auth"],
    headers=LoginHeaders,
    responses={200: Token, 400: ErrorBody, 401: ErrorBody, 404: ErrorBody, 429: ErrorBody, 500: ErrorBody},
)
async def login() -> Response:
    """Headers `Username` and `Password` → `{"token": <access jwt>}`."""
    username = _login_header("Username")
    if not isinstance(username, str):
        return username
    password = _login_header("Password")
    if not isinstance(password, str):
        return password

    ctx = context()
    throttle = ctx.login_throttle
    address = client_address(ctx.settings.http.trusted_proxy_hops)
    wait = throttle.retry_after(username, address, trio.current_time())
    if wait > 0:
        log.warning("login for %r throttled after repeated failures from %s (retry in %.1f s)", username, address, wait)
        return struct_response(
            ErrorBody(error="Too many failed login attempts; retry later"), 429, {"Retry-After": str(math.ceil(wait))}
        )

    try:
        user = await users.get_user(ctx.db, username)
    except Exception:
        log.exception("login: could not read user %r", username)
        return struct_response(ErrorBody(error="Failed to get user"), 500)
    if user is None:
        throttle.record_failure(username, address, trio.current_time())
        log.info("login failed for %r: no such user", username)
        return struct_response(ErrorBody(error="User not found"), 404)
    if not await users.off_loop(verify_password, password, user.password_hash):
        throttle.record_failure(username, address, trio.current_time())
        log.info("login failed for %r: wrong password", username)
        return struct_response(ErrorBody(error="Unauthorized"), 401)
    throttle.record_success(username, address)
    if not user.active:
        log.info("login refused for %r: user is inactive", username)
        return struct_response(AuthErrorBody(error="Unauthorized", message="User is inactive"), 401)

    now = time.time()
    if not user.refresh_valid(now):
        try:
            stored = await _new_refresh(ctx, user, now)
        except Exception:
            log.exception("login: could not store the refresh token of %r", username)
            return struct_response(ErrorBody(error="Failed to refresh token"), 500)
        if not stored:
            return struct_response(ErrorBody(error="User not found"), 404)
    log.info("%r logged in", username)
    return struct_response(Token(token=mint_access(user.identity, ctx.settings.auth.encrypt_secret, now)))


@blueprint.get("/scouter/auth/refresh")
@documented(
    tags=["auth"],
    security=BEARER_ONLY,
    responses={200: Token, 401: ErrorBody, 404: ErrorBody, 500: ErrorBody, 503: ErrorBody},
)
async def refresh() -> Response:
    """A new access token for a correctly signed one (expired or not, issued within the refresh token's lifetime)
    whose user holds a valid refresh token."""
    token = _bearer()
    if token is None:
        return struct_response(ErrorBody(error="No refresh token provided"), 401)
    ctx = context()
    now = time.time()
    try:
        claimed = verify_access_renewable(token, ctx.settings.auth.encrypt_secret, now)
    except TokenError as exc:
        log.info("refresh rejected a token: %s", exc.reason)
        return struct_response(ErrorBody(error="Failed to decode JWT token"), 401)
    user = await users.get_user(ctx.db, claimed.username)
    if user is None:
        return struct_response(ErrorBody(error="User not found"), 404)
    if not user.active or not user.refresh_valid(now):
        return struct_response(ErrorBody(error="No refresh token found"), 401)
    new_refresh = mint_refresh(user.identity, ctx.settings.auth.refresh_secret, now)
    try:
        rotated = await users.rotate_refresh(
            ctx.db, user.username, hash_refresh_token(new_refresh), now + REFRESH_TTL_SECONDS, now
        )
    except Exception:
        log.exception("refresh: could not store the refresh token of %r", user.username)
        return struct_response(ErrorBody(error="Failed to refresh token"), 500)
    ctx.auth_cache.forget(user.username)
    if not rotated:
        return struct_response(ErrorBody(error="No refresh token found"), 401)
    return struct_response(Token(token=mint_access(user.identity, ctx.settings.auth.encrypt_secret, now)))


@blueprint.get("/scouter/auth/validate")
@documented(tags=["auth"], security=BEARER_ONLY, responses={200: Validated, 401: ErrorBody, 503: ErrorBody})
async def validate() -> Response:
    """`{"is_authenticated": true}` for an unexpired, correctly signed token of an existing, active user."""
    token = _bearer()
    if token is None:
        return struct_response(ErrorBody(error="Bearer token not found"), 401)
    ctx = context()
    try:
        claimed = verify_access(token, ctx.settings.auth.encrypt_secret, time.time())
    except TokenError as exc:
        log.info("validate rejected a token: %s", exc.reason)
        return struct_response(ErrorBody(error="Failed to validate token"), 401)
    user = await users.get_user(ctx.db, claimed.username)
    if user is None or not user.active:
        return struct_response(ErrorBody(error="Failed to validate token"), 401)
    return struct_response(Validated(is_authenticated=True))
