"""`/scouter/auth/login`, `/refresh` and `/validate` against a real PostgreSQL (§2.6 and fixes #6, #18)."""

from __future__ import annotations

import time

import pytest

from actors.database import Database, DatabaseHandle
from actors.users import get_user
from scouter.auth import Identity, LoginLimits, LoginThrottle, mint_access, verify_access
from tests.actors.auth_support import ACCESS_SECRET, REFRESH_SECRET, bearer, make_api


def login_headers(username: str, password: str) -> dict[str, str]:
    return {"Username": username, "Password": password}


async def refresh_state(db: Database, username: str) -> tuple[str | None, float | None]:
    user = await get_user(db, username)
    assert user is not None
    expires = None if user.refresh_expires_at is None else user.refresh_expires_at.timestamp()
    return user.refresh_hash, expires


# -- login ------------------------------------------------------------------------------------------------------
async def test_login_returns_an_access_token_for_the_user(db: Database) -> None:
    """Good credentials: 200 {"token"} holding the user's identity, valid for an hour."""
    api = await make_api(db)
    response = await api.client.get("/scouter/auth/login", headers=login_headers("admin", "admin"))
    assert 200 == response.status_code
    body = await response.get_json()
    assert ["token"] == list(body)
    assert Identity("admin", ["read:all", "write:all"], ["admin"]) == verify_access(
        body["token"], ACCESS_SECRET, time.time()
    )


async def test_login_stores_a_hashed_refresh_token_and_keeps_a_valid_one(db: Database) -> None:
    """The first login stores a SHA-256 refresh hash expiring in 24 h; a later login keeps it while valid."""
    api = await make_api(db)
    assert (None, None) == await refresh_state(db, "guest")
    await api.login("guest", "guest")
    stored, expires = await refresh_state(db, "guest")
    assert stored is not None
    assert 64 == len(stored)
    assert set(stored) <= set("0123456789abcdef")  # a SHA-256 digest, not the JWT
    assert expires is not None
    assert abs(time.time() + 86400 - expires) < 60
    await api.login("guest", "guest")
    assert (stored, expires) == await refresh_state(db, "guest")


async def test_login_replaces_an_expired_refresh_token(db: Database) -> None:
    """A stored refresh token past its expiry is replaced at login."""
    api = await make_api(db)
    await api.login("guest", "guest")
    await db.execute(
        "UPDATE scouter.\"user\" SET refresh_expires_at = now() - interval '1 hour' WHERE username = 'guest'"
    )
    before, _ = await refresh_state(db, "guest")
    await api.login("guest", "guest")
    after, expires = await refresh_state(db, "guest")
    assert before != after
    assert expires is not None
    assert expires > time.time()


@pytest.mark.parametrize(
    ("headers", "status", "body"),
    [
        ({"Password": "admin"}, 400, {"error": "Username header not found"}),
        ({"Username": "admin"}, 400, {"error": "Password header not found"}),
        ({"Username": "adm\u00efn", "Password": "admin"}, 400, {"error": "Invalid username format"}),
        ({"Username": "admin", "Password": "p\u00e4ss"}, 400, {"error": "Invalid password format"}),
        ({"Username": "nobody", "Password": "admin"}, 404, {"error": "User not found"}),
        ({"Username": "admin", "Password": "wrong"}, 401, {"error": "Unauthorized"}),
    ],
)
async def test_login_failures_have_upstream_answers(
    db: Database, headers: dict[str, str], status: int, body: dict[str, str]
) -> None:
    """Missing or non-ASCII headers 400, unknown user 404, wrong password 401, with upstream's bodies."""
    api = await make_api(db)
    response = await api.client.get("/scouter/auth/login", headers=headers)
    assert status == response.status_code
    assert body == await response.get_json()


async def test_login_of_an_inactive_user_is_401(db: Database) -> None:
    """An inactive user cannot log in even with the right password (§12 #18)."""
    api = await make_api(db)
    await api.create_user("ina", active=False)
    response = await api.client.get("/scouter/auth/login", headers=login_headers("ina", "ina"))
    assert 401 == response.status_code
    assert (None, None) == await refresh_state(db, "ina")


