"""`/scouter/user` routes against a real PostgreSQL (§2.7): shapes, codes, messages, the last-admin rule."""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

import orjson
import pytest
import trio

from actors import users
from actors.database import Database
from actors.users import Deleted, get_user
from scouter.auth import verify_password
from tests.actors.auth_support import Api, bearer, make_api, served

LOGIN_ADMIN = {"Username": "admin", "Password": "admin"}
_NOISE = secrets.token_hex(1500)


async def admin_api(db: Database) -> tuple[Api, dict[str, str]]:
    api = await make_api(db)
    return api, bearer(await api.login("admin", "admin"))


# -- create -----------------------------------------------------------------------------------------------------
async def test_create_returns_the_user_and_four_recovery_codes(db: Database) -> None:
    """An admin creates a user: upstream's response shape, defaults applied, codes shown once and stored hashed."""
    api, admin = await admin_api(db)
    body = {"username": "ann", "password": "pw-ann", "email": "ann@example.com"}
    response = await api.client.post("/scouter/user", json=body, headers=admin)
    assert 200 == response.status_code
    created = await response.get_json()
    assert {
        "username": "ann",
        "email": "ann@example.com",
        "active": True,
        "role": "user",
        "permissions": ["read:all"],
        "group_permissions": ["user"],
        "favorite_spaces": [],
    } == created["user"]
    assert "Save these recovery codes securely. They cannot be shown again!" == created["message"]
    codes = created["recovery_codes"]
    assert 4 == len(codes)
    assert all(16 == len(code) and code.isalnum() and code.isascii() for code in codes)
    row = await db.fetchrow("SELECT password_hash, hashed_recovery_codes FROM scouter.\"user\" WHERE username = 'ann'")
    assert verify_password("pw-ann", row["password_hash"])
    hashes = orjson.loads(row["hashed_recovery_codes"])
    assert [True] * 4 == [verify_password(code, stored) for code, stored in zip(codes, hashes, strict=True)]
    assert (
        200
        == (await api.client.get("/scouter/auth/login", headers={"Username": "ann", "Password": "pw-ann"})).status_code
    )


async def test_create_takes_the_given_fields(db: Database) -> None:
    """Permissions, groups, role and active are taken from the request (lists de-duplicated)."""
    api, admin = await admin_api(db)
    body = {
        "username": "bob",
        "password": "p",
        "email": "bob@x",
        "permissions": ["read:a", "write:a", "read:a"],
        "group_permissions": ["admin"],
        "role": "admin",
        "active": False,
        "unknown": "ignored",
    }
    created = await (await api.client.post("/scouter/user", json=body, headers=admin)).get_json()
    user = created["user"]
    assert (["read:a", "write:a"], ["admin"], "admin", False) == (
        user["permissions"],
        user["group_permissions"],
        user["role"],
        user["active"],
    )


async def test_create_needs_the_admin_group(db: Database) -> None:
    """A non-admin gets 403 "Need admin permission"; no token 401."""
    api = await make_api(db)
    guest = bearer(await api.login("guest", "guest"))
    body = {"username": "cat", "password": "p", "email": "cat@x"}
    response = await api.client.post("/scouter/user", json=body, headers=guest)
    assert 403 == response.status_code
    assert {"error": "Need admin permission"} == await response.get_json()
    assert 401 == (await api.client.post("/scouter/user", json=body)).status_code
    assert await get_user(db, "cat") is None


async def test_create_duplicates_are_409(db: Database) -> None:
    """An existing username is 409 "User already exists"; an e-mail in use is 409 too."""
    api, admin = await admin_api(db)
    again = await api.client.post(
        "/scouter/user", json={"username": "guest", "password": "p", "email": "g@x"}, headers=admin
    )
    assert 409 == again.status_code
    assert {"error": "User already exists"} == await again.get_json()
    email = await api.client.post(
        "/scouter/user", json={"username": "dan", "password": "p", "email": "admin"}, headers=admin
    )
    assert 409 == email.status_code
    assert {"error": "Email already exists"} == await email.get_json()


