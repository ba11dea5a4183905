"""A PostgreSQL that answers but refuses us is an outage to wait out, never a reason for the process to exit.

Each test runs the real `scouter serve` against a real PostgreSQL, makes the server refuse new connections in one of
the ways an operator can (connections disallowed, password rotated, database renamed away or not created yet),
closes the server's open connections so that it must reconnect, and checks: readiness 503 naming the database, the
process still running well past the point where the restart intensity would have been exceeded and no child
crashed, then 200 again once the database takes us back, and a graceful exit.
"""

from __future__ import annotations

import subprocess
import time
import urllib.parse
from collections.abc import Callable, Iterator

import asyncpg
import httpx
import pytest
import trio
import trio_asyncio

from tests.services import PostgresServer, with_database
from tests.supervisors.test_cli import ROOT, SCOUTER, Server, env_for, free_port

#: Longer than the tree needs to exceed its restart intensity (3 restarts in 30 s) when every restart fails at once.
SURVIVE = 8.0


def sql(dsn: str, *statements: str) -> None:
    """Run ``statements`` on their own connection (trio-asyncio, as the server itself reaches PostgreSQL)."""

    async def main() -> None:
        async with trio_asyncio.open_loop():
            conn = await trio_asyncio.aio_as_trio(asyncpg.connect)(dsn, timeout=10)
            try:
                for statement in statements:
                    await trio_asyncio.aio_as_trio(conn.execute)(statement)
            finally:
                await trio_asyncio.aio_as_trio(conn.close)()

    trio.run(main)


def database_of(dsn: str) -> str:
    return urllib.parse.urlsplit(dsn).path.lstrip("/")


def terminate(name: str) -> str:
    """Close the server's open connections to database ``name``, so that the pool must open new ones."""
    return (
        f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}' AND pid <> pg_backend_pid()"
    )


class Probe:
    """Readiness of a running server, polled."""

    def __init__(self, server: Server, port: int) -> None:
        self.server = server
        self.url = f"http://127.0.0.1:{port}/scouter/readyz"

    def wait(self, code: int, timeout: float = 60) -> dict[str, object]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.server.proc.poll() is None, f"the server exited; log:\n{self.server.log()}"
            try:
                response = httpx.get(self.url, timeout=5)
            except httpx.TransportError:
                response = None
            if response is not None and response.status_code == code:
                body: dict[str, object] = response.json()
                return body
            time.sleep(0.2)
        raise AssertionError(f"readiness never became {code}; log:\n{self.server.log()}")

    def stays_unready(self, seconds: float) -> dict[str, object]:
        """Readiness stays 503 naming the database for ``seconds``, and the process keeps running."""
        deadline = time.monotonic() + seconds
        body: dict[str, object] = {}
        while time.monotonic() < deadline:
            body = self.wait(503, timeout=10)
            problems = body["problems"]
            assert isinstance(problems, dict)
            assert "database" in problems, f"{body}; log:\n{self.server.log()}"
            time.sleep(0.5)
        assert self.server.proc.poll() is None, f"the server exited; log:\n{self.server.log()}"
        assert " crashed: " not in self.server.log(), self.server.log()  # waited out by every child, not restarted
        return body


@pytest.fixture
def serve() -> Iterator[Callable[[str], tuple[Server, Probe]]]:
    started: list[Server] = []

    def start(dsn: str) -> tuple[Server, Probe]:
        port = free_port()
        server = Server([*SCOUTER, "serve"], env_for(port, DATABASE_URI=dsn, POLLING_WORKER_COUNT="2"))
        started.append(server)
        return server, Probe(server, port)

    yield start
    for server in started:
        server.kill()


def stop_gracefully(server: Server) -> None:
    server.proc.terminate()
    assert 0 == server.wait(60), server.log()


def test_disallowed_connections_are_waited_out(
    postgres_dsn: str, fresh_database_dsn: str, serve: Callable[[str], tuple[Server, Probe]]
) -> None:
    """ALTER DATABASE ... ALLOW_CONNECTIONS false (ObjectNotInPrerequisiteStateError on connect): readiness 503
    naming the database, the process keeps running; connections allowed again: ready again."""
    name = database_of(fresh_database_dsn)
    server, probe = serve(fresh_database_dsn)
    probe.wait(200)
    sql(postgres_dsn, f"ALTER DATABASE {name} ALLOW_CONNECTIONS false", terminate(name))
    body = probe.stays_unready(SURVIVE)
    assert "ObjectNotInPrerequisiteState" in str(body["problems"]), body
    sql(postgres_dsn, f"ALTER DATABASE {name} ALLOW_CONNECTIONS true")
    probe.wait(200)
    stop_gracefully(server)


