"""The default users of a first start (§2.3): created once, race-safe across replicas, by the database actor."""

from __future__ import annotations

import functools
import logging

import orjson
import pytest
import trio

from actors.database import Database, DatabaseActor, DatabaseHandle
from actors.health import HealthBoard
from actors.users import ensure_default_users, get_user, list_users, prepare_users, update_user
from config import AuthSettings, DatabaseSettings
from scouter.auth import hash_password, verify_password


async def test_empty_table_gets_admin_and_guest(db: Database) -> None:
    """admin/admin and guest/guest with upstream's e-mail, permissions, groups and role, one recovery hash each."""
    assert ["admin", "guest"] == await ensure_default_users(db, AuthSettings())
    admin = await get_user(db, "admin")
    guest = await get_user(db, "guest")
    assert admin is not None
    assert guest is not None
    assert ("admin", ("read:all", "write:all"), ("admin",), "admin", True) == (
        admin.email,
        admin.permissions,
        admin.group_permissions,
        admin.role,
        admin.active,
    )
    assert ("default", ("read:all", "write:all", "delete:all"), ("user",), "guest") == (
        guest.email,
        guest.permissions,
        guest.group_permissions,
        guest.role,
    )
    assert verify_password("admin", admin.password_hash)
    assert verify_password("guest", guest.password_hash)
    assert admin.password_hash.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    counts = await db.fetch('SELECT jsonb_array_length(hashed_recovery_codes) AS n FROM scouter."user"')
    assert [1, 1] == [record["n"] for record in counts]


async def test_admin_name_and_password_come_from_the_settings(db: Database) -> None:
    """SCOUTER_DEFAULT_USERNAME / SCOUTER_DEFAULT_PASSWORD name the first admin."""
    await ensure_default_users(db, AuthSettings(default_username="boss", default_password="s3cret-boss"))
    boss = await get_user(db, "boss")
    assert boss is not None
    assert verify_password("s3cret-boss", boss.password_hash)
    assert await get_user(db, "admin") is None


async def test_a_non_empty_table_gets_nothing(db: Database) -> None:
    """Users exist already (even deleted defaults): nothing is created again."""
    await db.execute(
        'INSERT INTO scouter."user" (username, email, password_hash, permissions)'
        " VALUES ('solo', 's', 'x', $1::jsonb)",
        orjson.dumps(["read:all"]).decode(),
    )
    assert [] == await ensure_default_users(db, AuthSettings())
    assert ["solo"] == [user.username for user in await list_users(db)]


async def test_replicas_starting_together_create_the_users_once(db: Database) -> None:
    """Three concurrent first starts: the advisory lock lets one create the users; the others create none."""
    results: list[list[str]] = []

    async def start() -> None:
        results.append(await ensure_default_users(db, AuthSettings()))

    async with trio.open_nursery() as nursery:
        for _ in range(3):
            nursery.start_soon(start)
    assert [[], [], ["admin", "guest"]] == sorted(results)
    assert ["admin", "guest"] == [user.username for user in await list_users(db)]


async def test_database_actor_creates_the_default_users(aio_loop: None, fresh_database_dsn: str) -> None:
    """Given the auth settings, the database actor creates the default users before it reports ready."""
    handle = DatabaseHandle()
    actor = DatabaseActor(
        DatabaseSettings(min_pool_size=1),
        lambda: fresh_database_dsn,
        handle,
        HealthBoard(),
        prepare=functools.partial(prepare_users, auth=AuthSettings()),
    )
    stop = trio.Event()
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            await nursery.start(functools.partial(actor.run, stop))
            assert ["admin", "guest"] == [user.username for user in await list_users(handle.get())]
            stop.set()


async def test_every_start_warns_about_accounts_with_a_built_in_password(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    """guest/guest (write on every space) and admin/admin are named at each start, not only at the first; an
    account whose password was changed, or that is inactive, is not."""
    await ensure_default_users(db, AuthSettings())
    with caplog.at_level(logging.WARNING, logger="actors.users"):
        await prepare_users(db, AuthSettings())
    warned = " ".join(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert "'guest'" in warned
    assert "'admin'" in warned
    caplog.clear()
    await update_user(db, "guest", active=False)
    await update_user(db, "admin", password_hash=hash_password("a-better-one"))
    with caplog.at_level(logging.WARNING, logger="actors.users"):
        await prepare_users(db, AuthSettings())
    assert [] == [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


async def test_strict_secrets_create_no_guest_account(db: Database) -> None:
    """With SCOUTER_STRICT_SECRETS=true the first start creates the admin only: no guest/guest."""
    auth = AuthSettings(default_password="a-real-password", strict_secrets=True)
    assert ["admin"] == await ensure_default_users(db, auth)
    assert await get_user(db, "guest") is None