@pytest.mark.parametrize(
    ("data", "status", "error"),
    [
        ('{"username": "x", ', 400, "request body is not valid JSON"),
        ('"just a string"', 422, "request body must be a JSON object, not a string"),
        ('{"username": 5, "password": "p", "email": "e"}', 422, "field 'username' must be a string"),
        ('{"username": "x", "password": "p"}', 422, "missing field 'email'"),
        ('{"username": "", "password": "p", "email": "e"}', 422, "field 'username' must not be empty"),
        (
            '{"username": "x", "password": "p", "email": "e", "permissions": "read:all"}',
            422,
            "field 'permissions' must be a list of strings",
        ),
        ('{"username": "x", "password": "p", "email": "e", "active": "yes"}', 422, "field 'active' must be a boolean"),
        # these were 500s: longer than a unique index row holds (incompressible), or than passlib hashes
        (f'{{"username": "{_NOISE}", "password": "p", "email": "e"}}', 422, "field 'username' must be at most 128"),
        (f'{{"username": "x", "password": "p", "email": "{_NOISE}"}}', 422, "field 'email' must be at most 254"),
        (f'{{"username": "x", "password": "{"p" * 5000}", "email": "e"}}', 422, "field 'password' must be at most"),
    ],
)
async def test_create_rejects_bad_bodies_naming_the_problem(db: Database, data: str, status: int, error: str) -> None:
    """Malformed JSON 400; wrong shape 422 naming the field; always a JSON error body."""
    api, admin = await admin_api(db)
    response = await api.client.post("/scouter/user", data=data, headers={**admin, "Content-Type": "application/json"})
    assert status == response.status_code
    assert (await response.get_json())["error"].startswith(error)


async def test_an_overlong_new_password_is_422_and_the_old_one_stays(db: Database) -> None:
    api, admin = await admin_api(db)
    response = await api.client.put("/scouter/user/admin", json={"password": "p" * 5000}, headers=admin)
    assert (422, "field 'password' must be at most 1024 characters") == (
        response.status_code,
        (await response.get_json())["error"],
    )
    await api.login("admin", "admin")


# -- read -------------------------------------------------------------------------------------------------------
async def test_list_is_for_admins_and_hides_secrets(db: Database) -> None:
    """GET /scouter/user lists every user in UserResponse shape for admins; others get 403."""
    api, admin = await admin_api(db)
    response = await api.client.get("/scouter/user", headers=admin)
    assert 200 == response.status_code
    listed = (await response.get_json())["users"]
    assert ["admin", "guest"] == [user["username"] for user in listed]
    expected_keys = {"username", "email", "active", "role", "permissions", "group_permissions", "favorite_spaces"}
    assert [expected_keys, expected_keys] == [set(user) for user in listed]
    guest = bearer(await api.login("guest", "guest"))
    denied = await api.client.get("/scouter/user", headers=guest)
    assert 403 == denied.status_code
    assert {"error": "Need admin permission"} == await denied.get_json()


async def test_get_one_is_for_admins_and_the_user_themself(db: Database) -> None:
    """A user reads themself; reading another is 403 "Permission denied"; admins read anyone; missing 404."""
    api, admin = await admin_api(db)
    await api.create_user("eve")
    eve = bearer(await api.login("eve", "eve"))
    own = await api.client.get("/scouter/user/eve", headers=eve)
    assert 200 == own.status_code
    assert "eve@example.com" == (await own.get_json())["email"]
    other = await api.client.get("/scouter/user/guest", headers=eve)
    assert 403 == other.status_code
    assert {"error": "Permission denied"} == await other.get_json()
    assert 200 == (await api.client.get("/scouter/user/eve", headers=admin)).status_code
    missing = await api.client.get("/scouter/user/nobody", headers=admin)
    assert 404 == missing.status_code
    assert {"error": "User not found"} == await missing.get_json()


# -- update -----------------------------------------------------------------------------------------------------
async def test_user_updates_own_password_and_favorite_spaces(db: Database) -> None:
    """Self-update re-hashes the password and de-duplicates favourite spaces."""
    api = await make_api(db)
    await api.create_user("fred")
    fred = bearer(await api.login("fred", "fred"))
    body = {"password": "new-secret", "favorite_spaces": ["a", "b", "a"]}
    response = await api.client.put("/scouter/user/fred", json=body, headers=fred)
    assert 200 == response.status_code
    assert ["a", "b"] == (await response.get_json())["favorite_spaces"]
    assert (
        401
        == (await api.client.get("/scouter/auth/login", headers={"Username": "fred", "Password": "fred"})).status_code
    )
    await api.login("fred", "new-secret")


