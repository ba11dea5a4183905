"""Issue 14, "Accounts", over real HTTP on a real PostgreSQL: how old a token may renew, what revokes a refresh
token, login throttling an attacker cannot turn against the owner, and nothing read before authentication."""

from __future__ import annotations

import hmac
import socket
from typing import Any

import httpx
import pytest
import trio

from actors.database import Database
from actors.http import drift_blueprint
from actors.http._health import metrics_allowed
from actors.users import get_user
from scouter.auth import REFRESH_TTL_SECONDS
from tests.actors.auth_support import Api, bearer, make_api, served

pytestmark = pytest.mark.postgres


def login_headers(username: str, password: str) -> dict[str, str]:
    return {"Username": username, "Password": password}


async def login(http: httpx.AsyncClient, username: str, password: str) -> str:
    response = await http.get("/scouter/auth/login", headers=login_headers(username, password))
    assert 200 == response.status_code, response.text
    token: str = response.json()["token"]
    return token


# -- how long a token renews ------------------------------------------------------------------------------------
async def test_a_token_older_than_the_refresh_lifetime_does_not_renew(db: Database) -> None:
    """An expired token renews only within the refresh token's lifetime from its issue: one issued 25 h ago is
    refused by the guard and by /scouter/auth/refresh although the user holds a valid stored refresh token; one
    issued 2 h ago still renews."""
    api = await make_api(db)
    async with served(api) as http:
        await login(http, "guest", "guest")
        old = api.token("guest", age=REFRESH_TTL_SECONDS + 3600)
        guarded = await http.get("/scouter/user/guest", headers=bearer(old))
        assert 401 == guarded.status_code, guarded.text
        assert "Authorization" not in guarded.headers
        assert 401 == (await http.get("/scouter/auth/refresh", headers=bearer(old))).status_code
        recent = await http.get("/scouter/user/guest", headers=bearer(api.token("guest", age=7200)))
        assert 200 == recent.status_code, recent.text
        assert recent.headers["Authorization"].startswith("Bearer ")


# -- what revokes the stored refresh token ----------------------------------------------------------------------
async def _renews(api: Api, http: httpx.AsyncClient, username: str) -> bool:
    """Whether an expired (2 h old) token of `username` is still renewed by /scouter/auth/refresh."""
    response = await http.get("/scouter/auth/refresh", headers=bearer(api.token(username, age=7200)))
    return response.status_code == 200


@pytest.mark.parametrize(
    "change",
    [
        {"password": "a-new-password"},
        {"permissions": ["read:all", "write:sp"]},
        {"group_permissions": ["user", "auditors"]},
        {"active": False},
    ],
    ids=["password", "permissions", "groups", "deactivation"],
)
async def test_a_change_of_credentials_or_rights_revokes_the_refresh_token(db: Database, change: Any) -> None:
    """A password change, a permission or group change and a deactivation delete the user's stored refresh token:
    no token of theirs renews afterwards, even once reactivated. A change of favourite spaces does not."""
    api = await make_api(db)
    await api.create_user("ann")
    async with served(api) as http:
        admin = bearer(await login(http, "admin", "admin"))
        await login(http, "ann", "ann")
        assert await _renews(api, http, "ann")
        spaces = await http.put("/scouter/user/ann", json={"favorite_spaces": ["sp"]}, headers=admin)
        assert 200 == spaces.status_code
        assert await _renews(api, http, "ann")
        assert 200 == (await http.put("/scouter/user/ann", json=change, headers=admin)).status_code
        stored = await get_user(db, "ann")
        assert stored is not None
        assert (None, None) == (stored.refresh_hash, stored.refresh_expires_at)
        if change.get("active") is False:
            assert 200 == (await http.put("/scouter/user/ann", json={"active": True}, headers=admin)).status_code
        assert not await _renews(api, http, "ann")
        renewal = await http.get("/scouter/user/ann", headers=bearer(api.token("ann", age=7200)))
        assert 401 == renewal.status_code


async def test_a_user_changing_their_own_password_revokes_their_refresh_token(db: Database) -> None:
    """The self-service path too: a stolen session stops renewing once its owner changes the password."""
    api = await make_api(db)
    async with served(api) as http:
        guest = bearer(await login(http, "guest", "guest"))
        assert 200 == (await http.put("/scouter/user/guest", json={"password": "better"}, headers=guest)).status_code
        assert not await _renews(api, http, "guest")


# -- login throttling -------------------------------------------------------------------------------------------
def _from(address: str) -> httpx.AsyncHTTPTransport:
    """A transport whose connections leave from `address` (any 127.x.y.z is this machine on Linux)."""
    return httpx.AsyncHTTPTransport(local_address=address)


