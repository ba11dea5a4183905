"""Broker consumers end to end, against the bare client library on the same backlog, raw COPY, and peak RSS.

    python -m tests.bench.bench_queues [messages] [--only kafka|rabbitmq] [--consumers N] [--prefetch N]

For each transport, in one run, on backlogs of client-shaped messages (3 SPC records each; gzip for Kafka):

* **ours**: the consumer actors of the tree (N consumers, the writer, the pool) draining the backlog into a fresh
  database, records/s from the first stored batch to the last (group joins and connects excluded), the startup heap
  frozen as `scouter serve` freezes it;
* **bare**: the same library consuming the same backlog with N consumers, acknowledging / committing per batch,
  decoding and storing nothing, timed the same way; once under trio-asyncio (the loop the server runs on) and once
  under plain asyncio. ratio = ours / bare (target >= 0.7);
* **raw COPY**: the same rows COPYed by plain asyncpg, one transaction per 1,000 messages, for reference, and
  **decode only**: `decode_server_records` over the same messages (the floor of what any pipeline adds);
* **RSS**: the real server (`scouter serve`) draining backlogs 10x and 40x its writer inbox (1,000 requests), its
  peak resident memory sampled every 20 ms: bounded, and flat in the backlog's size (40x / 10x <= 1.25).

ours must store every record of the backlog exactly once (counted afterwards). Targets missed: exit 1.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import logging
import os
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import aio_pika
import asyncpg
import orjson
import psutil
import trio
import trio_asyncio
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from prometheus_client import CollectorRegistry

from actors.database import DatabaseHandle, close_pool, migrate, open_pool
from actors.health import HealthBoard
from actors.kafka import KafkaConsumerActor
from actors.maintenance import MaintenanceActor
from actors.metrics import ScouterMetrics
from actors.rabbitmq import RabbitConsumerActor
from actors.writer import WriterActor, open_inbox
from config import DatabaseSettings, KafkaSettings, RabbitSettings
from scouter.records import SPC_COLUMNS, decode_server_records
from supervisors.main import freeze_startup_heap
from tests.bench.common import SMOKE, Verdicts, bench_postgres, check, sizes
from tests.services import ensure_kafka, ensure_rabbitmq, scratch_database

ROOT = Path(__file__).resolve().parents[2]
RECORDS = 3
WRITER_INBOX = 1000
RSS_UNIT = sizes(WRITER_INBOX, 30)  # the RSS backlogs are 10x and 40x this (the writer's inbox in a full run)


def payloads(count: int, space: str) -> list[bytes]:
    """Messages as the 0.6.4 client sends them: struct key order, nanosecond timestamps, one profile each."""
    now = datetime.datetime.now(datetime.UTC)
    out = []
    for n in range(count):
        stamp = (now + datetime.timedelta(microseconds=n)).strftime("%Y-%m-%dT%H:%M:%S.%f") + "123Z"
        records = [
            {
                "Spc": {
                    "created_at": stamp,
                    "space": space,
                    "name": "model",
                    "version": "1.0.0",
                    "feature": f"feature_{i}",
                    "value": n * 0.001 + i,
                }
            }
            for i in range(RECORDS)
        ]
        out.append(orjson.dumps({"records": records}))
    return out


class Clock:
    """Messages per second from `start` (consumers connected; for Kafka: every member of the group holding its share
    of the partitions, so that tansu's slow group join, and the rebalance when the first member to join held every
    partition until the others arrived, are left out) to the last batch settled (acknowledged, or committed to
    PostgreSQL). Messages settled before the start are left out too."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.done = 0
        self.start_at: float | None = None
        self.done_at_start = 0
        self.last_at = 0.0
        self.provisional: tuple[float, int] | None = None  # (when, done) if the start never comes: see `rate`

    def start(self, *, provisional: bool = False) -> None:
        if self.start_at is not None:
            return
        if provisional:
            if self.provisional is None:
                self.provisional = (time.perf_counter(), self.done)
            return
        self.start_at = time.perf_counter()
        self.done_at_start = self.done

    def settled(self, count: int) -> None:
        self.done += count
        self.last_at = time.perf_counter()

    @property
    def finished(self) -> bool:
        return self.done >= self.total

    def rate(self) -> float:
        if self.start_at is None:  # a backlog drained before the group settled (smoke sizes): from the first hold
            assert self.provisional is not None
            self.start_at, self.done_at_start = self.provisional
        return (self.done - self.done_at_start) / max(self.last_at - self.start_at, 1e-9)