async def test_repeated_failures_are_throttled_with_retry_after(db: Database, caplog: pytest.LogCaptureFixture) -> None:
    """After the free failures, attempts for that name get 429 with Retry-After, even with the right password;
    other names are unaffected; the log names the user, never the password."""
    api = await make_api(db)
    api.ctx.login_throttle = LoginLimits(
        per_user=LoginThrottle(free_failures=2, base_delay=30, max_delay=60, forget_after=900)
    )
    for _ in range(2):
        wrong = await api.client.get("/scouter/auth/login", headers=login_headers("admin", "guess-1"))
        assert 401 == wrong.status_code
    throttled = await api.client.get("/scouter/auth/login", headers=login_headers("admin", "admin"))
    assert 429 == throttled.status_code
    assert "30" == throttled.headers["Retry-After"]
    assert {"error": "Too many failed login attempts; retry later"} == await throttled.get_json()
    assert 200 == (await api.client.get("/scouter/auth/login", headers=login_headers("guest", "guest"))).status_code
    assert "'admin' throttled" in caplog.text
    assert "guess-1" not in caplog.text


async def test_unknown_user_names_are_throttled_too(db: Database) -> None:
    """Guessing user names counts as failures of that name."""
    api = await make_api(db)
    api.ctx.login_throttle = LoginLimits(
        per_user=LoginThrottle(free_failures=1, base_delay=10, max_delay=10, forget_after=900)
    )
    assert 404 == (await api.client.get("/scouter/auth/login", headers=login_headers("zed", "x"))).status_code
    assert 429 == (await api.client.get("/scouter/auth/login", headers=login_headers("zed", "x"))).status_code


async def test_a_success_clears_the_failures(db: Database) -> None:
    """A successful login forgets earlier failures of that name."""
    api = await make_api(db)
    api.ctx.login_throttle = LoginLimits(
        per_user=LoginThrottle(free_failures=2, base_delay=10, max_delay=10, forget_after=900)
    )
    assert 401 == (await api.client.get("/scouter/auth/login", headers=login_headers("guest", "x"))).status_code
    await api.login("guest", "guest")
    assert 401 == (await api.client.get("/scouter/auth/login", headers=login_headers("guest", "x"))).status_code
    assert 200 == (await api.client.get("/scouter/auth/login", headers=login_headers("guest", "guest"))).status_code


# -- refresh ----------------------------------------------------------------------------------------------------
async def test_refresh_mints_a_new_token_and_rotates_the_refresh_token(db: Database) -> None:
    """A valid token of a user holding a valid refresh token: a new access token; the stored hash changes."""
    api = await make_api(db)
    token = await api.login("admin", "admin")
    before, _ = await refresh_state(db, "admin")
    response = await api.client.get("/scouter/auth/refresh", headers=bearer(token))
    assert 200 == response.status_code
    fresh = (await response.get_json())["token"]
    assert fresh != token
    assert "admin" == verify_access(fresh, ACCESS_SECRET, time.time()).username
    after, _ = await refresh_state(db, "admin")
    assert before != after


async def test_refresh_accepts_an_expired_but_correctly_signed_token(db: Database) -> None:
    """Expiry is forgiven on /refresh while the stored refresh token is valid."""
    api = await make_api(db)
    await api.login("admin", "admin")
    response = await api.client.get("/scouter/auth/refresh", headers=bearer(api.token("admin", age=7200)))
    assert 200 == response.status_code


async def test_refresh_requires_a_valid_stored_refresh_token(db: Database) -> None:
    """A correctly signed token of a user without a refresh token gets none (upstream minted one anyway)."""
    api = await make_api(db)
    response = await api.client.get("/scouter/auth/refresh", headers=bearer(api.token("guest")))
    assert 401 == response.status_code
    assert {"error": "No refresh token found"} == await response.get_json()