async def test_a_password_change_ends_the_access_tokens_issued_before_it(db: Database) -> None:
    """A token stolen before the owner changed their password stops working then, not an hour later; tokens issued
    after the change (a new login) work. Other updates (favourite spaces) leave the session alone."""
    api = await make_api(db)
    await api.create_user("gus")
    before = bearer(api.token("gus", age=5))  # issued before the change: whole seconds separate them
    assert 200 == (await api.client.get("/scouter/user/gus", headers=before)).status_code
    spaces = await api.client.put("/scouter/user/gus", json={"favorite_spaces": ["a"]}, headers=before)
    assert 200 == spaces.status_code
    assert 200 == (await api.client.get("/scouter/user/gus", headers=before)).status_code
    changed = await api.client.put("/scouter/user/gus", json={"password": "rotated"}, headers=before)
    assert 200 == changed.status_code
    refused = await api.client.get("/scouter/user/gus", headers=before)
    assert 401 == refused.status_code
    assert "log in again" in (await refused.get_json())["message"]
    after = bearer(await api.login("gus", "rotated"))
    assert 200 == (await api.client.get("/scouter/user/gus", headers=after)).status_code


async def test_non_admin_cannot_change_permissions_groups_or_active(db: Database) -> None:
    """A non-admin's permissions, group_permissions and active are silently ignored."""
    api = await make_api(db)
    await api.create_user("gus")
    gus = bearer(await api.login("gus", "gus"))
    body = {"permissions": ["write:all"], "group_permissions": ["admin"], "active": False, "favorite_spaces": ["s"]}
    response = await api.client.put("/scouter/user/gus", json=body, headers=gus)
    assert 200 == response.status_code
    user = await response.get_json()
    assert (["read:all"], ["user"], True, ["s"]) == (
        user["permissions"],
        user["group_permissions"],
        user["active"],
        user["favorite_spaces"],
    )


async def test_admin_changes_permissions_groups_and_active(db: Database) -> None:
    """An admin's changes are written, lists de-duplicated; fields not sent are kept."""
    api, admin = await admin_api(db)
    await api.create_user("hil")
    hil = bearer(await api.login("hil", "hil"))
    await api.client.put("/scouter/user/hil", json={"favorite_spaces": ["kept"]}, headers=hil)
    body = {"permissions": ["read:x", "read:x", "write:x"], "group_permissions": ["ops"], "active": False}
    response = await api.client.put("/scouter/user/hil", json=body, headers=admin)
    assert 200 == response.status_code
    user = await response.get_json()
    assert (["read:x", "write:x"], ["ops"], False, ["kept"]) == (
        user["permissions"],
        user["group_permissions"],
        user["active"],
        user["favorite_spaces"],
    )
    stored = await get_user(db, "hil")
    assert stored is not None
    assert verify_password("hil", stored.password_hash)


async def test_update_of_another_user_or_a_missing_one(db: Database) -> None:
    """A non-admin updating someone else: 403; an admin updating a missing user: 404; bad shape 422."""
    api, admin = await admin_api(db)
    guest = bearer(await api.login("guest", "guest"))
    assert 403 == (await api.client.put("/scouter/user/admin", json={"password": "x"}, headers=guest)).status_code
    missing = await api.client.put("/scouter/user/nobody", json={"password": "x"}, headers=admin)
    assert 404 == missing.status_code
    assert {"error": "User not found"} == await missing.get_json()
    bad = await api.client.put("/scouter/user/guest", json={"favorite_spaces": [1]}, headers=admin)
    assert 422 == bad.status_code
    assert {"error": "field 'favorite_spaces' must be a list of strings"} == await bad.get_json()


async def test_a_name_holding_nul_is_no_user(db: Database) -> None:
    """A path name with NUL (no user can have one): GET and PUT 404, DELETE succeeds as for any missing user."""
    api, admin = await admin_api(db)
    assert 404 == (await api.client.get("/scouter/user/a%00b", headers=admin)).status_code
    updated = await api.client.put("/scouter/user/a%00b", json={"password": "x"}, headers=admin)
    assert (404, {"error": "User not found"}) == (updated.status_code, await updated.get_json())
    deleted = await api.client.delete("/scouter/user/a%00b", headers=admin)
    assert (200, "success") == (deleted.status_code, (await deleted.get_json())["status"])


# -- delete -----------------------------------------------------------------------------------------------------
async def test_delete_a_user(db: Database) -> None:
    """An admin deletes a user: upstream's success body; the user is gone; a missing user also succeeds."""
    api, admin = await admin_api(db)
    response = await api.client.delete("/scouter/user/guest", headers=admin)
    assert 200 == response.status_code
    assert {"status": "success", "message": "User guest deleted successfully"} == await response.get_json()
    assert await get_user(db, "guest") is None
    assert 200 == (await api.client.delete("/scouter/user/nobody", headers=admin)).status_code


