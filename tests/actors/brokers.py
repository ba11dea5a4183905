"""Helpers for the broker consumer tests: client-shaped messages, producers, and what the database holds."""

from __future__ import annotations

import contextlib
import datetime
import secrets
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Any, Protocol

import aio_pika
import orjson
import trio
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiormq.abc import ChannelFrame
from pamqp import commands as spec
from pamqp.header import ContentHeader
from prometheus_client import CollectorRegistry
from trio_asyncio import aio_as_trio

from actors.database import Database, DatabaseHandle
from actors.health import HealthBoard
from actors.metrics import ScouterMetrics
from actors.writer import WriterActor, open_inbox

BASE = datetime.datetime(2026, 11, 23, 12, 0, tzinfo=datetime.UTC)


class Actor(Protocol):
    async def run(self, stop: trio.Event, *, task_status: Any = ...) -> None: ...


class Harness:
    """A writer on one database with the board and metrics consumer actors share, as the tree wires them."""

    def __init__(self, db: Database, nursery: trio.Nursery) -> None:
        self.db = db
        self.handle = DatabaseHandle(db)
        self.nursery = nursery
        self.metrics = ScouterMetrics.create(CollectorRegistry(), process=False)
        self.board = HealthBoard()
        send, recv = open_inbox(100)
        self.inbox = send
        self.writer = WriterActor(recv, send, self.handle, self.metrics)
        self.writer_stop = trio.Event()

    @classmethod
    @contextlib.asynccontextmanager
    async def open(cls, db: Database, *, writer: bool = True) -> AsyncIterator[Harness]:
        """With ``writer=False`` the writer starts only at `start_writer` (write requests wait in its inbox)."""
        async with trio.open_nursery() as nursery:
            harness = cls(db, nursery)
            if writer:
                await harness.start_writer()
            try:
                yield harness
            finally:
                harness.writer_stop.set()

    async def start_writer(self) -> None:
        await self.nursery.start(self.writer.run, self.writer_stop)

    async def wait_for_write_request(self) -> None:
        with trio.fail_after(60):
            while self.writer.inbox.statistics().current_buffer_used == 0:
                await trio.sleep(0.02)

    @contextlib.asynccontextmanager
    async def running(self, actor: Actor) -> AsyncIterator[trio.Event]:
        """Run ``actor`` inside the block; stop it gracefully (and wait for it) when the block ends."""
        stop = trio.Event()
        done = trio.Event()

        async def run() -> None:
            try:
                await actor.run(stop)
            finally:
                done.set()

        self.nursery.start_soon(run)
        try:
            yield stop
        finally:
            stop.set()
            with trio.fail_after(30):
                await done.wait()

    def counter(self, name: str, **labels: str) -> float:
        return self.metrics.registry.get_sample_value(name, labels) or 0.0


def unique(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(4)}"


def spc_message(space: str, number: int, records: int = 3) -> bytes:
    """A message as the 0.6.4 client sends it (struct key order, ns timestamps): record values are unique per
    (number, index), so duplicates and gaps show in the stored values."""
    moment = BASE + datetime.timedelta(milliseconds=number)
    stamp = moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + f"{number % 1000:03d}Z"
    return orjson.dumps(
        {
            "records": [
                {
                    "Spc": {
                        "created_at": stamp,
                        "space": space,
                        "name": "model",
                        "version": "1.0.0",
                        "feature": f"feature_{i}",
                        "value": float(number * records + i),
                    }
                }
                for i in range(records)
            ]
        }
    )


def observability_message(space: str, requests: int = 3) -> bytes:
    """An observability report as the 0.6.4 client sends it: no timestamp, so two intervals of the same route with
    equal counts are byte-identical messages."""
    route = {
        "route_name": "/predict",
        "metrics": {"p5": 1.0, "p25": 2.0, "p50": 3.0, "p95": 9.0, "p99": 10.0},
        "request_count": requests,
        "error_count": 0,
        "error_latency": 0.0,
        "status_codes": {"200": requests},
    }
    record = {"space": space, "name": "model", "version": "1.0.0", "request_count": requests, "error_count": 0}
    return orjson.dumps({"records": [{"Observability": {**record, "route_metrics": [route]}}]})


