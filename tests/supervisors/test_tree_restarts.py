"""Crash every child of a running tree in turn, under load, and check the server is fully healthy after each.

The real server runs (`tests.supervisors.server_script killable`: the `scouter serve` path plus a route that calls
`Monitor.kill`) with real PostgreSQL, Kafka and RabbitMQ configured. While HTTP senders keep posting records and
bursts of messages go to both brokers, each child is killed in turn — cancelled wherever it is, as a crash — from the
leaves of the sub-trees to the top of the tree. After each kill: the supervisor restarted it (the restart metric
counts it), readiness and liveness answer 200, and a probe record sent after the restart through each transport
(HTTP, Kafka, RabbitMQ) is stored. At the end every record the server acknowledged is stored (HTTP: each 2xx;
brokers: each message the broker confirmed, stored exactly once), and no HTTP request was left without an answer
(a request queued in the writer's inbox while the writer was down is answered by the restarted writer).
"""

from __future__ import annotations

import collections
import datetime
import secrets
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from tests.e2e.brokers import create_topic, produce, publish, query, server_env, wait_until
from tests.supervisors.test_cli import Server

pytestmark = [pytest.mark.postgres, pytest.mark.rabbitmq, pytest.mark.kafka, pytest.mark.slow]

#: Every child of the tree as configured here, leaves of the sub-trees before their supervisor.
CHILDREN = (
    "scouter/consumers/kafka-0",
    "scouter/consumers/rabbitmq-0",
    "scouter/consumers",
    "scouter/drift/poller-0",
    "scouter/drift/due-gauge",
    "scouter/drift",
    "scouter/dispatcher",
    "scouter/archiver",
    "scouter/maintenance",
    "scouter/writer",
    "scouter/ports",
    "scouter/database",
    "scouter/http",
)
HTTP, KAFKA, RABBIT, PROBE = 1_000_000, 2_000_000, 3_000_000, 4_000_000  # value ranges, one per source
BURST = 20  # broker messages published just before each kill, so that the kill meets batches in flight


def message(space: str, value: int) -> bytes:
    """One SPC record as the 0.6.4 client sends it (also the HTTP body), created now, carrying ``value``."""
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "123Z"
    record = {"created_at": stamp, "space": space, "name": "model", "version": "1.0.0", "feature": "f",
              "value": float(value)}  # fmt: skip
    return orjson.dumps({"records": [{"Spc": record}]})


class Sender:
    """Posts records over HTTP from a few threads (one request at a time each, so that several can be queued at the
    writer when it dies) until stopped; remembers what was acknowledged and what was not."""

    def __init__(self, url: str, space: str, threads: int = 3) -> None:
        self.url, self.space = url, space
        self.acked: list[int] = []
        self.refused: list[tuple[int, str]] = []
        self.hung: list[int] = []
        self.token = ""
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, args=(HTTP + 100_000 * i,), name=f"http-sender-{i}", daemon=True)
            for i in range(threads)
        ]

    def _run(self, base: int) -> None:
        with httpx.Client(base_url=self.url, timeout=httpx.Timeout(5, read=45)) as client:
            n = 0
            while not self._stop.is_set():
                n += 1
                value = base + n
                try:
                    response = client.post("/scouter/drift", content=message(self.space, value),
                                           headers={"Authorization": f"Bearer {self.token}",
                                                    "Content-Type": "application/json"})  # fmt: skip
                except httpx.ReadTimeout:
                    self.hung.append(value)
                    continue
                except httpx.TransportError as exc:  # http itself restarting: not acknowledged, fine
                    self.refused.append((value, repr(exc)))
                    time.sleep(0.05)
                    continue
                if response.status_code == 200:
                    self.acked.append(value)
                else:
                    self.refused.append((value, f"{response.status_code} {response.text[:200]}"))
                time.sleep(0.02)

    @property
    def count(self) -> int:
        return len(self.acked)

    def __enter__(self) -> Sender:
        response = httpx.get(f"{self.url}/scouter/auth/login", headers={"Username": "admin", "Password": "admin"})
        response.raise_for_status()
        self.token = response.json()["token"]
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(60)


class Tree:
    """The killable server and what the test needs of it."""

    def __init__(self, server: Server, url: str, metrics_url: str) -> None:
        self.server, self.url, self.metrics_url = server, url, metrics_url

    def get(self, path: str) -> httpx.Response | None:
        try:
            return httpx.get(f"{self.url}{path}", timeout=5)
        except httpx.TransportError:
            return None

    def healthy(self) -> bool:
        assert self.server.proc.poll() is None, f"the server exited; log:\n{self.server.log()[-6000:]}"
        ready, alive = self.get("/scouter/readyz"), self.get("/scouter/healthcheck")
        return ready is not None and ready.status_code == 200 and alive is not None and alive.status_code == 200

    def kill(self, child: str) -> None:
        try:
            response = httpx.post(f"{self.url}/test/kill", params={"child": child}, timeout=10)
            assert 200 == response.status_code, response.text
        except httpx.TransportError:
            assert child == "scouter/http" or "/" not in child.removeprefix("scouter/")  # rest_for_one takes http
        self.server.wait_for_log(f"{child} crashed: ChildKilled", timeout=20)

    def restarts(self, child: str) -> float:
        text = httpx.get(self.metrics_url, timeout=5).text
        for line in text.splitlines():
            if line.startswith("scouter_supervisor_restarts_total{") and f'child="{child}"' in line:
                return float(line.rsplit(" ", 1)[1])
        return 0.0