@pytest.mark.parametrize(
    ("make_token", "status", "error"),
    [
        (lambda: None, 401, "No refresh token provided"),
        (lambda: mint_access(Identity("admin"), "f" * 40, time.time()), 401, "Failed to decode JWT token"),
        (lambda: mint_access(Identity("admin"), REFRESH_SECRET, time.time()), 401, "Failed to decode JWT token"),
        (lambda: mint_access(Identity("ghost"), ACCESS_SECRET, time.time()), 404, "User not found"),
    ],
)
async def test_refresh_rejections(db: Database, make_token, status: int, error: str) -> None:  # type: ignore[no-untyped-def]
    """No bearer 401, forged or refresh-secret-signed 401, unknown user 404; nothing is rotated."""
    api = await make_api(db)
    await api.login("admin", "admin")
    before = await refresh_state(db, "admin")
    token = make_token()
    response = await api.client.get("/scouter/auth/refresh", headers={} if token is None else bearer(token))
    assert status == response.status_code
    assert {"error": error} == await response.get_json()
    assert before == await refresh_state(db, "admin")


# -- validate ---------------------------------------------------------------------------------------------------
async def test_validate_accepts_a_valid_token(db: Database) -> None:
    """A valid login token: {"is_authenticated": true}."""
    api = await make_api(db)
    token = await api.login("guest", "guest")
    response = await api.client.get("/scouter/auth/validate", headers=bearer(token))
    assert 200 == response.status_code
    assert {"is_authenticated": True} == await response.get_json()


async def test_validate_without_a_bearer_token_is_401(db: Database) -> None:
    """No bearer token: 401 "Bearer token not found"."""
    api = await make_api(db)
    response = await api.client.get("/scouter/auth/validate")
    assert 401 == response.status_code
    assert {"error": "Bearer token not found"} == await response.get_json()


async def test_validate_rejects_expired_forged_and_orphaned_tokens(db: Database) -> None:
    """Expired (even with a refresh token), forged, and deleted-user tokens: 401 "Failed to validate token"."""
    api = await make_api(db)
    await api.login("guest", "guest")
    for token in (
        api.token("guest", age=7200),
        mint_access(Identity("guest"), "q" * 40, time.time()),
        api.token("ghost"),
    ):
        response = await api.client.get("/scouter/auth/validate", headers=bearer(token))
        assert 401 == response.status_code
        assert {"error": "Failed to validate token"} == await response.get_json()


# -- database failures ------------------------------------------------------------------------------------------
FAIL_UPDATES = """
CREATE FUNCTION scouter.refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'refused'; END $$;
CREATE TRIGGER refuse BEFORE UPDATE ON scouter."user" FOR EACH ROW EXECUTE FUNCTION scouter.refuse();
"""


async def test_login_without_a_database_is_500_failed_to_get_user(db: Database) -> None:
    """The user cannot be read: 500 {"error": "Failed to get user"} (a JSON body the client can decode)."""
    api = await make_api(db)
    api.ctx.database = DatabaseHandle()  # the database actor is not running
    response = await api.client.get("/scouter/auth/login", headers=login_headers("admin", "admin"))
    assert 500 == response.status_code
    assert {"error": "Failed to get user"} == await response.get_json()


async def test_login_that_cannot_store_the_refresh_token_is_500(db: Database) -> None:
    """Storing the refresh token fails: 500 {"error": "Failed to refresh token"}."""
    api = await make_api(db)
    await db.execute(FAIL_UPDATES)
    response = await api.client.get("/scouter/auth/login", headers=login_headers("admin", "admin"))
    assert 500 == response.status_code
    assert {"error": "Failed to refresh token"} == await response.get_json()


async def test_renewal_that_cannot_store_the_refresh_token_is_500(db: Database) -> None:
    """The guard cannot rotate the refresh token: 500 Server Error "Failed to update refresh token", no new token."""
    api = await make_api(db)
    await api.login("guest", "guest")
    await db.execute(FAIL_UPDATES)
    response = await api.client.get("/scouter/user/guest", headers=bearer(api.token("guest", age=7200)))
    assert 500 == response.status_code
    assert {"error": "Server Error", "message": "Failed to update refresh token"} == await response.get_json()
    assert "Authorization" not in response.headers
