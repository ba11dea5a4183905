"""`@guarded`: token sources, rejection of bad tokens, renewal of expired ones, permissions, bootstrap key."""

from __future__ import annotations

import base64
import json
import logging
import time

import pytest
from prometheus_client import CollectorRegistry
from quart import Blueprint

from actors.database import Database
from actors.http import Source, guarded, identity, json_object
from actors.metrics import ScouterMetrics
from actors.users import get_user
from config import load_settings
from scouter.auth import Identity, Requirement, mint_access, verify_access
from supervisors.tree import Process, build_tree
from tests.actors.auth_support import ACCESS_SECRET, BOOTSTRAP_KEY, REFRESH_SECRET, Api, bearer, make_api

probe = Blueprint("probe", __name__)


@probe.get("/probe/any")
@guarded(Requirement.authenticated())
async def any_user() -> dict[str, object]:
    who = identity()
    return {"username": who.username, "permissions": list(who.permissions)}


@probe.get("/probe/read")
@guarded(Requirement.read())
async def read_space() -> dict[str, str]:
    return {"username": identity().username}


@probe.post("/probe/write")
@guarded(Requirement.write())
async def write_space() -> dict[str, object]:
    return {"body": await json_object()}


@probe.post("/probe/first")
@guarded(Requirement.write(), source=lambda body: body["records"][0]["space"])
async def write_first() -> dict[str, str]:
    return {"ok": "yes"}


@probe.get("/probe/space/<space>")
@guarded(Requirement.read(), source=Source.PATH)
async def read_path(space: str) -> dict[str, str]:
    return {"space": space}


@probe.get("/probe/boom")
@guarded(Requirement.authenticated())
async def boom() -> None:
    raise RuntimeError("handler failed")


async def probe_api(db: Database) -> Api:
    return await make_api(db, blueprints=[probe])


def unsigned(claims: dict[str, object]) -> str:
    """A token with header `alg: none` and no signature."""

    def part(value: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'typ': 'JWT', 'alg': 'none'})}.{part(claims)}."


async def stored_refresh(db: Database, username: str) -> tuple[str | None, float | None]:
    user = await get_user(db, username)
    assert user is not None
    expires = None if user.refresh_expires_at is None else user.refresh_expires_at.timestamp()
    return user.refresh_hash, expires


async def test_missing_token_is_401(db: Database) -> None:
    """No cookie and no bearer token: 401 "No access token provided"."""
    api = await probe_api(db)
    response = await api.client.get("/probe/any")
    assert 401 == response.status_code
    assert {"error": "Unauthorized", "message": "No access token provided"} == await response.get_json()


async def test_valid_bearer_token_runs_the_handler_as_the_user(db: Database) -> None:
    """A login token in `Authorization: Bearer` reaches the handler with the user's identity."""
    api = await probe_api(db)
    token = await api.login("admin", "admin")
    response = await api.client.get("/probe/any", headers=bearer(token))
    assert 200 == response.status_code
    assert {"username": "admin", "permissions": ["read:all", "write:all"]} == await response.get_json()
    assert "Authorization" not in response.headers


@pytest.mark.parametrize(
    "make_token",
    [
        pytest.param(
            lambda: mint_access(Identity("admin", group_permissions=["admin"]), "x" * 40, time.time()), id="forged"
        ),
        pytest.param(lambda: mint_access(Identity("admin"), REFRESH_SECRET, time.time()), id="refresh-secret"),
        pytest.param(
            lambda: unsigned(
                {
                    "sub": "admin",
                    "exp": int(time.time()) + 3600,
                    "permissions": [],
                    "group_permissions": ["admin"],
                    "salt": "abcdefghijklmnop",
                }
            ),
            id="alg-none",
        ),
        pytest.param(lambda: "not.a.jwt", id="malformed"),
        pytest.param(lambda: mint_access(Identity("admin"), "y" * 40, time.time() - 7200), id="forged-and-expired"),
    ],
)
async def test_badly_signed_tokens_are_always_401(db: Database, make_token) -> None:  # type: ignore[no-untyped-def]
    """Forged signature, refresh-secret signature, alg none, garbage: 401 "Invalid token", even while the user
    holds a valid refresh token (upstream's bypass)."""
    api = await probe_api(db)
    await api.login("admin", "admin")  # stores a valid refresh token for admin
    response = await api.client.get("/probe/any", headers=bearer(make_token()))
    assert 401 == response.status_code
    assert {"error": "Unauthorized", "message": "Invalid token"} == await response.get_json()
    assert "Authorization" not in response.headers


