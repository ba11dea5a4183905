"""The real server with its broker consumers on, and plain-asyncio helpers to feed brokers and read the database.

These tests drive processes (the server, the client), so they are synchronous: each asyncio helper runs to
completion with ``asyncio.run``.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import aio_pika
import asyncpg
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from tests.actors.brokers import publish_as_the_client
from tests.e2e.conftest import ROOT, LiveServer, server_environment
from tests.services import free_port_pair


def server_env(dsn: str, scratch: Path, **extra: str) -> dict[str, str]:
    """A broker test server's environment: no drift pollers, Kafka group joins as quick as tansu allows; ``extra``
    overrides any of these."""
    # tansu makes every group join wait half the session timeout (dependencies.md §3.2), and a consumer killed with
    # SIGKILL holds its partitions until its session expires: 3 s (as the tree-restarts test has long used under load)
    # rather than 6 s. Heartbeats every 0.5 s leave six missed beats before a live member is dropped.
    defaults = {"POLLING_WORKER_COUNT": "0", "KAFKA_SESSION_TIMEOUT_MS": "3000", "KAFKA_HEARTBEAT_INTERVAL_MS": "500"}
    return server_environment(dsn, free_port_pair(), scratch, **(defaults | extra))


def broker_settings(request: pytest.FixtureRequest, transport: str, name: str) -> tuple[dict[str, str], dict[str, str]]:
    """The server's settings and the client's environment for a queue over `transport` ("kafka": a new topic of two
    partitions, else RabbitMQ) named `name`."""
    if transport == "kafka":
        brokers = request.getfixturevalue("kafka_brokers")
        create_topic(brokers, name, 2)
        server = {"KAFKA_BROKERS": brokers, "KAFKA_TOPIC": name, "KAFKA_GROUP": name, "KAFKA_WORKER_COUNT": "1"}
        return server, {"KAFKA_BROKERS": brokers, "KAFKA_TOPIC": name}
    url = request.getfixturevalue("rabbitmq_url")
    server = {"RABBITMQ_ADDR": url, "RABBITMQ_QUEUE": name, "RABBITMQ_CONSUMER_COUNT": "2"}
    return server, {"RABBITMQ_ADDR": url, "RABBITMQ_QUEUE": name}


class ScriptServer(LiveServer):
    """A LiveServer running ``python -m <module>`` instead of `scouter serve` (a test variant of the server)."""

    def __init__(self, env: dict[str, str], url: str, module: str) -> None:
        self.url = url
        self.proc = subprocess.Popen(
            [sys.executable, "-m", module],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()


def start_server(env: dict[str, str], module: str | None = None) -> LiveServer:
    """`scouter serve` (or ``python -m module``) with ``env``, once it reports ready."""
    url = f"http://127.0.0.1:{env['SCOUTER_SERVER_PORT']}"
    server = LiveServer(env, url) if module is None else ScriptServer(env, url, module)
    try:
        server.wait_ready()
    except BaseException:
        server.proc.kill()
        server.proc.wait()
        raise
    return server


@contextlib.contextmanager
def running_server(dsn: str, **extra: str) -> Iterator[LiveServer]:
    """`scouter serve` with ``extra`` settings, stopped with SIGTERM afterwards (exit status 0 required)."""
    with tempfile.TemporaryDirectory(prefix="scouter-e2e-") as scratch:
        server = start_server(server_env(dsn, Path(scratch), **extra))
        try:
            yield server
        finally:
            code = server.stop()
        assert 0 == code, f"server exit status {code}; log:\n{server.log()[-4000:]}"


def query(dsn: str, sql: str, *args: object) -> list[asyncpg.Record]:
    async def run() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(dsn)
        try:
            return await conn.fetch(sql, *args)
        finally:
            await conn.close()

    return asyncio.run(run())


def wait_until(check, within: float, what: str, log: LiveServer | None = None) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            tail = f"\nserver log:\n{log.log()[-4000:]}" if log is not None else ""
            raise AssertionError(f"timed out after {within} s waiting for {what}{tail}")
        time.sleep(0.1)


def create_topic(brokers: str, topic: str, partitions: int) -> None:
    async def run() -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=brokers)
        await admin.start()
        try:
            await admin.create_topics([NewTopic(topic, partitions, 1)])
        finally:
            await admin.close()

    asyncio.run(run())


def produce(brokers: str, topic: str, payloads: Sequence[bytes]) -> None:
    async def run() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=brokers, compression_type="gzip", linger_ms=5)
        await producer.start()
        try:
            for payload in payloads:
                await producer.send(topic, payload)
            await producer.flush()
        finally:
            await producer.stop()

    asyncio.run(run())


def publish(url: str, queue: str, payloads: Sequence[bytes]) -> None:
    async def run() -> None:
        connection = await aio_pika.connect(url)
        try:
            channel = await connection.channel(publisher_confirms=False)
            await channel.declare_queue(queue, durable=False, exclusive=False, auto_delete=False)
            for payload in payloads:
                await publish_as_the_client(channel, queue, payload)
        finally:
            await connection.close()

    asyncio.run(run())