class _Assignments:
    """Starts a clock once every member of the group holds its share of the partitions (each member's latest
    assignment, all members reported, adding up to every partition); provisionally as soon as the partitions are
    all held, whoever holds them."""

    def __init__(self, clock: Clock, partitions: int, members: int) -> None:
        self.clock = clock
        self.partitions = partitions
        self.members = members
        self.held: dict[str, int] = {}

    def assigned(self, member: str, count: int) -> None:
        self.held[member] = count
        held = sum(self.held.values())
        if len(self.held) == self.members and held == self.partitions:
            self.clock.start()
        elif held >= self.partitions:
            self.clock.start(provisional=True)


class _AssignmentLog(logging.Handler):
    """Feeds the consumer actors' "kafka-N: assigned t/0, t/1" and "kafka-N: revoked t/0" log lines to
    `_Assignments`: a member whose partitions were revoked holds none until it is assigned again (without the
    revocations, a rebalance's first "assigned" line could complete the count with other members' stale shares, and
    start the clock before the rebalance had ended)."""

    def __init__(self, assignments: _Assignments) -> None:
        super().__init__(logging.INFO)
        self.assignments = assignments

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        member, _, rest = message.partition(": assigned ")
        if rest:
            self.assignments.assigned(member, len(rest.split(", ")))
        elif ": revoked " in message:
            self.assignments.assigned(message.partition(": revoked ")[0], 0)


# --- brokers ---------------------------------------------------------------------------------------------------


async def kafka_backlog(brokers: str, topic: str, partitions: int, messages: Sequence[bytes]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=brokers)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, partitions, 1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=brokers, compression_type="gzip", linger_ms=20, max_batch_size=65536)
    await producer.start()
    try:
        for message in messages:
            await producer.send(topic, message)
        await producer.flush()
    finally:
        await producer.stop()


async def rabbit_backlog(url: str, queue: str, messages: Sequence[bytes]) -> None:
    connection = await aio_pika.connect(url)
    try:
        channel = await connection.channel(publisher_confirms=True)
        await channel.declare_queue(queue, durable=False, exclusive=False, auto_delete=False)
        for start in range(0, len(messages), 500):
            await asyncio.gather(
                *(
                    channel.default_exchange.publish(aio_pika.Message(m), routing_key=queue)
                    for m in messages[start : start + 500]
                )
            )
    finally:
        await connection.close()


async def delete_queues(url: str, queues: Sequence[str]) -> None:
    connection = await aio_pika.connect(url)
    try:
        channel = await connection.channel()
        for queue in queues:
            await channel.queue_delete(queue)
    finally:
        await connection.close()


# --- the bare library (asyncio side): consume, ack/commit per batch, nothing else ----------------------------------


async def bare_kafka(brokers: str, topic: str, total: int, consumers: int) -> float:
    group = f"bare_{secrets.token_hex(4)}"
    clock = Clock(total)
    assignments = _Assignments(clock, consumers, consumers)
    members = [
        AIOKafkaConsumer(
            bootstrap_servers=brokers,
            group_id=group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=6000,
            heartbeat_interval_ms=500,
            max_poll_records=1000,
        )
        for _ in range(consumers)
    ]

    class Listener(ConsumerRebalanceListener):  # type: ignore[misc]
        def __init__(self, member: str) -> None:
            self.member = member

        async def on_partitions_revoked(self, revoked: Any) -> None:
            assignments.assigned(self.member, 0)

        async def on_partitions_assigned(self, assigned: Any) -> None:
            assignments.assigned(self.member, len(assigned))

    for index, member in enumerate(members):
        member.subscribe([topic], listener=Listener(str(index)))

    async def run(member: AIOKafkaConsumer) -> None:
        while not clock.finished:
            batch = await member.getmany(timeout_ms=200, max_records=1000)
            if batch:
                await member.commit({tp: records[-1].offset + 1 for tp, records in batch.items()})
                clock.settled(sum(len(records) for records in batch.values()))

    await asyncio.gather(*(m.start() for m in members))
    try:
        await asyncio.gather(*(run(m) for m in members))
    finally:
        await asyncio.gather(*(m.stop() for m in members))
    return clock.rate()


