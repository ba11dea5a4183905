"""SIGHUP picks up a rotated PostgreSQL password and JWT secret from their files, under load; an invalid file is
refused and the running tree keeps serving.

A real `scouter serve` process configured by SCOUTER_ENV_FILE, which names DATABASE_URI_FILE and
SCOUTER_ENCRYPT_SECRET_FILE. Its database is a private PostgreSQL that checks passwords (scram) for the server's own
role, so only the password in the file in force can open a connection. While HTTP senders and a RabbitMQ publisher
keep writing, the test holds a lock that stalls the writer's COPY (requests in flight, writes queued at the writer,
a consumer's batch held), rotates the password (ALTER ROLE) and both files, sends SIGHUP, then lets the lock go.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import os
import secrets
import signal
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from tests.actors.brokers import spc_message
from tests.e2e.brokers import publish, server_env, start_server, wait_until
from tests.e2e.conftest import LiveServer
from tests.services import free_port_pair, private_postgres, with_database

pytestmark = [pytest.mark.postgres, pytest.mark.rabbitmq, pytest.mark.slow]

ROLE = "scouter_rotated"
DATABASE = "scouter_reload"
#: The superuser stays trusted (the test's own connections); the server's role must present its password.
HBA = ("host all postgres 127.0.0.1/32 trust", f"host all {ROLE} 127.0.0.1/32 scram-sha-256")


def run_sql(dsn: str, *statements: str) -> list[asyncpg.Record]:
    async def run() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(dsn)
        try:
            rows: list[asyncpg.Record] = []
            for statement in statements:
                rows = await conn.fetch(statement)
            return rows
        finally:
            await conn.close()

    return asyncio.run(run())


def replace(path: Path, text: str) -> None:
    """Atomically, as a secrets mount is updated: a reader sees the old file or the new one, never half of it."""
    staged = path.with_name(path.name + ".new")
    staged.write_text(text)
    os.replace(staged, path)


def role_uri(port: int, password: str) -> str:
    return f"postgresql://{ROLE}:{password}@127.0.0.1:{port}/{DATABASE}"


@contextlib.contextmanager
def table_locked(dsn: str, table: str) -> Iterator[threading.Event]:
    """Holds ``LOCK TABLE table IN EXCLUSIVE MODE`` (reads pass, COPY waits) until the yielded event is set."""
    locked, release, failure = threading.Event(), threading.Event(), []

    async def hold() -> None:
        conn = await asyncpg.connect(dsn)
        try:
            async with conn.transaction():
                await conn.execute(f"LOCK TABLE {table} IN EXCLUSIVE MODE")
                locked.set()
                while not release.is_set():
                    await asyncio.sleep(0.02)
        finally:
            await conn.close()

    def run() -> None:
        try:
            asyncio.run(hold())
        except BaseException as exc:
            failure.append(exc)
            locked.set()

    thread = threading.Thread(target=run, name="table-lock", daemon=True)
    thread.start()
    assert locked.wait(20)
    assert [] == failure
    try:
        yield release
    finally:
        release.set()
        thread.join(20)
    assert [] == failure


class HttpSenders:
    """Threads POSTing 3-record batches, each with a number never used before; remembers which were acknowledged."""

    def __init__(self, url: str, space: str, threads: int = 3) -> None:
        self.url, self.space = url, space
        self.acked: set[int] = set()
        self.in_flight = 0
        self.refused = 0
        self._next = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]
        self.failures: list[BaseException] = []

    def _number(self) -> int:
        with self._lock:
            self._next += 1
            return self._next

    def _login(self, client: httpx.Client) -> str:
        while not self._stop.is_set():
            with contextlib.suppress(httpx.TransportError):
                response = client.get("/scouter/auth/login", headers={"Username": "admin", "Password": "admin"})
                if response.status_code == 200:
                    token: str = response.json()["token"]
                    return token
            time.sleep(0.05)
        return ""

    def _run(self) -> None:
        try:
            with httpx.Client(base_url=self.url, timeout=30) as client:
                token = self._login(client)
                while not self._stop.is_set():
                    number = self._number()
                    with self._lock:
                        self.in_flight += 1
                    try:
                        response = client.post(
                            "/scouter/drift",
                            content=spc_message(self.space, number),
                            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
                        )
                    except httpx.TransportError:  # the listener is closed for the moment of the restart
                        response = None
                    finally:
                        with self._lock:
                            self.in_flight -= 1
                    if response is not None and response.status_code == 200:
                        with self._lock:
                            self.acked.add(number)
                        continue
                    with self._lock:
                        self.refused += 1
                    if response is not None and response.status_code == 401:  # the secret was rotated
                        token = self._login(client)
                    time.sleep(0.02)
        except BaseException as exc:
            self.failures.append(exc)

    def __enter__(self) -> HttpSenders:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(60)


class RabbitPublisher:
    """Publishes numbered 3-record messages in chunks from a thread until stopped; counts what it published."""

    def __init__(self, url: str, queue: str, space: str) -> None:
        self.url, self.queue, self.space = url, queue, space
        self.published = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.failures: list[BaseException] = []

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                chunk = range(self.published, self.published + 20)
                publish(self.url, self.queue, [spc_message(self.space, n) for n in chunk])
                self.published += len(chunk)
                time.sleep(0.1)
        except BaseException as exc:
            self.failures.append(exc)

    def __enter__(self) -> RabbitPublisher:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(60)


def stored_values(dsn: str, space: str) -> list[float]:
    return [r["value"] for r in run_sql(dsn, f"SELECT value FROM scouter.spc_drift WHERE space = '{space}'")]


def test_sighup_under_load_picks_up_a_rotated_password_and_refuses_an_invalid_file(rabbitmq_url: str) -> None:
    """Rotate the role's password and the JWT secret, SIGHUP with requests in flight, writes queued behind a lock
    and a RabbitMQ consumer mid-stream: nothing acknowledged is lost, the server reconnects with the new password
    only (the old pool is gone), old tokens are refused. Then an unreadable or invalid file: the reload is refused,
    naming the variable, and the same tree keeps serving."""
    http_space, rabbit_space = f"reload_http_{secrets.token_hex(3)}", f"reload_mq_{secrets.token_hex(3)}"
    queue = f"scouter_reload_{secrets.token_hex(4)}"
    with private_postgres(hba=HBA) as cluster, tempfile.TemporaryDirectory(prefix="scouter-reload-") as scratch:
        admin = cluster.dsn
        run_sql(admin, f"CREATE ROLE {ROLE} LOGIN PASSWORD 'first-password'")
        run_sql(admin, f"CREATE DATABASE {DATABASE} OWNER {ROLE}")
        database = with_database(admin, DATABASE)  # the test's own view of the server's data, as superuser
        uri_file, secret_file, env_file = (Path(scratch) / n for n in ("database-uri", "encrypt-secret", "env"))
        replace(uri_file, role_uri(cluster.port, "first-password") + "\n")
        replace(secret_file, "first-secret-" + secrets.token_hex(16) + "\n")
        env_file.write_text(
            f"DATABASE_URI_FILE={uri_file}\nSCOUTER_ENCRYPT_SECRET_FILE={secret_file}\n"
            f"RABBITMQ_ADDR={rabbitmq_url}\nRABBITMQ_QUEUE={queue}\nRABBITMQ_CONSUMER_COUNT=2\n"
        )
        env = server_env("", Path(scratch), SCOUTER_ENV_FILE=str(env_file))
        port = free_port_pair()  # outside the ephemeral range: the new pool's connections cannot take it
        env.update(SCOUTER_SERVER_PORT=str(port), SCOUTER_METRICS_PORT=str(port + 1))
        del env["DATABASE_URI"]  # it comes from DATABASE_URI_FILE, named in the env file
        env["SCOUTER_EMBEDDED_DATABASE"] = "always"  # were the files ignored, no other database would be used
        server = start_server(env)
        try:
            reload_under_load(server, cluster.port, database, uri_file, secret_file, http_space, rabbit_space,
                              rabbitmq_url, queue)  # fmt: skip
            refuse_invalid_files(server, uri_file, secret_file, http_space)
        finally:
            code = server.stop()
        assert 0 == code, server.log()[-4000:]


def reload_under_load(
    server: LiveServer,
    port: int,
    database: str,
    uri_file: Path,
    secret_file: Path,
    http_space: str,
    rabbit_space: str,
    rabbitmq_url: str,
    queue: str,
) -> None:
    pid = server.proc.pid
    old_token = httpx.get(f"{server.url}/scouter/auth/login", headers={"Username": "admin", "Password": "admin"})
    old_token.raise_for_status()
    with (
        HttpSenders(server.url, http_space) as senders,
        RabbitPublisher(rabbitmq_url, queue, rabbit_space) as publisher,
    ):
        wait_until(lambda: len(senders.acked) >= 30 and len(stored_values(database, rabbit_space)) >= 60, 60,
                   "traffic on both paths", server)  # fmt: skip
        with table_locked(database, "scouter.spc_drift") as release:
            waiting = f"SELECT count(*) FROM pg_stat_activity WHERE usename = '{ROLE}' AND wait_event_type = 'Lock'"
            wait_until(lambda: run_sql(database, waiting)[0][0] >= 1 and senders.in_flight >= 2, 30,
                       "the writer stalled with requests in flight", server)  # fmt: skip
            run_sql(database, f"ALTER ROLE {ROLE} PASSWORD 'second-password'")
            replace(uri_file, role_uri(port, "second-password") + "\n")
            replace(secret_file, "second-secret-" + secrets.token_hex(16) + "\n")
            reloaded_at = datetime.datetime.now(datetime.UTC)
            server.proc.send_signal(signal.SIGHUP)
            wait_until(lambda: "SIGHUP: restarting the tree gracefully" in server.log(), 10, "the reload", server)
            time.sleep(0.5)  # the drain has begun and waits on the lock with everything in flight
            acked_before = len(senders.acked)
            release.set()
        wait_until(lambda: server.log().count("serving API on") >= 2, 60, "the restarted tree", server)
        server.wait_ready()
        wait_until(lambda: len(senders.acked) >= acked_before + 30, 60, "HTTP writes after the reload", server)
    assert [] == senders.failures + publisher.failures
    assert pid == server.proc.pid

    # Only the new password opens a connection, and every connection of the server's role was opened after the
    # reload: the old pool is closed, the new one authenticated with the password from the rotated file.
    with pytest.raises(asyncpg.InvalidPasswordError):
        run_sql(role_uri(port, "first-password"), "SELECT 1")
    sessions = run_sql(database, f"SELECT backend_start FROM pg_stat_activity WHERE usename = '{ROLE}'")
    assert sessions
    assert all(row["backend_start"] > reloaded_at for row in sessions)
    # The rotated JWT secret is in force: a token minted before the reload is refused.
    stale = httpx.post(
        f"{server.url}/scouter/drift",
        content=spc_message(http_space, 10**7),
        headers={"Authorization": f"Bearer {old_token.json()['token']}", "Content-Type": "application/json"},
    )
    assert 401 == stale.status_code

    # Nothing acknowledged was lost, nothing stored twice: every acknowledged HTTP batch is there once; every
    # published RabbitMQ message ends up stored once.
    http_values = stored_values(database, http_space)
    assert len(http_values) == len(set(http_values))
    missing = [n for n in senders.acked if not {3.0 * n, 3.0 * n + 1, 3.0 * n + 2} <= set(http_values)]
    assert [] == missing
    wait_until(lambda: len(stored_values(database, rabbit_space)) >= 3 * publisher.published, 60,
               "every published message stored", server)  # fmt: skip
    assert sorted(float(v) for v in range(3 * publisher.published)) == sorted(stored_values(database, rabbit_space))


def refuse_invalid_files(server: LiveServer, uri_file: Path, secret_file: Path, http_space: str) -> None:
    pid = server.proc.pid
    good_uri = uri_file.read_text()
    replace(uri_file, "mysql://root:hunter2@db/x\n")
    server.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: server.log().count("reload refused") >= 1, 10, "the refusal", server)
    replace(uri_file, good_uri)
    secret_file.unlink()
    server.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: server.log().count("reload refused") >= 2, 10, "the second refusal", server)
    refusals = [line for line in server.log().splitlines() if "reload refused" in line]
    assert "DATABASE_URI_FILE" in refusals[0]
    assert "hunter2" not in server.log()
    assert "SCOUTER_ENCRYPT_SECRET_FILE" in refusals[1]
    # Still the same process and the same tree (not restarted), serving reads and writes.
    assert pid == server.proc.pid
    assert 2 == server.log().count("serving API on")
    assert 200 == httpx.get(f"{server.url}/scouter/readyz").status_code
    login = httpx.get(f"{server.url}/scouter/auth/login", headers={"Username": "admin", "Password": "admin"})
    posted = httpx.post(
        f"{server.url}/scouter/drift",
        content=spc_message(http_space, 10**6),
        headers={"Authorization": f"Bearer {login.json()['token']}", "Content-Type": "application/json"},
    )
    assert 200 == posted.status_code