async def test_an_attacker_cannot_lock_the_owner_out(db: Database) -> None:
    """Wrong passwords for admin from one address (claiming another in X-Forwarded-For, which is not trusted)
    throttle that address only: the owner, from another address, logs in at once."""
    api = await make_api(db)
    async with served(api) as http:
        base = str(http.base_url)
        async with httpx.AsyncClient(base_url=base, transport=_from("127.0.0.2")) as attacker:
            statuses = []
            for attempt in range(8):
                headers = {**login_headers("admin", f"guess-{attempt}"), "X-Forwarded-For": "127.0.0.1"}
                statuses.append((await attacker.get("/scouter/auth/login", headers=headers)).status_code)
            assert 429 == statuses[-1], statuses
            right = await attacker.get("/scouter/auth/login", headers=login_headers("admin", "admin"))
            assert 429 == right.status_code  # the attacker's address stays throttled, even with the right password
        async with httpx.AsyncClient(base_url=base, transport=_from("127.0.0.1")) as owner:
            assert 200 == (await owner.get("/scouter/auth/login", headers=login_headers("admin", "admin"))).status_code


async def test_password_spraying_from_one_address_is_throttled(db: Database) -> None:
    """One wrong password per user name, over many names, from one address: that address gets 429 after the
    per-address allowance, whatever name it tries next; another address is unaffected."""
    api = await make_api(db)
    async with served(api) as http:
        base = str(http.base_url)
        async with httpx.AsyncClient(base_url=base, transport=_from("127.0.0.3")) as sprayer:
            statuses = []
            for n in range(60):
                response = await sprayer.get("/scouter/auth/login", headers=login_headers(f"user{n}", "password1"))
                statuses.append(response.status_code)
                if response.status_code == 429:
                    break
            assert 429 == statuses[-1], statuses
            assert 429 == (await sprayer.get("/scouter/auth/login", headers=login_headers("guest", "x"))).status_code
        async with httpx.AsyncClient(base_url=base, transport=_from("127.0.0.4")) as other:
            assert 200 == (await other.get("/scouter/auth/login", headers=login_headers("guest", "guest"))).status_code


async def test_a_trusted_proxy_hop_takes_the_client_address_from_x_forwarded_for(db: Database) -> None:
    """Behind SCOUTER_TRUSTED_PROXY_HOPS=1, two clients behind the same proxy address are told apart by the
    address the proxy appended to X-Forwarded-For (what the client claimed to its left is ignored)."""
    api = await make_api(db, SCOUTER_TRUSTED_PROXY_HOPS="1")
    async with served(api) as http:
        for attempt in range(8):
            headers = {**login_headers("admin", f"guess-{attempt}"), "X-Forwarded-For": "127.0.0.1, 10.0.0.66"}
            last = await http.get("/scouter/auth/login", headers=headers)
        assert 429 == last.status_code
        owner = {**login_headers("admin", "admin"), "X-Forwarded-For": "10.0.0.7"}
        assert 200 == (await http.get("/scouter/auth/login", headers=owner)).status_code


# -- the metrics token ------------------------------------------------------------------------------------------
def test_the_metrics_token_is_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """The bearer token of /metrics goes through hmac.compare_digest (not `==`, which leaks its length of match)."""
    compared: list[tuple[Any, Any]] = []
    original = hmac.compare_digest

    def recording(a: Any, b: Any) -> bool:
        compared.append((a, b))
        return original(a, b)

    monkeypatch.setattr(hmac, "compare_digest", recording)
    assert metrics_allowed("s3cret", "Bearer s3cret")
    assert not metrics_allowed("s3cret", "Bearer s3creT")
    assert not metrics_allowed("s3cret", None)
    assert metrics_allowed(None, None)
    assert 2 <= len(compared)


# -- nothing read before authentication -------------------------------------------------------------------------
def _headers_only(port: int, head: bytes) -> bytes:
    """Send only a request's head (its Content-Length promises a body that never comes); return the answer."""
    # Waiting for the body would hang until this timeout, and the recv then raises TimeoutError.
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(head)
        answer = b""
        while b"\r\n\r\n" not in answer:
            more = sock.recv(65536)
            if not more:
                break
            answer += more
        return answer


@pytest.mark.parametrize("credentials", ["", "Authorization: Bearer not.a.token\r\n"], ids=["none", "forged"])
async def test_an_unauthenticated_body_is_not_read(db: Database, credentials: str) -> None:
    """A protected route refuses a request without valid credentials with 401 at once, without waiting for (or
    reading) the 1 MB body its Content-Length announces."""
    api = await make_api(db, [drift_blueprint])
    async with served(api) as http:
        port = http.base_url.port
        assert port is not None
        head = (
            "POST /scouter/drift HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
            f"{credentials}Content-Length: 1000000\r\n\r\n"
        ).encode()
        answer = await trio.to_thread.run_sync(_headers_only, port, head)
        assert answer.startswith(b"HTTP/1.1 401"), answer[:200]


async def test_an_expired_token_due_for_renewal_still_gets_its_body_read(db: Database) -> None:
    """The early refusal leaves renewal to the guard: a POST with an expired but renewable token has its body read
    (here: a 4xx naming what is wrong with it) and still carries the renewed token back."""
    api = await make_api(db, [drift_blueprint])
    async with served(api) as http:
        await login(http, "guest", "guest")
        response = await http.post("/scouter/drift", json={"records": 3}, headers=bearer(api.token("guest", age=7200)))
        assert response.status_code in (400, 403, 422), response.text
        assert response.headers["Authorization"].startswith("Bearer ")