async def bare_rabbit(url: str, queue: str, total: int, consumers: int, prefetch: int) -> float:
    clock = Clock(total)
    clock.start()

    async def run(index: int) -> None:
        connection = await aio_pika.connect(url)
        try:
            channel = await connection.channel()
            await channel.set_qos(prefetch_count=prefetch)
            declared = await channel.declare_queue(queue, durable=False, exclusive=False, auto_delete=False)
            buffer: list[aio_pika.abc.AbstractIncomingMessage] = []
            arrived = asyncio.Event()

            async def deliver(message: aio_pika.abc.AbstractIncomingMessage) -> None:
                buffer.append(message)
                arrived.set()

            await declared.consume(deliver, consumer_tag=f"bare-{index}")
            while not clock.finished:
                try:
                    await asyncio.wait_for(arrived.wait(), 0.2)
                except TimeoutError:
                    continue
                batch, buffer[:] = list(buffer), []
                arrived.clear()
                if batch:
                    await batch[-1].ack(multiple=True)
                    clock.settled(len(batch))
        finally:
            await connection.close()

    await asyncio.gather(*(run(i) for i in range(consumers)))
    return clock.rate()


def run_bare_asyncio(make: Callable[[], Awaitable[float]]) -> float:
    return asyncio.run(make())


def run_bare_trio(make: Callable[[], Awaitable[float]]) -> float:
    async def main() -> float:
        async with trio_asyncio.open_loop():
            return await trio_asyncio.aio_as_trio(make)()

    return trio.run(main)


# --- ours, in process: the tree's consumer wiring -------------------------------------------------------------


def run_ours(
    dsn: str, total: int, make_actors: Callable[..., list[Any]], partitions: int | None = None
) -> tuple[float, dict[str, int]]:
    """The consumer actors with a writer and a pool, on a frozen startup heap as in `scouter serve`; ``partitions``
    for Kafka (the clock waits for the group to settle)."""

    async def main() -> tuple[float, dict[str, int]]:
        freeze_startup_heap()  # as `scouter serve` does before it starts the tree
        async with trio_asyncio.open_loop():
            db = await open_pool(dsn, DatabaseSettings(max_pool_size=10, min_pool_size=2))
            metrics = ScouterMetrics.create(CollectorRegistry(), process=False)
            handle = DatabaseHandle(db)
            send, recv = open_inbox(WRITER_INBOX)
            writer = WriterActor(recv, send, handle, metrics)
            actors = make_actors(handle, send, HealthBoard(), metrics)
            clock = Clock(total)
            handler = None
            if partitions is None:
                clock.start()
            else:
                handler = _AssignmentLog(_Assignments(clock, partitions, len(actors)))
                logging.getLogger("actors.kafka").addHandler(handler)
                logging.getLogger("actors.kafka").setLevel(logging.INFO)
            writer_stop, consumers_stop = trio.Event(), trio.Event()
            # Settled messages timed as the consumers count them, on the spot: polling the counter often enough to
            # time the end well took a few per cent of the event loop that ours shares with it.
            for transport in ("kafka", "rabbitmq"):
                child = metrics.broker_messages_consumed.labels(transport)

                def counted(amount: float = 1, exemplar: Any = None, *, count: Any = child.inc) -> None:
                    count(amount, exemplar)
                    clock.settled(int(amount))

                child.inc = counted  # type: ignore[method-assign]
            async with trio.open_nursery() as nursery:
                await nursery.start(writer.run, writer_stop)
                async with trio.open_nursery() as consumers:
                    for actor in actors:
                        consumers.start_soon(actor.run, consumers_stop)
                    while not clock.finished:
                        await trio.sleep(0.05)
                    consumers_stop.set()
                writer_stop.set()
            stats = writer.statistics()
            await close_pool(db)
            if handler is not None:
                logging.getLogger("actors.kafka").removeHandler(handler)
            return clock.rate(), stats

    return trio.run(main)