async def test_expired_token_without_refresh_token_is_401(db: Database) -> None:
    """A correctly signed but expired token of a user who holds no refresh token: 401 "No refresh token found"."""
    api = await probe_api(db)
    response = await api.client.get("/probe/any", headers=bearer(api.token("guest", age=7200)))
    assert 401 == response.status_code
    assert {"error": "Unauthorized", "message": "No refresh token found"} == await response.get_json()


async def test_expired_token_with_expired_refresh_token_is_401(db: Database) -> None:
    """A refresh token past its expiry does not renew anything."""
    api = await probe_api(db)
    await api.login("guest", "guest")
    await db.execute(
        "UPDATE scouter.\"user\" SET refresh_expires_at = now() - interval '1 second' WHERE username = 'guest'"
    )
    response = await api.client.get("/probe/any", headers=bearer(api.token("guest", age=7200)))
    assert 401 == response.status_code
    assert "No refresh token found" == (await response.get_json())["message"]


async def test_expired_token_is_renewed_through_the_stored_refresh_token(db: Database) -> None:
    """Expired but correctly signed, with a valid stored refresh token: the request succeeds, the response carries
    a fresh access token in `Authorization: Bearer`, and the stored refresh token is rotated."""
    api = await probe_api(db)
    await api.login("guest", "guest")
    before, _ = await stored_refresh(db, "guest")
    response = await api.client.get("/probe/any", headers=bearer(api.token("guest", age=7200)))
    assert 200 == response.status_code
    assert "guest" == (await response.get_json())["username"]
    scheme, _, renewed = response.headers["Authorization"].partition(" ")
    assert "Bearer" == scheme
    assert Identity("guest", ["read:all", "write:all", "delete:all"], ["user"]) == verify_access(
        renewed, ACCESS_SECRET, time.time()
    )
    after, expires = await stored_refresh(db, "guest")
    assert before != after
    assert expires is not None
    assert abs(time.time() + 86400 - expires) < 60
    again = await api.client.get("/probe/any", headers=bearer(renewed))
    assert 200 == again.status_code
    assert "Authorization" not in again.headers


async def test_renewed_token_reaches_the_client_even_when_the_handler_fails(db: Database) -> None:
    """After a renewal, a failing handler still answers with the new token (the old one no longer renews)."""
    api = await probe_api(db)
    await api.login("guest", "guest")
    response = await api.client.get("/probe/boom", headers=bearer(api.token("guest", age=7200)))
    assert 500 == response.status_code
    assert response.headers["Authorization"].startswith("Bearer ")


async def test_renewal_runs_with_the_stored_permissions(db: Database) -> None:
    """The renewed request acts with the database's permissions, not the expired token's claims."""
    api = await probe_api(db)
    await api.create_user("carol", permissions=["read:one"])
    await api.login("carol", "carol")
    stale = api.token("carol", age=7200, permissions=["read:all"], group_permissions=["admin"])
    response = await api.client.get("/probe/read?space=two", headers=bearer(stale))
    assert 403 == response.status_code
    assert {"error": "Permission denied"} == await response.get_json()
    assert response.headers["Authorization"].startswith("Bearer ")


async def test_valid_token_runs_with_the_stored_permissions(db: Database) -> None:
    """Claims in a valid token do not widen permissions: a revoked grant takes effect at once."""
    api = await probe_api(db)
    await api.create_user("dave", permissions=["read:one"])
    inflated = api.token("dave", permissions=["read:all"], group_permissions=["admin"])
    assert 403 == (await api.client.get("/probe/read?space=two", headers=bearer(inflated))).status_code
    assert 200 == (await api.client.get("/probe/read?space=one", headers=bearer(inflated))).status_code


