"""The database actor: owns the asyncpg pool (through trio-asyncio), runs migrations, watches reachability.

Every unit of work crosses into asyncio exactly once, as one plain asyncio coroutine that acquires, uses and
releases its connection: a trio cancellation then becomes one asyncio cancellation and asyncpg's own cleanup runs,
so no connection is ever stranded (dependencies.md §4.2).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import asyncpg
import attrs
import trio
import trio_asyncio

from config import DatabaseSettings
from scouter.sql import MIGRATION_LOCK_KEY, MIGRATIONS, Migration

from .health import HealthBoard

log = logging.getLogger("actors.database")

T = TypeVar("T")
#: An asyncio coroutine function run with a pooled connection.
Work = Callable[..., Awaitable[T]]


class DatabaseUnavailable(RuntimeError):
    """No connection to be had right now: the database actor is (re)starting, or PostgreSQL does not let us in."""


#: Errors that mean "the database is not there right now", as opposed to "this statement is wrong".
UNAVAILABLE = (
    DatabaseUnavailable,
    OSError,
    ConnectionError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.AdminShutdownError,
    asyncpg.InterfaceError,
    asyncpg.ConnectionDoesNotExistError,
    # What asyncpg raises for a query on a pooled connection whose session the server has just ended (the FATAL
    # arrived, the socket's EOF not yet): "cannot switch to state 12; another operation (2) is in progress".
    asyncpg.InternalClientError,
)


@attrs.frozen
class Database:
    """The only door to PostgreSQL for trio code."""

    pool: asyncpg.Pool
    acquire_timeout: float = 10.0

    async def run(self, work: Work[T], *args: Any, transaction: bool = False) -> T:
        """Run ``await work(conn, *args)`` in asyncio with a pooled connection, optionally in a transaction."""
        return await trio_asyncio.aio_as_trio(self._run)(work, args, transaction)

    async def _run(self, work: Work[T], args: tuple[Any, ...], transaction: bool) -> T:  # asyncio side
        conn = await acquire(self.pool, self.acquire_timeout)
        try:
            if not transaction:
                return await work(conn, *args)
            async with conn.transaction():
                return await work(conn, *args)
        finally:
            await self.pool.release(conn)

    async def fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        return await self.run(_fetch, sql, *args)

    async def fetchrow(self, sql: str, *args: Any) -> asyncpg.Record | None:
        return await self.run(_fetchrow, sql, *args)

    async def fetchval(self, sql: str, *args: Any) -> Any:
        return await self.run(_fetchval, sql, *args)

    async def execute(self, sql: str, *args: Any) -> str:
        return await self.run(_execute, sql, *args)

    def statistics(self) -> dict[str, int]:
        return {"size": self.pool.get_size(), "idle": self.pool.get_idle_size(), "max": self.pool.get_max_size()}


async def acquire(pool: asyncpg.Pool, wait: float) -> asyncpg.Connection:  # asyncio side
    """A pooled connection, or `DatabaseUnavailable`: the pool opens connections lazily, so this is where a database
    that refuses us (connections disallowed, password rotated, database gone: errors that are not "connection"
    errors to asyncpg) shows up, and any failure to get a connection is an outage, never a bug of the caller."""
    try:
        return await pool.acquire(timeout=wait)
    except Exception as exc:
        raise DatabaseUnavailable(f"cannot get a connection: {exc!r}") from exc


async def _fetch(conn: asyncpg.Connection, sql: str, *args: Any) -> list[asyncpg.Record]:
    return await conn.fetch(sql, *args)


async def _fetchrow(conn: asyncpg.Connection, sql: str, *args: Any) -> asyncpg.Record | None:
    return await conn.fetchrow(sql, *args)


async def _fetchval(conn: asyncpg.Connection, sql: str, *args: Any) -> Any:
    return await conn.fetchval(sql, *args)


async def _execute(conn: asyncpg.Connection, sql: str, *args: Any) -> str:
    return await conn.execute(sql, *args)


async def open_pool(uri: str, settings: DatabaseSettings) -> Database:
    """A pool with its first connections open; `DatabaseUnavailable` when PostgreSQL cannot be reached or refuses us.
    A ValueError (asyncpg cannot parse ``uri``) is a configuration error and passes through."""
    try:
        return await _create_pool(uri, settings)
    except ValueError:
        raise
    except Exception as exc:
        raise DatabaseUnavailable(f"cannot connect: {exc!r}") from exc


async def _create_pool(uri: str, settings: DatabaseSettings) -> Database:
    pool = await trio_asyncio.aio_as_trio(asyncpg.create_pool)(
        uri,
        min_size=min(settings.min_pool_size, settings.max_pool_size),
        max_size=settings.max_pool_size,
        # No client-side timers per query or per idle connection: under trio-asyncio a cancelled asyncio timer
        # lingers until it would have fired, and tens of thousands of them made GC pauses the p99 of ingest.
        # The server enforces the statement bound instead; trio deadlines bound the callers.
        command_timeout=None,
        max_inactive_connection_lifetime=0,
        # jit off: PostgreSQL compiles a query when the planner's cost estimate is high, and the estimates of the
        # range-by-range reads (rollup grains, raw edges: a lateral join over an array of ranges) are far too high,
        # so a 20 ms read paid 0.3-1.5 s of compilation; over a million raw rows it gained nothing measurable
        # (tests/bench/bench_rollups.py).
        server_settings={
            "application_name": "scouter-py",
            "timezone": "UTC",
            "statement_timeout": "300s",
            "jit": "off",
            # Custom plans always: after five runs of a prepared statement PostgreSQL may switch to a generic plan,
            # one blind to the window's bounds; for the binned read over 30 days of rows that plan took 940 ms
            # where the planned one took 690 (tests/bench/bench_rollups.py). Our statements plan in well under a ms.
            "plan_cache_mode": "force_custom_plan",
        },
    )
    return Database(pool, settings.acquire_timeout)


async def close_pool(db: Database) -> None:
    """Shielded and bounded; terminate if the polite close hangs."""
    with trio.move_on_after(5, shield=True) as scope:
        await trio_asyncio.aio_as_trio(db.pool.close)()
    if scope.cancelled_caught:
        log.warning("pool close took over 5 s: terminating connections")
        db.pool.terminate()


# -- migrations ------------------------------------------------------------------------------------------------
async def _migrate(conn: asyncpg.Connection, migrations: tuple[Migration, ...]) -> list[int]:  # asyncio side
    # A session-level advisory lock serialises replicas starting at once; each migration is its own transaction.
    await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_KEY)
    try:
        await conn.execute("CREATE SCHEMA IF NOT EXISTS scouter")
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS scouter.schema_migrations ("
            " version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {r["version"] for r in await conn.fetch("SELECT version FROM scouter.schema_migrations")}
        applied = []
        for migration in migrations:
            if migration.version in done:
                continue
            async with conn.transaction():
                await conn.execute(migration.sql)
                await conn.execute(
                    "INSERT INTO scouter.schema_migrations (version, name) VALUES ($1, $2)",
                    migration.version,
                    migration.name,
                )
            applied.append(migration.version)
        return applied
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK_KEY)


async def migrate(db: Database, migrations: tuple[Migration, ...] = MIGRATIONS) -> list[int]:
    """Apply what is missing; returns the versions applied now. Idempotent and safe across replicas."""
    applied = await db.run(_migrate, migrations)
    if applied:
        log.info("applied migrations %s", ", ".join(map(str, applied)))
    return applied


# -- the actor --------------------------------------------------------------------------------------------------
@attrs.define
class DatabaseHandle:
    """Where the database actor publishes its pool for the children started after it (rest_for_one)."""

    db: Database | None = None

    def get(self) -> Database:
        if self.db is None:
            raise DatabaseUnavailable("the database actor is not running")
        return self.db


@attrs.define
class DatabaseActor:
    """Connects (retrying with backoff: a database that is down is expected, not a crash), migrates, runs
    `prepare` (the tree passes the default users' creation), then checks reachability every few seconds for the
    readiness probe. Closes the pool on stop."""

    settings: DatabaseSettings
    uri: Callable[[], str]
    handle: DatabaseHandle
    board: HealthBoard
    check_interval: float = 2.0
    #: Run once migrated, before reporting ready (the default users: see `actors.users.prepare_users`). A hook
    #: rather than an import keeps this module below the modules that use the pool.
    prepare: Callable[[Database], Awaitable[None]] | None = None

    async def run(self, stop: trio.Event, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        db = await self._connect(stop)
        if db is None:
            return  # asked to stop before the database ever answered
        try:
            await migrate(db)
            if self.prepare is not None:
                await self.prepare(db)
            self.handle.db = db
            self.board.ok("database")
            task_status.started()
            await self._watch(db, stop)
        finally:
            self.handle.db = None
            self.board.forget("database")
            await close_pool(db)

    async def _connect(self, stop: trio.Event) -> Database | None:
        delay = 0.5
        while not stop.is_set():
            uri = self.uri()
            try:
                with trio.fail_after(15):
                    return await open_pool(uri, self.settings)
            except (DatabaseUnavailable, trio.TooSlowError) as exc:  # a URI asyncpg cannot parse is not retried
                why = str(exc) if isinstance(exc, DatabaseUnavailable) else "cannot connect: no answer within 15 s"
                self.board.failing("database", why)
                log.warning("database not reachable (%r); retrying in %.1f s", exc, delay)
            with trio.move_on_after(delay * random.uniform(0.8, 1.2)):
                await stop.wait()
            delay = min(delay * 2, 30)
        return None

    async def _watch(self, db: Database, stop: trio.Event) -> None:
        while not stop.is_set():
            try:
                with trio.fail_after(self.check_interval + 3):
                    await db.fetchval("SELECT 1")
                if self.board.problems().get("database"):
                    log.info("database reachable again")
                self.board.ok("database")
            except (*UNAVAILABLE, trio.TooSlowError) as exc:
                if not self.board.problems().get("database"):
                    log.warning("database unreachable: %r", exc)
                self.board.failing("database", f"unreachable: {exc!r}")
            with trio.move_on_after(self.check_interval):
                await stop.wait()