# --- raw COPY of the same rows ----------------------------------------------------------------------------------


async def raw_copy(dsn: str, messages: Sequence[bytes]) -> float:
    batches = []
    for start in range(0, len(messages), 1000):
        rows = [row for m in messages[start : start + 1000] for row in decode_server_records(m).spc_rows]
        batches.append(rows)
    conn = await asyncpg.connect(dsn)
    try:
        started = time.perf_counter()
        for rows in batches:
            async with conn.transaction():
                await conn.copy_records_to_table("spc_drift", records=rows, columns=SPC_COLUMNS, schema_name="scouter")
        return len(messages) * RECORDS / (time.perf_counter() - started)
    finally:
        await conn.close()


def decode_only(messages: Sequence[bytes]) -> float:
    """Records per second of the wire codec alone."""
    started = time.perf_counter()
    for message in messages:
        decode_server_records(message)
    return len(messages) * RECORDS / (time.perf_counter() - started)


# --- peak RSS of the real server ------------------------------------------------------------------------------


def peak_rss(dsn: str, env_extra: dict[str, str], total: int, scratch: Path) -> tuple[float, float]:
    """Start `scouter serve` on a backlog of ``total`` messages; (peak RSS MiB while draining, seconds to drain)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SCOUTER_", "KAFKA_", "RABBITMQ_", "DATABASE"))}
    env.update(
        DATABASE_URI=dsn,
        SCOUTER_SERVER_HOST="127.0.0.1",
        SCOUTER_SERVER_PORT="0",
        SCOUTER_DATA_DIR=str(scratch / "data"),
        SCOUTER_STORAGE_URI=str(scratch / "storage"),
        POLLING_WORKER_COUNT="0",
        LOG_LEVEL="error",
        **env_extra,
    )
    space = env_extra["BENCH_SPACE"]
    proc = subprocess.Popen([sys.executable, "-m", "supervisors.main", "serve"], cwd=ROOT, env=env)
    process = psutil.Process(proc.pid)
    peak = 0
    started = time.perf_counter()

    async def count() -> int:
        conn = await asyncpg.connect(dsn)
        try:
            return int(await conn.fetchval("SELECT count(*) FROM scouter.spc_drift WHERE space = $1", space))
        finally:
            await conn.close()

    try:
        next_count = 0.0
        while True:
            peak = max(peak, process.memory_info().rss)
            now = time.perf_counter()
            if now >= next_count:
                next_count = now + 0.5
                try:
                    if asyncio.run(count()) >= total * RECORDS:
                        break
                except (OSError, asyncpg.PostgresError):
                    pass
            if now - started > 600:
                raise RuntimeError("the server did not drain the backlog within 10 minutes")
            time.sleep(0.02)
        return peak / 2**20, time.perf_counter() - started
    finally:
        proc.terminate()
        proc.wait(60)


# --- the run ------------------------------------------------------------------------------------------------------


def prepare(dsn: str) -> None:
    async def main() -> None:
        async with trio_asyncio.open_loop():
            db = await open_pool(dsn, DatabaseSettings(max_pool_size=2, min_pool_size=1))
            await migrate(db)
            await MaintenanceActor(DatabaseHandle(db)).run_once()
            await close_pool(db)

    trio.run(main)


async def _stored(dsn: str, space: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM scouter.spc_drift WHERE space = $1", space))
    finally:
        await conn.close()


def check_stored(dsn: str, space: str, total: int) -> None:
    """ours stored every record of the backlog exactly once."""
    got = asyncio.run(_stored(dsn, space))
    check(got == total * RECORDS, f"{space}: {got:,} records stored, the backlog had {total * RECORDS:,}")


def bench_kafka(server: str, total: int, consumers: int) -> dict[str, float]:
    brokers = ensure_kafka()
    figures: dict[str, float] = {}
    with scratch_database(server, prefix="scouter_bench_") as dsn:
        prepare(dsn)
        space = f"bench_{secrets.token_hex(3)}"
        messages = payloads(total, space)
        topic = f"bench_{secrets.token_hex(4)}"
        asyncio.run(kafka_backlog(brokers, topic, consumers, messages))
        figures["raw_copy"] = asyncio.run(raw_copy(dsn, messages))
        figures["decode_only"] = decode_only(messages)
        asyncpg_clear(dsn)
        figures["bare_asyncio"] = run_bare_asyncio(lambda: bare_kafka(brokers, topic, total, consumers))
        figures["bare_trio"] = run_bare_trio(lambda: bare_kafka(brokers, topic, total, consumers))

        def actors(handle: DatabaseHandle, send: Any, board: HealthBoard, metrics: ScouterMetrics) -> list[Any]:
            settings = KafkaSettings(
                brokers=brokers,
                topics=(topic,),
                group=f"ours_{secrets.token_hex(4)}",
                session_timeout_ms=6000,
                heartbeat_interval_ms=500,
            )
            return [KafkaConsumerActor(settings, i, handle, send, board, metrics) for i in range(consumers)]

        figures["ours"], stats = run_ours(dsn, total, actors, partitions=consumers)
        figures["flushes"] = stats["flushes"]
        check_stored(dsn, space, total)
    with tempfile.TemporaryDirectory(prefix="scouter-bench-") as scratch:
        for factor in (10, 40):
            backlog = RSS_UNIT * factor
            with scratch_database(server, prefix="scouter_bench_") as dsn:
                space = f"bench_{secrets.token_hex(3)}"
                topic = f"bench_rss_{secrets.token_hex(4)}"
                asyncio.run(kafka_backlog(brokers, topic, consumers, payloads(backlog, space)))
                env = {
                    "KAFKA_BROKERS": brokers,
                    "KAFKA_TOPIC": topic,
                    "KAFKA_GROUP": topic,
                    "KAFKA_WORKER_COUNT": str(consumers),
                    "KAFKA_SESSION_TIMEOUT_MS": "6000",
                    "KAFKA_HEARTBEAT_INTERVAL_MS": "500",
                    "BENCH_SPACE": space,
                }
                figures[f"rss_{factor}x_mib"], figures[f"drain_{factor}x_s"] = peak_rss(
                    dsn, env, backlog, Path(scratch)
                )
    return figures


def bench_rabbitmq(server: str, total: int, consumers: int, prefetch: int) -> dict[str, float]:
    url = ensure_rabbitmq()
    figures: dict[str, float] = {}
    queues: list[str] = []
    try:
        with scratch_database(server, prefix="scouter_bench_") as dsn:
            prepare(dsn)
            space = f"bench_{secrets.token_hex(3)}"
            messages = payloads(total, space)
            figures["raw_copy"] = asyncio.run(raw_copy(dsn, messages))
            figures["decode_only"] = decode_only(messages)
            asyncpg_clear(dsn)
            for variant in ("bare_asyncio", "bare_trio", "ours"):
                queue = f"bench_{variant}_{secrets.token_hex(4)}"
                queues.append(queue)
                asyncio.run(rabbit_backlog(url, queue, messages))
                if variant == "bare_asyncio":
                    figures[variant] = run_bare_asyncio(lambda q=queue: bare_rabbit(url, q, total, consumers, prefetch))
                elif variant == "bare_trio":
                    figures[variant] = run_bare_trio(lambda q=queue: bare_rabbit(url, q, total, consumers, prefetch))
                else:

                    def actors(
                        handle: DatabaseHandle, send: Any, board: HealthBoard, metrics: ScouterMetrics, q: str = queue
                    ) -> list[Any]:
                        settings = RabbitSettings(addr=url, queue=q, prefetch=prefetch)
                        return [
                            RabbitConsumerActor(settings, i, handle, send, board, metrics) for i in range(consumers)
                        ]

                    figures["ours"], stats = run_ours(dsn, total, actors)
                    figures["flushes"] = stats["flushes"]
            check_stored(dsn, space, total)
        with tempfile.TemporaryDirectory(prefix="scouter-bench-") as scratch:
            for factor in (10, 40):
                backlog = RSS_UNIT * factor
                with scratch_database(server, prefix="scouter_bench_") as dsn:
                    space = f"bench_{secrets.token_hex(3)}"
                    queue = f"bench_rss_{secrets.token_hex(4)}"
                    queues.append(queue)
                    asyncio.run(rabbit_backlog(url, queue, payloads(backlog, space)))
                    env = {
                        "RABBITMQ_ADDR": url,
                        "RABBITMQ_QUEUE": queue,
                        "RABBITMQ_CONSUMER_COUNT": str(consumers),
                        "RABBITMQ_PREFETCH_COUNT": str(prefetch),
                        "BENCH_SPACE": space,
                    }
                    figures[f"rss_{factor}x_mib"], figures[f"drain_{factor}x_s"] = peak_rss(
                        dsn, env, backlog, Path(scratch)
                    )
    finally:
        asyncio.run(delete_queues(url, queues))
    return figures


def asyncpg_clear(dsn: str) -> None:
    """Empty the table the raw COPY filled, so every variant writes into the same state."""

    async def run() -> None:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute("TRUNCATE scouter.spc_drift")
        finally:
            await conn.close()

    asyncio.run(run())


def report(name: str, total: int, figures: dict[str, float], setup: str, verdicts: Verdicts) -> None:
    records = RECORDS
    print(f"\n{name}: {total:,} messages x {records} records, {setup}{' (smoke sizes)' if SMOKE else ''}")
    print(
        f"  ours, end to end into PostgreSQL:   {figures['ours'] * records:>10,.0f} records/s"
        f"  ({figures['ours']:,.0f} msg/s, {figures['flushes']:.0f} flushes; {total * records:,} stored once)"
    )
    for variant, label in (("bare_trio", "under trio-asyncio"), ("bare_asyncio", "under plain asyncio")):
        print(f"  bare library {label + ':':<22}{figures[variant] * records:>10,.0f} records/s")
    print(f"  raw asyncpg COPY, same rows:       {figures['raw_copy']:>10,.0f} records/s")
    print(f"  decode only (scouter.records):     {figures['decode_only']:>10,.0f} records/s")
    for factor in (10, 40):
        print(
            f"  server draining {RSS_UNIT * factor:>6,} messages:     "
            f"peak RSS {figures[f'rss_{factor}x_mib']:>6.0f} MiB  ({figures[f'drain_{factor}x_s']:.1f} s incl. start)"
        )
    transport = name.split()[0]
    verdicts.ratio(f"{transport} ours / bare library under trio-asyncio", figures["ours"], figures["bare_trio"],
                   target=0.7)  # fmt: skip
    verdicts.ratio(f"{transport} ours / bare library under asyncio", figures["ours"], figures["bare_asyncio"],
                   target=0.7)  # fmt: skip
    # Kafka: issue #18's target; RabbitMQ: a reference
    verdicts.ratio(f"{transport} ours / raw COPY", figures["ours"] * records, figures["raw_copy"],
                   target=0.8 if transport == "Kafka" else None)  # fmt: skip
    verdicts.target(f"{transport} peak RSS, 40x / 10x backlog", figures["rss_40x_mib"] / figures["rss_10x_mib"], "",
                    1.25, at_most=True)  # fmt: skip


def main(argv: Sequence[str] | None = None) -> dict[str, dict[str, float]]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("messages", type=int, nargs="?", default=sizes(50_000, 300))
    parser.add_argument("--only", choices=("kafka", "rabbitmq"))
    parser.add_argument("--consumers", type=int, default=3, help="consumers (and Kafka partitions); default 3")
    parser.add_argument("--prefetch", type=int, default=100, help="RabbitMQ prefetch; default 100")
    args = parser.parse_args(argv)
    server = bench_postgres()
    verdicts = Verdicts()
    results: dict[str, dict[str, float]] = {}
    if args.only in (None, "kafka"):
        results["kafka"] = bench_kafka(server, args.messages, args.consumers)
        report("Kafka (tansu, gzip)", args.messages, results["kafka"], f"{args.consumers} consumers / partitions",
               verdicts)  # fmt: skip
    if args.only in (None, "rabbitmq"):
        results["rabbitmq"] = bench_rabbitmq(server, args.messages, args.consumers, args.prefetch)
        report("RabbitMQ", args.messages, results["rabbitmq"],
               f"{args.consumers} consumers, prefetch {args.prefetch}", verdicts)  # fmt: skip
    verdicts.finish()
    return results


if __name__ == "__main__":
    main()