async def test_deleted_users_token_is_rejected(db: Database) -> None:
    """A still valid token of a user deleted since: 401."""
    api = await probe_api(db)
    await api.create_user("erin")
    token = await api.login("erin", "erin")
    assert 200 == (await api.client.get("/probe/any", headers=bearer(token))).status_code
    admin = await api.login("admin", "admin")
    assert 200 == (await api.client.delete("/scouter/user/erin", headers=bearer(admin))).status_code
    response = await api.client.get("/probe/any", headers=bearer(token))
    assert 401 == response.status_code
    assert {"error": "Unauthorized", "message": "User not found"} == await response.get_json()


async def test_inactive_users_token_is_rejected(db: Database) -> None:
    """A valid token of a user deactivated since: 401, and no renewal either."""
    api = await probe_api(db)
    await api.create_user("fay")
    token = await api.login("fay", "fay")
    await db.execute("UPDATE scouter.\"user\" SET active = false WHERE username = 'fay'")
    for presented in (token, api.token("fay", age=7200)):
        response = await api.client.get("/probe/any", headers=bearer(presented))
        assert 401 == response.status_code
        assert "User is inactive" == (await response.get_json())["message"]


async def test_cookie_is_read_before_the_bearer_header(db: Database) -> None:
    """The `access_token` cookie wins over `Authorization: Bearer`, whichever is valid."""
    api = await probe_api(db)
    token = await api.login("admin", "admin")
    api.client.set_cookie("localhost", "access_token", token)
    assert 200 == (await api.client.get("/probe/any", headers=bearer("garbage"))).status_code
    api.client.set_cookie("localhost", "access_token", "garbage")
    assert 401 == (await api.client.get("/probe/any", headers=bearer(token))).status_code


async def test_read_permission_on_the_query_space(db: Database) -> None:
    """GET reads `space` from the query string: held space 200, other space 403, missing space 400."""
    api = await probe_api(db)
    await api.create_user("gil", permissions=["read:one"])
    token = await api.login("gil", "gil")
    assert 200 == (await api.client.get("/probe/read?space=one", headers=bearer(token))).status_code
    denied = await api.client.get("/probe/read?space=two", headers=bearer(token))
    assert 403 == denied.status_code
    assert {"error": "Permission denied"} == await denied.get_json()
    missing = await api.client.get("/probe/read", headers=bearer(token))
    assert 400 == missing.status_code
    assert {"error": "missing query parameter 'space'"} == await missing.get_json()


async def test_unauthenticated_is_401_before_a_missing_parameter(db: Database) -> None:
    """Authentication comes first: no token and no space is 401, not 400."""
    api = await probe_api(db)
    assert 401 == (await api.client.get("/probe/read")).status_code


async def test_write_permission_on_the_body_space(db: Database) -> None:
    """POST reads `space` from the JSON body; the handler sees the same body."""
    api = await probe_api(db)
    await api.create_user("hal", permissions=["read:all", "write:one"])
    token = await api.login("hal", "hal")
    ok = await api.client.post("/probe/write", json={"space": "one", "x": 1}, headers=bearer(token))
    assert 200 == ok.status_code
    assert {"body": {"space": "one", "x": 1}} == await ok.get_json()
    assert 403 == (await api.client.post("/probe/write", json={"space": "two"}, headers=bearer(token))).status_code


@pytest.mark.parametrize(
    ("data", "headers", "status", "error"),
    [
        ('{"space": ', {"Content-Type": "application/json"}, 400, "request body is not valid JSON"),
        ("[1, 2]", {"Content-Type": "application/json"}, 422, "request body must be a JSON object, not an array"),
        ('{"other": 1}', {"Content-Type": "application/json"}, 422, "missing field 'space'"),
        ('{"space": 5}', {"Content-Type": "application/json"}, 422, "field 'space' must be a string"),
        ('{"space": "one"}', {"Content-Type": "text/plain"}, 415, "expected Content-Type: application/json"),
    ],
)
async def test_bad_bodies_are_rejected_naming_the_problem(
    db: Database, data: str, headers: dict[str, str], status: int, error: str
) -> None:
    """Malformed JSON 400, wrong shape 422 naming the field, wrong content type 415, all as JSON errors."""
    api = await probe_api(db)
    token = await api.login("admin", "admin")
    response = await api.client.post("/probe/write", data=data, headers={**headers, **bearer(token)})
    assert status == response.status_code
    assert (await response.get_json())["error"].startswith(error)