@pytest.fixture
def tree(fresh_database_dsn: str, kafka_brokers: str, rabbitmq_url: str) -> Iterator[tuple[Tree, dict[str, str]]]:
    names = {"topic": f"restarts_{secrets.token_hex(4)}", "queue": f"restarts_{secrets.token_hex(4)}",
             "group": f"restarts_{secrets.token_hex(4)}", "space": f"restarts_{secrets.token_hex(4)}"}  # fmt: skip
    create_topic(kafka_brokers, names["topic"], 2)
    with tempfile.TemporaryDirectory(prefix="scouter-restarts-") as scratch:
        env = server_env(
            fresh_database_dsn, Path(scratch),
            KAFKA_BROKERS=kafka_brokers, KAFKA_TOPIC=names["topic"], KAFKA_GROUP=names["group"],
            KAFKA_WORKER_COUNT="1", KAFKA_OFFSET_RESET="earliest",
            KAFKA_SESSION_TIMEOUT_MS="3000", KAFKA_HEARTBEAT_INTERVAL_MS="500",  # tansu: a join waits half of it
            RABBITMQ_ADDR=rabbitmq_url, RABBITMQ_QUEUE=names["queue"], RABBITMQ_CONSUMER_COUNT="1",
            POLLING_WORKER_COUNT="1",
        )  # fmt: skip
        port = int(env["SCOUTER_SERVER_PORT"])
        server = Server([sys.executable, "-m", "tests.supervisors.server_script", "killable"], env)
        running = Tree(server, f"http://127.0.0.1:{port}", f"http://127.0.0.1:{port + 1}/metrics")
        try:
            wait_until(running.healthy, 90, "the tree to be ready")
            yield running, names
            server.proc.terminate()
            assert 0 == server.wait(90), server.log()[-6000:]
        finally:
            server.kill()


def stored(dsn: str, space: str) -> list[int]:
    return [int(r["value"]) for r in query(dsn, "SELECT value FROM scouter.spc_drift WHERE space = $1", space)]


def test_every_child_crashed_in_turn_leaves_a_healthy_server_and_loses_nothing(
    tree: tuple[Tree, dict[str, str]], fresh_database_dsn: str, kafka_brokers: str, rabbitmq_url: str
) -> None:
    """Each child killed in turn (leaves first, the database last but one, http last): restarted, ready and live
    again, a probe through each transport stored afterwards; every acknowledged record stored (brokers: exactly
    once) and no HTTP request left hanging."""
    server, names = tree
    space, dsn = names["space"], fresh_database_dsn
    kafka_sent: list[int] = []
    rabbit_sent: list[int] = []
    with Sender(server.url, space) as sender:
        for round_, child in enumerate(CHILDREN):
            burst = range(len(kafka_sent), len(kafka_sent) + BURST)
            produce(kafka_brokers, names["topic"], [message(space, KAFKA + n) for n in burst])
            kafka_sent += [KAFKA + n for n in burst]
            publish(rabbitmq_url, names["queue"], [message(space, RABBIT + n) for n in burst])
            rabbit_sent += [RABBIT + n for n in burst]
            before = server.restarts(child)
            server.kill(child)
            wait_until(server.healthy, 60, f"readiness and liveness 200 after killing {child}", server.server)
            assert before + 1 == server.restarts(child), child
            acked = sender.count
            wait_until(lambda acked=acked: sender.count > acked, 30, f"an HTTP write acknowledged after {child}",
                       server.server)  # fmt: skip
            probes = [PROBE + 10 * round_ + i for i in range(3)]
            response = httpx.post(f"{server.url}/scouter/drift", content=message(space, probes[0]), timeout=30,
                                  headers={"Authorization": f"Bearer {sender.token}",
                                           "Content-Type": "application/json"})  # fmt: skip
            assert 200 == response.status_code, response.text
            produce(kafka_brokers, names["topic"], [message(space, probes[1])])
            publish(rabbitmq_url, names["queue"], [message(space, probes[2])])
            wait_until(lambda probes=probes: set(probes) <= set(stored(dsn, space)), 60,
                       f"probes through every transport stored after killing {child}", server.server)  # fmt: skip
    values = stored(dsn, space)
    assert [] == sender.hung
    # refused while a child restarts: no connection (http restarting) or 503 (database restarting), never a 500
    assert [] == [why for _, why in sender.refused if why[:1].isdigit() and not why.startswith("503")]
    assert set(sender.acked) <= set(values), sorted(set(sender.acked) - set(values))[:20]
    wait_until(lambda: set(kafka_sent + rabbit_sent) <= set(stored(dsn, space)), 60, "every broker message stored",
               server.server)  # fmt: skip
    values = stored(dsn, space)
    brokered = sorted(v for v in values if KAFKA <= v < PROBE)
    assert sorted(kafka_sent + rabbit_sent) == brokered  # exactly once
    assert [] == [r["reason"] for r in query(dsn, "SELECT reason FROM scouter.quarantine")]  # none blamed on a crash
    assert len(sender.acked) > 5 * len(CHILDREN)
    refusals = collections.Counter(why.split("(")[0][:60] for _, why in sender.refused)
    print(f"HTTP: {len(sender.acked)} acknowledged (all stored), {len(sender.refused)} refused while restarting "
          f"{dict(refusals)}; brokers: {len(kafka_sent)} Kafka and {len(rabbit_sent)} RabbitMQ messages stored "
          "exactly once")  # fmt: skip