async def test_delete_needs_the_admin_group(db: Database) -> None:
    """A non-admin, even deleting themself, gets 403 "Need admin permission"."""
    api = await make_api(db)
    guest = bearer(await api.login("guest", "guest"))
    response = await api.client.delete("/scouter/user/guest", headers=guest)
    assert 403 == response.status_code
    assert {"error": "Need admin permission"} == await response.get_json()


async def test_the_last_admin_cannot_be_deleted(db: Database) -> None:
    """Deleting the only admin-group user is 409; with a second admin it is allowed."""
    api, admin = await admin_api(db)
    last = await api.client.delete("/scouter/user/admin", headers=admin)
    assert 409 == last.status_code
    assert {"error": "Cannot delete the last admin user"} == await last.get_json()
    await api.create_user("root", role="admin", group_permissions=["admin"])
    assert 200 == (await api.client.delete("/scouter/user/admin", headers=admin)).status_code


async def test_concurrent_deletes_leave_one_admin(db: Database) -> None:
    """Two admins deleted at once: the second delete waits for the first to commit, then hits the last-admin rule
    (without row locks both would pass the check and leave no admin)."""
    api = await make_api(db)
    await api.create_user("root", role="admin", group_permissions=["admin"])
    outcomes: dict[str, Deleted] = {}

    async def held_delete(conn: Any, name: str) -> Deleted:  # asyncio side: commit only after a pause
        outcome = await users._delete(conn, name)
        await asyncio.sleep(0.5)
        return outcome

    async def first() -> None:
        outcomes["admin"] = await db.run(held_delete, "admin", transaction=True)

    async def second() -> None:
        await trio.sleep(0.1)  # the first transaction has deleted "admin" but not committed
        outcomes["root"] = await users.delete_user(db, "root")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(first)
        nursery.start_soon(second)
    assert {"admin": Deleted.DELETED, "root": Deleted.LAST_ADMIN} == outcomes
    assert ["root"] == [
        r["username"] for r in await db.fetch("SELECT username FROM scouter.\"user\" WHERE group_permissions ? 'admin'")
    ]


# -- the last admin, whatever takes the rights away ----------------------------------------------------------------
async def test_the_last_admin_keeps_the_admin_group(db: Database) -> None:
    """Over real HTTP: taking the admin group from the only admin (or deactivating it) is 409 and changes nothing,
    so someone can still manage users; once a second user holds the admin group, the change is allowed."""
    api = await make_api(db)
    async with served(api) as http:
        admin = bearer((await http.get("/scouter/auth/login", headers=LOGIN_ADMIN)).json()["token"])
        for change in ({"group_permissions": ["user"]}, {"active": False}, {"group_permissions": []}):
            refused = await http.put("/scouter/user/admin", json=change, headers=admin)
            assert 409 == refused.status_code, refused.text
            assert "last admin" in refused.json()["error"]
        kept = await get_user(db, "admin")
        assert kept is not None
        assert (("admin",), True) == (kept.group_permissions, kept.active)
        await api.create_user("root", group_permissions=["admin"])
        demoted = await http.put("/scouter/user/admin", json={"group_permissions": ["user"]}, headers=admin)
        assert 200 == demoted.status_code, demoted.text


async def test_a_role_admin_outside_the_admin_group_does_not_count(db: Database) -> None:
    """Over real HTTP: with bob of role `admin` but group `user`, deleting the only admin-group user is still 409:
    what grants admin rights (the admin group) is what is counted, not `role`."""
    api = await make_api(db)
    await api.create_user("bob", role="admin", group_permissions=["user"])
    async with served(api) as http:
        admin = bearer((await http.get("/scouter/auth/login", headers=LOGIN_ADMIN)).json()["token"])
        refused = await http.delete("/scouter/user/admin", headers=admin)
        assert 409 == refused.status_code, refused.text
        assert {"error": "Cannot delete the last admin user"} == refused.json()
    assert await get_user(db, "admin") is not None


async def test_an_inactive_admin_does_not_count(db: Database) -> None:
    """An inactive member of the admin group cannot log in, so it does not keep the last active admin removable."""
    api, admin = await admin_api(db)
    await api.create_user("sleeper", group_permissions=["admin"], active=False)
    refused = await api.client.delete("/scouter/user/admin", headers=admin)
    assert 409 == refused.status_code
