"""The pool under trio cancellation, the embedded PostgreSQL, and readiness through a database outage."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import asyncpg
import httpx
import pytest
import trio
import trio_asyncio

from actors.database import close_pool, open_pool
from actors.postgres import EmbeddedPostgres
from config import DatabaseSettings
from tests.services import PostgresServer
from tests.supervisors.test_cli import SCOUTER, Server, env_for, free_port


async def test_cancelling_a_thousand_queries_leaks_nothing(aio_loop: None, fresh_database_dsn: str) -> None:
    """1,000 in-flight queries cancelled at once: every connection returns to the pool idle, none is left busy on
    the server, the pool still works, and closing it is prompt."""
    db = await open_pool(fresh_database_dsn, DatabaseSettings(max_pool_size=10, min_pool_size=10))
    try:
        with trio.move_on_after(0.5):
            async with trio.open_nursery() as nursery:
                for _ in range(1000):
                    nursery.start_soon(db.fetchval, "SELECT pg_sleep(30)")
        with trio.fail_after(10):
            while db.statistics()["idle"] < 10:
                await trio.sleep(0.05)
        assert {"size": 10, "idle": 10, "max": 10} == db.statistics()
        busy = await db.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND pid <> pg_backend_pid() AND state <> 'idle'"
        )
        assert 0 == busy
        assert 1 == await db.fetchval("SELECT 1")
    finally:
        started = time.monotonic()
        await close_pool(db)
        assert time.monotonic() - started < 2


@pytest.fixture
def embedded_dir() -> Path:
    # As root the server runs as another user, which must reach its directory: not under pytest's 0700 tmp.
    path = Path(tempfile.mkdtemp(prefix="scouter-embedded-", dir="/tmp"))
    path.chmod(0o755)
    return path


async def _with_embedded(data_dir: Path, work) -> None:  # type: ignore[no-untyped-def]
    embedded = EmbeddedPostgres(data_dir)
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        uri = await nursery.start(embedded.run, stop)
        try:
            await work(uri)
        finally:
            stop.set()
    assert embedded.uri is None


async def test_embedded_postgres_keeps_data_across_restarts(aio_loop: None, embedded_dir: Path) -> None:
    """The embedded server initialises its data directory, serves, stops, and starts again with the data kept."""

    async def create(uri: str) -> None:
        conn = await trio_asyncio.aio_as_trio(asyncpg.connect)(uri)
        await trio_asyncio.aio_as_trio(conn.execute)("CREATE TABLE kept (v text); INSERT INTO kept VALUES ('hello')")
        await trio_asyncio.aio_as_trio(conn.close)()

    seen: list[str] = []

    async def read(uri: str) -> None:
        db = await open_pool(uri, DatabaseSettings(max_pool_size=2, min_pool_size=1))
        seen.append(await db.fetchval("SELECT v FROM kept"))
        await close_pool(db)

    with trio.fail_after(120):
        await _with_embedded(embedded_dir, create)
        assert (embedded_dir / "pgdata" / "PG_VERSION").exists()
        await _with_embedded(embedded_dir, read)
    assert ["hello"] == seen
    pid_file = embedded_dir / "pgdata" / "postmaster.pid"
    assert not pid_file.exists()  # a clean shutdown removes it


def test_serve_without_database_starts_embedded_and_stops_it(embedded_dir: Path) -> None:
    """`scouter serve` with no DATABASE_URI and nothing at the default URI runs on an embedded PostgreSQL, says so,
    serves, and stops it cleanly on SIGTERM."""
    port = free_port()
    # `always`: this machine may run a PostgreSQL at the default URI, which `auto` would (rightly) use instead
    env = env_for(port, SCOUTER_DATA_DIR=str(embedded_dir), SCOUTER_EMBEDDED_DATABASE="always")
    env.pop("DATABASE_URI", None)
    server = Server([*SCOUTER, "serve"], env)
    try:
        server.wait_for_log("serving API on", timeout=60)
        assert "embedded PostgreSQL on" in server.log()
        assert 200 == httpx.get(f"http://127.0.0.1:{port}/scouter/readyz").status_code
        server.proc.terminate()
        assert 0 == server.wait(60)
        assert "embedded PostgreSQL stopped" in server.log()
    finally:
        server.kill()


def test_readiness_follows_the_database_and_the_process_survives(private_postgres_server: PostgresServer) -> None:
    """Stop PostgreSQL: readiness turns 503 naming the database and the process stays up; start it: 200 again."""
    port = free_port()
    server = Server([*SCOUTER, "serve"], env_for(port, DATABASE_URI=private_postgres_server.dsn))
    ready = f"http://127.0.0.1:{port}/scouter/readyz"

    def wait_status(code: int, timeout: float = 30) -> dict:  # type: ignore[type-arg]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            response = httpx.get(ready)
            if response.status_code == code:
                return response.json()  # type: ignore[no-any-return]
            time.sleep(0.2)
        raise AssertionError(f"readiness never became {code}; log:\n{server.log()}")

    try:
        server.wait_for_log("serving API on", timeout=60)
        wait_status(200)
        private_postgres_server.stop()
        body = wait_status(503)
        assert "database" in body["problems"]
        assert server.proc.poll() is None
        private_postgres_server.start()
        wait_status(200)
        assert server.proc.poll() is None
        server.proc.terminate()
        assert 0 == server.wait(60)
    finally:
        server.kill()