async def test_source_may_be_a_function_of_the_body(db: Database) -> None:
    """A callable source reads a nested value: here the first record's space."""
    api = await probe_api(db)
    await api.create_user("ian", permissions=["write:one"])
    token = await api.login("ian", "ian")
    ok = await api.client.post("/probe/first", json={"records": [{"space": "one"}]}, headers=bearer(token))
    assert 200 == ok.status_code
    other = await api.client.post("/probe/first", json={"records": [{"space": "two"}]}, headers=bearer(token))
    assert 403 == other.status_code
    empty = await api.client.post("/probe/first", json={"records": []}, headers=bearer(token))
    assert 422 == empty.status_code
    odd = await api.client.post("/probe/first", json={"records": "abc"}, headers=bearer(token))
    assert 422 == odd.status_code
    assert {"error": "cannot find 'space' in the request body"} == await odd.get_json()


async def test_source_may_be_a_path_variable(db: Database) -> None:
    """Source.PATH reads the route variable of the requirement's name."""
    api = await probe_api(db)
    await api.create_user("jo", permissions=["read:one"])
    token = await api.login("jo", "jo")
    assert 200 == (await api.client.get("/probe/space/one", headers=bearer(token))).status_code
    assert 403 == (await api.client.get("/probe/space/two", headers=bearer(token))).status_code


async def test_bootstrap_key_opens_only_user_creation(db: Database) -> None:
    """x-bootstrap-token creates users; it opens no other route, and a wrong key is no key."""
    api = await probe_api(db)
    await api.create_user("kim")
    key = {"x-bootstrap-token": BOOTSTRAP_KEY}
    assert 401 == (await api.client.get("/scouter/user", headers=key)).status_code
    assert 401 == (await api.client.get("/probe/any", headers=key)).status_code
    wrong = await api.client.post(
        "/scouter/user",
        json={"username": "lee", "password": "p", "email": "lee@x"},
        headers={"x-bootstrap-token": BOOTSTRAP_KEY + "x"},
    )
    assert 401 == wrong.status_code


async def test_tokens_and_passwords_are_not_logged(db: Database, caplog: pytest.LogCaptureFixture) -> None:
    """Rejections and renewals log reasons and user names, never a token or a password."""
    caplog.set_level(logging.DEBUG)
    api = await probe_api(db)
    token = await api.login("guest", "guest")
    forged = mint_access(Identity("guest"), "z" * 40, time.time())
    await api.client.get("/probe/any", headers=bearer(forged))
    response = await api.client.get("/probe/any", headers=bearer(api.token("guest", age=7200)))
    renewed = response.headers["Authorization"].removeprefix("Bearer ")
    await api.client.get("/scouter/auth/login", headers={"Username": "guest", "Password": "wrong-password"})
    text = caplog.text
    assert "guest" in text
    for secret in (token, forged, renewed, "wrong-password", ACCESS_SECRET):
        assert secret not in text


def test_every_api_route_of_the_tree_is_guarded() -> None:
    """Each /scouter route the server mounts declares a requirement, except the public ones (§2.1)."""
    public = {
        "/scouter/healthcheck",
        "/scouter/readyz",
        "/scouter/auth/login",
        "/scouter/auth/refresh",
        "/scouter/auth/validate",
        # the API documentation: the OpenAPI document and its Swagger UI page
        "/scouter/docs",
        "/scouter/docs/openapi.json",
        "/scouter/docs/<name>",
    }
    settings = load_settings({"DATABASE_URI": "postgresql://nobody@127.0.0.1:9/none"})
    tree = build_tree(settings, Process(metrics=ScouterMetrics.create(CollectorRegistry(), process=False)))
    rules = [rule for rule in tree.app.url_map.iter_rules() if rule.rule.startswith("/scouter/")]
    unguarded = {
        rule.rule
        for rule in rules
        if rule.rule not in public and not hasattr(tree.app.view_functions[rule.endpoint], "__scouter_requirement__")
    }
    assert set() == unguarded
    assert {"/scouter/user", "/scouter/user/<username>"} <= {rule.rule for rule in rules}