async def observability_rows(db: Database, space: str) -> int:
    return int(await db.fetchval("SELECT count(*) FROM scouter.observability_metric WHERE space = $1", space))


def expected_values(numbers: Iterable[int], records: int = 3) -> list[float]:
    return sorted(float(n * records + i) for n in numbers for i in range(records))


async def stored_values(db: Database, space: str) -> list[float]:
    rows = await db.fetch("SELECT value FROM scouter.spc_drift WHERE space = $1 ORDER BY value", space)
    return [r["value"] for r in rows]


async def wait_for_rows(db: Database, space: str, count: int, *, within: float = 60) -> None:
    """Poll until ``count`` SPC rows of ``space`` are stored (TooSlowError after ``within`` seconds)."""
    with trio.fail_after(within):
        while int(await db.fetchval("SELECT count(*) FROM scouter.spc_drift WHERE space = $1", space)) < count:
            await trio.sleep(0.1)


async def quarantined(db: Database) -> list[Any]:
    return await db.fetch("SELECT source, reason, raw FROM scouter.quarantine ORDER BY id")


# --- Kafka ---------------------------------------------------------------------------------------------------


async def _create_topic(brokers: str, topic: str, partitions: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=brokers)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, partitions, 1)])
    finally:
        await admin.close()


async def create_topic(brokers: str, topic: str, partitions: int = 2) -> None:
    await aio_as_trio(_create_topic)(brokers, topic, partitions)


async def _produce(
    brokers: str, topic: str, payloads: Sequence[bytes], partition: int | None, max_request_size: int
) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=brokers, compression_type="gzip", linger_ms=5, max_request_size=max_request_size
    )
    await producer.start()
    try:
        for payload in payloads:
            await producer.send(topic, payload, partition=partition)
        await producer.flush()
    finally:
        await producer.stop()


async def produce(
    brokers: str,
    topic: str,
    payloads: Sequence[bytes],
    partition: int | None = None,
    *,
    max_request_size: int = 2097164,  # the client's message.max.bytes
) -> None:
    """Send like the client does (gzip, no key, no headers); spread over partitions unless one is given."""
    await aio_as_trio(_produce)(brokers, topic, payloads, partition, max_request_size)


# --- RabbitMQ ------------------------------------------------------------------------------------------------


async def publish_as_the_client(
    channel: aio_pika.abc.AbstractChannel, queue: str, payload: bytes, message_id: str | None = None
) -> None:
    """One ``basic.publish`` as the 0.6.4 client (lapin) sends it: default exchange, routing key = queue, and no
    properties at all unless `message_id` is given. (aio-pika's own publish always adds a random message id, which
    would make every test message look like one from a producer that sets ids.) `channel` must not use publisher
    confirms."""
    underlay = await channel.get_underlay_channel()
    frames = [
        spec.Basic.Publish(exchange="", routing_key=queue),
        ContentHeader(properties=spec.Basic.Properties(message_id=message_id), body_size=len(payload)),
        *underlay._split_body(payload),  # frames of at most the negotiated size
    ]
    drained = underlay.create_future()
    async with underlay.lock:
        await underlay.write_queue.put(
            ChannelFrame.marshall(frames=frames, channel_number=underlay.number, drain_future=drained)
        )
    await drained


async def _publish(url: str, queue: str, payloads: Sequence[bytes], message_id: str | None = None) -> None:
    connection = await aio_pika.connect(url)
    try:
        channel = await connection.channel(publisher_confirms=False)
        await channel.declare_queue(queue, durable=False, exclusive=False, auto_delete=False)  # as the client
        for payload in payloads:
            await publish_as_the_client(channel, queue, payload, message_id)
    finally:
        await connection.close()


async def publish(url: str, queue: str, payloads: Sequence[bytes], message_id: str | None = None) -> None:
    """Publish like the client does: default exchange, routing key = queue, default (transient) properties; with
    `message_id`, every message carries that id (a producer that sets ids)."""
    await aio_as_trio(_publish)(url, queue, payloads, message_id)
