"""Exactly once through a crash: the server is killed with SIGKILL while it consumes a stream, then restarted.

A producer thread feeds client-shaped messages (3 SPC records each, unique values) at a steady pace. Once part of
them is stored the server gets SIGKILL, wherever it is. The server runs as `tests.e2e.slow_ack_server`, which
waits 0.1 s before each Kafka commit and RabbitMQ ack, so the kill most often lands between a COMMIT and the
broker hearing about it: the case that stores rows twice unless the stored positions and digests are honoured.
A new server process takes over the same database and the same group / queue; every record must end up stored
exactly once.
"""

from __future__ import annotations

import contextlib
import secrets
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.actors.brokers import observability_message, spc_message
from tests.e2e.brokers import create_topic, produce, publish, query, server_env, start_server, wait_until
from tests.e2e.conftest import LiveServer
from tests.services import free_port_pair

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.slow]

MESSAGES = 3000
CHUNK = 100


def _kill(server: LiveServer) -> None:
    server.proc.kill()
    server.proc.wait(10)
    server._reader.join(5)
    if server.proc.stderr is not None:
        server.proc.stderr.close()


@contextlib.contextmanager
def feeding(send: Callable[[list[bytes]], None], space: str) -> Iterator[threading.Thread]:
    """Send MESSAGES messages in chunks from a thread, about 600 messages a second."""
    failure: list[BaseException] = []

    def run() -> None:
        try:
            for start in range(0, MESSAGES, CHUNK):
                send([spc_message(space, n) for n in range(start, start + CHUNK)])
                time.sleep(0.15)
        except BaseException as exc:
            failure.append(exc)

    thread = threading.Thread(target=run, name="feeder", daemon=True)
    thread.start()
    try:
        yield thread
    finally:
        thread.join(120)
    assert [] == failure


@pytest.mark.parametrize("transport", ["kafka", "rabbitmq"])
def test_kill_9_mid_stream_then_restart_stores_every_record_once(
    transport: str, request: pytest.FixtureRequest, fresh_database_dsn: str
) -> None:
    """SIGKILL after about a fifth of the stream, restart: all 9000 records stored, none twice."""
    dsn = fresh_database_dsn
    space = f"crash_{transport}_{secrets.token_hex(3)}"
    name = f"scouter_crash_{secrets.token_hex(4)}"
    send: Callable[[list[bytes]], None]
    if transport == "kafka":
        brokers = request.getfixturevalue("kafka_brokers")
        create_topic(brokers, name, 3)
        extra = {"KAFKA_BROKERS": brokers, "KAFKA_TOPIC": name, "KAFKA_GROUP": name, "KAFKA_WORKER_COUNT": "2"}
        extra["KAFKA_MAX_BATCH"] = "50"  # many small transactions: many places for the kill to land

        def send(payloads: list[bytes]) -> None:
            produce(brokers, name, payloads)

    else:
        url = request.getfixturevalue("rabbitmq_url")
        extra = {"RABBITMQ_ADDR": url, "RABBITMQ_QUEUE": name, "RABBITMQ_CONSUMER_COUNT": "2"}
        extra["RABBITMQ_PREFETCH_COUNT"] = "50"

        def send(payloads: list[bytes]) -> None:
            publish(url, name, payloads)

    def stored() -> int:
        return int(query(dsn, "SELECT count(*) FROM scouter.spc_drift WHERE space = $1", space)[0][0])

    with tempfile.TemporaryDirectory(prefix="scouter-crash-") as scratch:
        env = server_env(dsn, Path(scratch), **extra)
        first = start_server(env, "tests.e2e.slow_ack_server")
        try:
            with feeding(send, space):
                wait_until(lambda: stored() >= MESSAGES * 3 // 5, 120, "a fifth of the stream", first)
                _kill(first)
                at_kill = stored()
                second = start_server(env, "tests.e2e.slow_ack_server")
            try:
                wait_until(lambda: stored() >= MESSAGES * 3, 120, "the whole stream", second)
                time.sleep(1)  # anything stored twice would show by now
            finally:
                code = second.stop()
            assert 0 == code, second.log()[-4000:]
        finally:
            if first.proc.poll() is None:
                _kill(first)

    assert at_kill < MESSAGES * 3  # the kill landed mid-stream
    values = [r["value"] for r in query(dsn, "SELECT value FROM scouter.spc_drift WHERE space = $1", space)]
    assert MESSAGES * 3 == len(values)
    assert sorted(float(v) for v in range(MESSAGES * 3)) == sorted(values)


def _metric(server: LiveServer, name: str) -> float:
    """A counter's value from the server's /metrics (0 when not exported yet)."""
    for line in httpx.get(f"{server.url}/metrics", timeout=10).text.splitlines():
        if line.startswith(name + "{") and 'transport="rabbitmq"' in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_kill_9_between_store_and_ack_stores_identical_reports_once(fresh_database_dsn: str, rabbitmq_url: str) -> None:
    """Two byte-identical observability reports (one route, equal counts) are stored, then the server is killed
    with SIGKILL while their ack is held back: the broker redelivers them, flagged, to the next server, which
    recognises them and stores nothing again. Two more identical reports sent to it are first deliveries: stored."""
    dsn = fresh_database_dsn
    space = f"crash_identical_{secrets.token_hex(3)}"
    queue = f"scouter_crash_{secrets.token_hex(4)}"
    report = observability_message(space)

    def stored() -> int:
        return int(query(dsn, "SELECT count(*) FROM scouter.observability_metric WHERE space = $1", space)[0][0])

    with tempfile.TemporaryDirectory(prefix="scouter-crash-") as scratch:
        extra = {"RABBITMQ_ADDR": rabbitmq_url, "RABBITMQ_QUEUE": queue, "RABBITMQ_CONSUMER_COUNT": "1"}
        env = server_env(dsn, Path(scratch), **extra, SCOUTER_TEST_ACK_DELAY="5")
        publish(rabbitmq_url, queue, [report, report])
        first = start_server(env, "tests.e2e.slow_ack_server")
        try:
            wait_until(lambda: stored() == 2, 60, "both reports", first)
            _kill(first)  # the last batch's ack waits 5 s: the kill lands between its COMMIT and its ack
        finally:
            if first.proc.poll() is None:
                _kill(first)
        second = start_server({**env, "SCOUTER_SERVER_PORT": str(free_port_pair())})  # the old port may be taken
        try:
            wait_until(lambda: _metric(second, "scouter_broker_messages_duplicate_total") >= 1, 60, "the redelivery")
            assert 2 == stored()
            publish(rabbitmq_url, queue, [report, report])
            wait_until(lambda: stored() == 4, 60, "two more reports", second)
            time.sleep(1)
        finally:
            code = second.stop()
        assert 0 == code, second.log()[-4000:]
    assert 4 == stored()