def test_a_renamed_database_is_waited_out(
    postgres_dsn: str, fresh_database_dsn: str, serve: Callable[[str], tuple[Server, Probe]]
) -> None:
    """The database renamed away under a running server (InvalidCatalogNameError on connect): 503 naming the
    database and still running; renamed back: ready again."""
    name = database_of(fresh_database_dsn)
    server, probe = serve(fresh_database_dsn)
    probe.wait(200)
    # no new session may slip in between closing the server's connections and the rename
    sql(postgres_dsn, f"ALTER DATABASE {name} ALLOW_CONNECTIONS false", terminate(name),
        f"ALTER DATABASE {name} RENAME TO {name}_away",
        f"ALTER DATABASE {name}_away ALLOW_CONNECTIONS true")  # fmt: skip
    try:
        body = probe.stays_unready(SURVIVE)
        assert "InvalidCatalogName" in str(body["problems"]), body
    finally:
        sql(postgres_dsn, f"ALTER DATABASE {name}_away RENAME TO {name}")
    probe.wait(200)
    stop_gracefully(server)


def test_a_database_not_created_yet_is_waited_for(
    postgres_dsn: str, fresh_database_dsn: str, serve: Callable[[str], tuple[Server, Probe]]
) -> None:
    """Started before its database exists: the server keeps retrying and becomes ready once the database is
    created. Meanwhile its port answers (the API cannot serve before its schema exists, but a probe must tell
    "waiting" from "dead"): liveness 200 "starting", readiness 503 naming the database, any API call a JSON 503."""
    dsn = fresh_database_dsn.replace(database_of(fresh_database_dsn), database_of(fresh_database_dsn) + "_later")
    name = database_of(dsn)
    server, probe = serve(dsn)
    try:
        server.wait_for_log("does not exist", timeout=30)
        body = probe.stays_unready(SURVIVE)
        assert "InvalidCatalogName" in str(body["problems"]), body
        base = probe.url.removesuffix("/scouter/readyz")
        alive = httpx.get(f"{base}/scouter/healthcheck", timeout=5)
        assert (200, {"alive": True, "status": "starting"}) == (alive.status_code, alive.json())
        call = httpx.post(f"{base}/scouter/drift", json={"records": []}, timeout=5)
        assert 503 == call.status_code, call.text
        assert "database" in call.json()["message"], call.text
        sql(postgres_dsn, f"CREATE DATABASE {name}")
        probe.wait(200)
        stop_gracefully(server)
    finally:
        sql(postgres_dsn, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def test_a_rotated_password_is_waited_out(
    private_postgres_server: PostgresServer, serve: Callable[[str], tuple[Server, Probe]]
) -> None:
    """The server's role gets a new password (InvalidPasswordError on connect): 503 naming the database and still
    running; the old password back: ready again."""
    admin = private_postgres_server.dsn
    hba = private_postgres_server.data_dir / "pg_hba.conf"
    # passwords are checked for everyone but the test's own superuser
    hba.write_text(
        "local all all trust\nhost all postgres 127.0.0.1/32 trust\nhost all all 127.0.0.1/32 scram-sha-256\n"
    )
    sql(admin, "SELECT pg_reload_conf()", "CREATE ROLE scouter LOGIN PASSWORD 'first'",
        "CREATE DATABASE scouter OWNER scouter")  # fmt: skip
    port = private_postgres_server.port
    server, probe = serve(with_database(f"postgresql://scouter:first@127.0.0.1:{port}/postgres", "scouter"))
    probe.wait(200)
    sql(admin, "ALTER ROLE scouter PASSWORD 'second'", terminate("scouter"))
    body = probe.stays_unready(SURVIVE)
    assert "InvalidPassword" in str(body["problems"]), body
    sql(admin, "ALTER ROLE scouter PASSWORD 'first'")
    probe.wait(200)
    stop_gracefully(server)


@pytest.mark.parametrize("uri", ["postgresql://127.0.0.1:abc/db", "postgresql://[::1/db"])
def test_a_database_uri_that_cannot_be_parsed_stops_the_start_with_2(uri: str) -> None:
    """Unlike a database that refuses us, a DATABASE_URI no client can parse is a configuration error: exit 2
    naming the variable, without echoing the secret."""
    result = subprocess.run([*SCOUTER, "serve"], cwd=ROOT, env=env_for(free_port(), DATABASE_URI=uri),
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert 2 == result.returncode, result.stderr
    assert "DATABASE_URI" in result.stderr
    assert uri not in result.stderr
