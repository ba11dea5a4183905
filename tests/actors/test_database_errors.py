"""What a real PostgreSQL makes asyncpg raise when it goes away or refuses us, and how the door classifies it:
every failure to get or keep a connection is in UNAVAILABLE (waited out by every actor); a wrong statement is not."""

from __future__ import annotations

import urllib.parse

import asyncpg
import pytest
import trio
import trio_asyncio

from actors.database import UNAVAILABLE, Database, DatabaseUnavailable, close_pool, open_pool
from config import DatabaseSettings

pytestmark = [pytest.mark.postgres]


async def admin(dsn: str, *statements: str) -> None:
    conn = await trio_asyncio.aio_as_trio(asyncpg.connect)(dsn, timeout=10)
    try:
        for statement in statements:
            await trio_asyncio.aio_as_trio(conn.execute)(statement)
    finally:
        await trio_asyncio.aio_as_trio(conn.close)()


def terminate(name: str) -> str:
    return (
        f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}' AND pid <> pg_backend_pid()"
    )


async def refusal(db: Database) -> Exception:
    """The error of the first query that meets the refusal (the pool may first meet its terminated connections)."""
    for _ in range(50):
        try:
            await db.fetchval("SELECT 1")
        except Exception as exc:
            if "not currently accepting connections" in str(exc):
                return exc
        await trio.sleep(0.1)
    raise AssertionError("the pool never met the refusal")


async def test_a_terminated_session_is_unavailable(db: Database, postgres_dsn: str, fresh_database_dsn: str) -> None:
    """The server ends our session mid-query (AdminShutdownError / ConnectionDoesNotExistError): unavailable."""
    name = urllib.parse.urlsplit(fresh_database_dsn).path.lstrip("/")
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(admin, postgres_dsn, "SELECT pg_sleep(0.5)", terminate(name))
            with pytest.raises(UNAVAILABLE) as info:
                await db.fetchval("SELECT pg_sleep(10)")
    assert not isinstance(info.value, DatabaseUnavailable)  # asyncpg's own connection error, already in the list
    assert 1 == await db.fetchval("SELECT 1")  # the pool replaced the connection


async def test_connections_refused_by_the_server_are_unavailable(
    db: Database, postgres_dsn: str, fresh_database_dsn: str
) -> None:
    """ALLOW_CONNECTIONS false and no open session left: asyncpg raises ObjectNotInPrerequisiteStateError (not a
    connection error to asyncpg) when the pool reconnects; the door reports DatabaseUnavailable naming it."""
    name = urllib.parse.urlsplit(fresh_database_dsn).path.lstrip("/")
    await admin(postgres_dsn, f"ALTER DATABASE {name} ALLOW_CONNECTIONS false", terminate(name))
    try:
        with trio.fail_after(20):
            refused = await refusal(db)
        assert isinstance(refused, DatabaseUnavailable), repr(refused)
        assert "ObjectNotInPrerequisiteState" in str(refused)
        with trio.fail_after(20), pytest.raises(DatabaseUnavailable, match="ObjectNotInPrerequisiteState"):
            await open_pool(fresh_database_dsn, DatabaseSettings(max_pool_size=1, min_pool_size=1))
    finally:
        await admin(postgres_dsn, f"ALTER DATABASE {name} ALLOW_CONNECTIONS true")
    assert 1 == await db.fetchval("SELECT 1")


async def test_a_closed_pool_is_unavailable(aio_loop: None, fresh_database_dsn: str) -> None:
    """The database actor closed its pool (stopping or restarting): DatabaseUnavailable, never a bare error."""
    db = await open_pool(fresh_database_dsn, DatabaseSettings(max_pool_size=1, min_pool_size=1))
    await close_pool(db)
    with pytest.raises(DatabaseUnavailable, match="pool is closed"):
        await db.fetchval("SELECT 1")


async def test_a_wrong_statement_is_not_an_outage(db: Database) -> None:
    """A statement PostgreSQL rejects is a bug to surface, not an outage to wait out."""
    with pytest.raises(asyncpg.PostgresError) as info:
        await db.fetchval("SELECT * FROM no_such_table")
    assert not isinstance(info.value, UNAVAILABLE)


async def test_an_unparsable_uri_is_not_an_outage(aio_loop: None) -> None:
    """A URI asyncpg cannot parse is a configuration error (the server exits), not an outage it would retry."""
    with pytest.raises(ValueError) as info:
        await open_pool("postgresql://127.0.0.1:5432/db?sslmode=bogus", DatabaseSettings(max_pool_size=1))
    assert not isinstance(info.value, DatabaseUnavailable)
