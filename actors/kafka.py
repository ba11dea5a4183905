"""The Kafka consumer actor: one aiokafka consumer in group KAFKA_GROUP, stored exactly once through PostgreSQL.

Each actor (``kafka-0`` ... ``kafka-N-1``) loops over one asyncio crossing per batch: commit the previous batch's
offsets to Kafka, then ``getmany``. The batch is decoded in trio, and all of it becomes **one** write request whose
hook, in the writer's transaction:

* upserts the next offset of every partition of the batch in ``scouter.consumer_offsets``, only where the stored
  offset is not already past the batch's first offset (otherwise another member, or a late copy of this very
  request, stored these messages: the hook answers "duplicate", the rows are skipped, and the consumer re-reads
  the stored positions and seeks to them);
* keeps the digest of each partition's last stored message in ``scouter.ingested_messages`` (source ``kafka``,
  replacing the previous one);
* inserts the poison messages (undecodable, or over 10 MiB) into ``scouter.quarantine``.

PostgreSQL is the source of truth for positions: on assignment (ConsumerRebalanceListener) the partitions are
paused until their stored offsets are read, then each is sought to the offset of its **last stored message** and
the first fetched message is checked against the stored digest. Same message: it is skipped and consumption goes on
(a crash between COMMIT and the Kafka commit therefore duplicates nothing). Different message, or the broker resets
the position below it: the broker's log is not the one the position was stored for (topic recreated, broker lost
its data: tansu with memory storage after a restart), so the consumer starts the partition over as
KAFKA_OFFSET_RESET says and overwrites the stored position, as any Kafka consumer does when its committed offset
falls outside the log. Kafka's own commits only serve the usual lag tools (and partitions with no stored position).

Never prune ``ingested_messages`` rows whose source is ``kafka``: there is one per partition, and without it the
next assignment cannot recognise the log and would start the partition over.

A broker that is down is not a crash: aiokafka reconnects by itself, a metadata probe while idle turns readiness
(HealthBoard) red and green, and a consumer that fails outright is rebuilt with capped, jittered backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import struct
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import timedelta
from typing import Any

import asyncpg
import attrs
import trio
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import IllegalStateError, KafkaError
from aiokafka.helpers import create_ssl_context
from aiokafka.structs import ConsumerRecord
from trio_asyncio import aio_as_trio

from config import KafkaSettings
from scouter.records import DEFAULT_MAX_FUTURE, DecodedBatch

from ._consuming import (
    Backoff,
    Conflict,
    Decoded,
    Step,
    close_bounded,
    count_records,
    decode_message,
    hook,
    merge,
    quarantine_step,
    store,
    store_or_split,
)
from .database import UNAVAILABLE, DatabaseHandle
from .health import HealthBoard
from .metrics import ScouterMetrics
from .writer import InboxSender

log = logging.getLogger("actors.kafka")

TRANSPORT = "kafka"

UPSERT_OFFSETS = """
INSERT INTO scouter.consumer_offsets AS o (consumer_group, topic, partition, next_offset)
SELECT $1, b.topic, b.partition, b.next_offset
FROM unnest($2::text[], $3::int[], $4::bigint[]) AS b(topic, partition, next_offset)
ON CONFLICT (consumer_group, topic, partition) DO UPDATE
SET next_offset = EXCLUDED.next_offset, updated_at = now()
WHERE (SELECT s.restart OR o.next_offset <= s.first_offset
       FROM unnest($2::text[], $3::int[], $5::bigint[], $6::boolean[]) AS s(topic, partition, first_offset, restart)
       WHERE s.topic = o.topic AND s.partition = o.partition)
RETURNING o.partition
"""
STORED_OFFSETS = """
SELECT topic, partition, next_offset FROM scouter.consumer_offsets WHERE consumer_group = $1 AND topic = ANY($2::text[])
"""
DIGESTS_PRESENT = "SELECT digest FROM scouter.ingested_messages WHERE digest = ANY($1::bytea[])"
DELETE_DIGESTS = "DELETE FROM scouter.ingested_messages WHERE digest = ANY($1::bytea[]) AND source = 'kafka'"
INSERT_DIGESTS = (
    "INSERT INTO scouter.ingested_messages (digest, source) SELECT unnest($1::bytea[]), 'kafka' ON CONFLICT DO NOTHING"
)


def consumer_options(settings: KafkaSettings, index: int) -> dict[str, Any]:
    """AIOKafkaConsumer keyword arguments: manual commits, upstream's SASL rule (only with user *and* password)."""
    options: dict[str, Any] = {
        "bootstrap_servers": settings.brokers,
        "group_id": settings.group,
        "client_id": f"scouter-{settings.group}-{index}",
        "enable_auto_commit": False,
        "auto_offset_reset": settings.offset_reset.lower(),
        "session_timeout_ms": settings.session_timeout_ms,
        "heartbeat_interval_ms": settings.heartbeat_interval_ms,
        "max_poll_records": settings.max_batch,
        "retry_backoff_ms": 500,  # metadata retries while a broker is away: fewer, quieter
    }
    if settings.username and settings.password:
        options.update(
            security_protocol=settings.security_protocol,
            sasl_mechanism=settings.sasl_mechanism,
            sasl_plain_username=settings.username,
            sasl_plain_password=settings.password,
        )
        if settings.security_protocol in ("SSL", "SASL_SSL"):
            options["ssl_context"] = create_ssl_context(cafile=settings.cert_location)
    return options


def position_digest(group: str, record: ConsumerRecord[Any, Any]) -> bytes:
    """Identifies one message of one log: its position, broker timestamp and content."""
    h = hashlib.sha256(b"kafka\0")
    h.update(f"{group}\0{record.topic}\0".encode())
    h.update(struct.pack(">iqq", record.partition, record.offset, record.timestamp or 0))
    h.update(record.value or b"")
    return h.digest()


class _RepeatFilter(logging.Filter):
    """Lets one record per (logger, message template) through every ``every`` seconds.

    aiokafka logs every reconnect attempt at ERROR (several lines per 100 ms per consumer while a broker is down).
    """

    def __init__(self, every: float = 30.0) -> None:
        super().__init__()
        self.every = every
        self.last: dict[tuple[str, str], float] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, str(record.msg))
        now = time.monotonic()
        if now - self.last.get(key, -self.every) < self.every:
            return False
        self.last[key] = now
        return True


_AIOKAFKA_LOGGERS = (
    "aiokafka",
    "aiokafka.conn",
    "aiokafka.client",
    "aiokafka.cluster",
    "aiokafka.consumer.consumer",
    "aiokafka.consumer.fetcher",
    "aiokafka.consumer.group_coordinator",
)
_repeat_filter = _RepeatFilter()


def quiet_client_logs() -> None:
    """Rate-limit aiokafka's repeated connection errors (idempotent)."""
    for name in _AIOKAFKA_LOGGERS:
        logger = logging.getLogger(name)
        if _repeat_filter not in logger.filters:
            logger.addFilter(_repeat_filter)


# --- partition state, shared by the trio loop and the asyncio rebalance listener (same thread) ------------------


@attrs.define
class _Partitions:
    pending: set[TopicPartition] = attrs.Factory(set)  # assigned and paused until the stored position is known
    verify: dict[TopicPartition, int] = attrs.Factory(dict)  # offset of the last stored message, to check
    expected: dict[TopicPartition, int] = attrs.Factory(dict)  # the next offset we should see
    restarted: set[TopicPartition] = attrs.Factory(set)  # new log: overwrite the stored position once
    last_digest: dict[TopicPartition, bytes] = attrs.Factory(dict)  # digest row of the last stored message
    assignments: int = 0  # bumped on every assignment, so a stale read of stored offsets is never applied

    def forget(self, tps: Iterable[TopicPartition]) -> None:
        for tp in tps:
            self.pending.discard(tp)
            self.verify.pop(tp, None)
            self.expected.pop(tp, None)
            self.restarted.discard(tp)
            self.last_digest.pop(tp, None)


@attrs.frozen
class _Seek:
    """What to do with a partition before the next fetch."""

    tp: TopicPartition
    assignments: int  # the assignment it was planned for; a later rebalance makes it moot
    offset: int | None = None  # seek there (None: do not seek)
    start_over: bool = False  # seek as KAFKA_OFFSET_RESET says
    resume: bool = False  # resume the partition, paused since its assignment


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    """Runs in asyncio, inside aiokafka's rebalance."""

    def __init__(
        self,
        consumer: AIOKafkaConsumer,
        state: _Partitions,
        idle: asyncio.Event,
        grace: float,
        revoked: Callable[[Iterable[TopicPartition]], None],
        name: str,
    ) -> None:
        self.name = name
        self.consumer = consumer
        self.state = state
        self.idle = idle
        self.grace = grace
        self.revoked = revoked

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        # Let the batch in flight reach PostgreSQL first, so the next owner starts after it. Bounded: past the
        # grace, the conditional offset upsert still keeps the two owners from storing the same messages twice.
        if not self.idle.is_set():
            try:
                await asyncio.wait_for(self.idle.wait(), self.grace)
            except TimeoutError:
                log.warning("%s: partitions revoked while a batch was still being stored", self.name)
        self.state.forget(revoked)
        self.revoked(revoked)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        self.state.forget(assigned)
        self.state.assignments += 1
        if assigned:
            self.consumer.pause(*assigned)
            self.state.pending |= set(assigned)
            log.info("%s: assigned %s", self.name, ", ".join(f"{tp.topic}/{tp.partition}" for tp in sorted(assigned)))


@attrs.frozen
class _Fetched:
    records: dict[TopicPartition, list[ConsumerRecord[Any, Any]]]
    highwater: dict[TopicPartition, int | None]
    reachable: bool | None  # result of the metadata probe, None when none was made


@attrs.frozen
class _Item:
    """One consumed message and its decoding."""

    tp: TopicPartition
    record: ConsumerRecord[Any, Any]
    decoded: Decoded


class _Lost(Exception):
    """The batch's positions were taken over: stop handling it, the stored positions have been re-read."""


@attrs.define(eq=False)
class KafkaConsumerActor:
    settings: KafkaSettings
    index: int
    database: DatabaseHandle
    writer: InboxSender
    board: HealthBoard
    metrics: ScouterMetrics
    reply_within: float = 30.0  # seconds to wait for the writer before re-sending the same batch
    fetch_wait: float = 0.5  # getmany timeout: how often the loop looks at its stop event when idle
    probe_every: float = 3.0  # metadata probe while idle, for readiness
    backoff: Backoff = attrs.Factory(Backoff)
    commit_to_kafka: bool = True  # also commit to Kafka, so lag shows in the usual tools
    max_future: timedelta = DEFAULT_MAX_FUTURE  # SCOUTER_MAX_FUTURE_SECONDS: later created_at is quarantined
    _state: _Partitions = attrs.Factory(_Partitions)
    _idle: asyncio.Event = attrs.Factory(asyncio.Event)
    _seeks: list[_Seek] = attrs.Factory(list)
    _commit: dict[TopicPartition, int] = attrs.Factory(dict)
    _reachable: bool = False
    _last_probe: float = 0.0
    _lagging: set[TopicPartition] = attrs.Factory(set)  # partitions whose lag gauge this consumer set

    @property
    def name(self) -> str:
        return f"kafka-{self.index}"

    async def run(self, stop: trio.Event, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Consume until ``stop``; a broker that is away is waited for, never a reason to crash."""
        quiet_client_logs()
        self.board.failing(self.name, "connecting to Kafka")
        task_status.started()  # the tree goes on starting; readiness says whether we are connected
        try:
            while not stop.is_set():
                try:
                    await self._session(stop)
                except (KafkaError, OSError) as exc:
                    self._lost(f"consumer failed: {exc!r}")
                    await self.backoff.wait(stop)
        finally:
            self.board.forget(self.name)
            self._forget_lag(list(self._lagging))

    def _lost(self, why: str) -> None:
        self.metrics.broker_reconnects.labels(TRANSPORT).inc()
        self.board.failing(self.name, why)
        if self._reachable:
            log.warning("%s: Kafka unreachable: %s", self.name, why)
        else:
            log.info("%s: Kafka not reachable yet: %s", self.name, why)
        self._reachable = False

    def _found(self) -> None:
        if not self._reachable:
            log.info("%s: connected to Kafka at %s", self.name, self.settings.brokers)
        self._reachable = True
        self.board.ok(self.name)

    async def _session(self, stop: trio.Event) -> None:
        self._state = _Partitions()
        self._seeks, self._commit = [], {}
        self._idle.set()
        consumer = await aio_as_trio(self._create)()
        try:
            self.backoff.reset()
            self._found()
            while not stop.is_set():
                await self._plan_assigned()
                fetched = await aio_as_trio(self._exchange)(consumer)
                if fetched.reachable is False:
                    if self._reachable:
                        self._lost("metadata request failed")
                elif fetched.reachable or fetched.records:
                    self._found()
                if fetched.records:
                    try:
                        await self._handle(fetched)
                    finally:
                        self._idle.set()
            if self._commit and self.commit_to_kafka:
                with trio.move_on_after(5, shield=True):
                    await aio_as_trio(self._commit_offsets)(consumer)
        finally:
            await close_bounded(consumer.stop, f"{self.name} consumer")

    async def _create(self) -> AIOKafkaConsumer:  # asyncio side: aiokafka objects are born in the loop
        consumer = AIOKafkaConsumer(**consumer_options(self.settings, self.index))
        grace = max(1.0, self.settings.session_timeout_ms / 1000)
        listener = _Listener(consumer, self._state, self._idle, grace, self._forget_lag, self.name)
        consumer.subscribe(list(self.settings.topics), listener=listener)
        try:
            await consumer.start()
        except BaseException:
            await consumer.stop()
            raise
        return consumer

    # -- one crossing per batch ----------------------------------------------------------------------------------

    async def _exchange(self, consumer: AIOKafkaConsumer) -> _Fetched:  # asyncio side
        """Apply pending seeks, commit the last batch to Kafka, fetch the next batch (and probe when idle)."""
        seeks, self._seeks = self._seeks, []
        assigned = consumer.assignment()
        for seek in seeks:
            if seek.tp not in assigned or seek.assignments != self._state.assignments:
                continue  # revoked, or reassigned: planned again from the stored positions
            try:
                if seek.start_over:
                    if self.settings.offset_reset.lower() == "latest":
                        await consumer.seek_to_end(seek.tp)
                    else:
                        await consumer.seek_to_beginning(seek.tp)
                elif seek.offset is not None:
                    consumer.seek(seek.tp, seek.offset)
                if seek.resume:
                    consumer.resume(seek.tp)
            except IllegalStateError:  # revoked meanwhile
                continue
        if self._commit and self.commit_to_kafka:
            await self._commit_offsets(consumer)
        records = await consumer.getmany(timeout_ms=int(self.fetch_wait * 1000), max_records=self.settings.max_batch)
        if records:
            self._idle.clear()  # before returning: the rebalance listener must see the batch as in flight
            return _Fetched(records, {tp: consumer.highwater(tp) for tp in records}, None)
        reachable = None
        now = time.monotonic()
        if now - self._last_probe >= self.probe_every:
            self._last_probe = now
            try:
                await asyncio.wait_for(consumer.topics(), 5)
                reachable = True
            except (KafkaError, OSError, TimeoutError):
                reachable = False
        return _Fetched({}, {}, reachable)

    async def _commit_offsets(self, consumer: AIOKafkaConsumer) -> None:  # asyncio side
        offsets, self._commit = self._commit, {}
        assigned = consumer.assignment()
        offsets = {tp: offset for tp, offset in offsets.items() if tp in assigned}
        if not offsets:
            return
        try:
            await consumer.commit(offsets)
        except (KafkaError, IllegalStateError) as exc:  # only lag tools read these; PostgreSQL has the truth
            log.debug("%s: Kafka offset commit failed: %r", self.name, exc)

    # -- positions from PostgreSQL ---------------------------------------------------------------------------------

    async def _plan_assigned(self) -> None:
        """Read the stored positions of newly assigned partitions; they are sought and resumed on the next fetch."""
        state = self._state
        if not state.pending:
            return
        assignments, pending = state.assignments, set(state.pending)
        try:
            with trio.fail_after(10):
                rows = await self.database.get().fetch(
                    STORED_OFFSETS, self.settings.group, sorted({tp.topic for tp in pending})
                )
        except (*UNAVAILABLE, trio.TooSlowError) as exc:
            log.warning("%s: cannot read stored offsets yet (%r); partitions stay paused", self.name, exc)
            await trio.sleep(self.fetch_wait)
            return
        if state.assignments != assignments:
            return  # reassigned while we read: read again
        stored = {TopicPartition(r["topic"], r["partition"]): r["next_offset"] for r in rows}
        for tp in pending:
            offset = stored.get(tp)
            if offset is None or offset <= 0:  # nothing stored: Kafka's committed offset, or KAFKA_OFFSET_RESET
                self._seeks.append(_Seek(tp, assignments, resume=True))
            else:
                state.verify[tp] = offset - 1  # re-read the last stored message to recognise the log
                self._seeks.append(_Seek(tp, assignments, offset - 1, resume=True))
            state.pending.discard(tp)

    async def _reread_positions(self, tps: Sequence[TopicPartition], firsts: dict[TopicPartition, int]) -> None:
        """After a conflict: go on from what is stored (someone else stored these messages)."""
        while True:
            try:
                rows = await self.database.get().fetch(
                    STORED_OFFSETS, self.settings.group, sorted({tp.topic for tp in tps})
                )
                break
            except UNAVAILABLE as exc:
                log.warning("%s: cannot read stored offsets (%r); retrying", self.name, exc)
                await trio.sleep(1)
        stored = {TopicPartition(r["topic"], r["partition"]): r["next_offset"] for r in rows}
        for tp in tps:
            offset = max(stored.get(tp, 0), firsts[tp])
            self._seeks.append(_Seek(tp, self._state.assignments, offset))
            self._state.expected[tp] = offset
            self._state.last_digest.pop(tp, None)
            log.warning(
                "%s: %s/%d was stored elsewhere up to offset %d; going on from there",
                self.name,
                tp.topic,
                tp.partition,
                offset,
            )

    # -- a batch ---------------------------------------------------------------------------------------------------

    async def _handle(self, fetched: _Fetched) -> None:
        started = time.perf_counter()
        records = await self._recognise(dict(fetched.records))
        items = [
            _Item(tp, record, decode_message(record.value, self.max_future))
            for tp, batch in records.items()
            for record in batch
        ]
        if not items:
            return
        try:
            await self._store_or_split(items)
        except _Lost:
            return
        for tp, batch in records.items():
            high = fetched.highwater.get(tp)
            if high is not None:
                lag = max(0, high - batch[-1].offset - 1)
                self.metrics.kafka_consumer_lag.labels(tp.topic, str(tp.partition)).set(lag)
                self._lagging.add(tp)
        self.metrics.ingest_duration.labels(TRANSPORT).observe(time.perf_counter() - started)

    async def _recognise(
        self, records: dict[TopicPartition, list[ConsumerRecord[Any, Any]]]
    ) -> dict[TopicPartition, list[ConsumerRecord[Any, Any]]]:
        """Check each partition's first message against what was stored; drop what is already stored."""
        state = self._state
        checks = {
            tp: position_digest(self.settings.group, batch[0])
            for tp, batch in records.items()
            if tp in state.verify and batch[0].offset == state.verify[tp]
        }
        present: set[bytes] = set()
        if checks:
            while True:
                try:
                    rows = await self.database.get().fetch(DIGESTS_PRESENT, list(checks.values()))
                    present = {bytes(r["digest"]) for r in rows}
                    break
                except UNAVAILABLE as exc:
                    log.warning("%s: cannot check stored digests (%r); retrying", self.name, exc)
                    await trio.sleep(1)
        for tp in list(records):
            batch = records[tp]
            if tp in state.verify:
                at = state.verify.pop(tp)
                first = batch[0].offset
                if first == at and checks.get(tp) in present:
                    state.last_digest[tp] = checks[tp]
                    state.expected[tp] = at + 1
                    del batch[0]
                elif first > at:
                    state.expected[tp] = first  # older messages expired; these are all new
                else:
                    self._start_over(tp, f"the message stored last at offset {at} is not in the log")
                    del records[tp]
                    continue
            elif tp in state.expected and batch[0].offset < state.expected[tp]:
                self._start_over(tp, f"the broker moved back from offset {state.expected[tp]} to {batch[0].offset}")
                del records[tp]
                continue
            if not batch:
                del records[tp]
        return records

    def _start_over(self, tp: TopicPartition, why: str) -> None:
        log.warning(
            "%s: %s/%d: %s: the log was replaced; starting the partition over (KAFKA_OFFSET_RESET=%s)",
            self.name,
            tp.topic,
            tp.partition,
            why,
            self.settings.offset_reset,
        )
        self._state.restarted.add(tp)
        self._state.expected.pop(tp, None)
        self._state.last_digest.pop(tp, None)
        self._seeks.append(_Seek(tp, self._state.assignments, start_over=True))

    async def _store_or_split(self, items: list[_Item]) -> None:
        await store_or_split(
            self.name, items, self._store,
            lambda item, reason: _Item(item.tp, item.record, Decoded(item.decoded.raw, None, reason)),
            _source,
        )  # fmt: skip

    async def _store(self, items: Sequence[_Item]) -> str | None:
        """One write request for ``items``; None when stored (or found stored), else the writer's error."""
        state = self._state
        spans: dict[TopicPartition, tuple[ConsumerRecord[Any, Any], ConsumerRecord[Any, Any]]] = {}
        for item in items:
            first, _ = spans.get(item.tp, (item.record, item.record))
            spans[item.tp] = (first, item.record)
        tps = list(spans)
        digests = {tp: position_digest(self.settings.group, last) for tp, (_, last) in spans.items()}
        steps = [
            _upsert_offsets(
                self.settings.group,
                [
                    (tp.topic, tp.partition, first.offset, last.offset + 1, tp in state.restarted)
                    for tp, (first, last) in spans.items()
                ],
            ),
            _replace_digests([state.last_digest[tp] for tp in tps if tp in state.last_digest], list(digests.values())),
        ]
        poison = [(_source(i), i.decoded.reason or "", i.decoded.raw) for i in items if i.decoded.batch is None]
        if poison:
            steps.append(quarantine_step(poison))
        good = [i.decoded.batch for i in items if i.decoded.batch is not None]
        batch = merge(good) if good else DecodedBatch()
        result = await store(self.writer, batch, hook(steps), reply_within=self.reply_within, what=self.name)
        if not result.ok:
            return result.error or "unknown error"
        if result.duplicate:
            await self._reread_positions(tps, {tp: first.offset for tp, (first, _) in spans.items()})
            raise _Lost
        for tp, (_, last) in spans.items():
            state.expected[tp] = last.offset + 1
            state.last_digest[tp] = digests[tp]
            state.restarted.discard(tp)
            self._commit[tp] = last.offset + 1
        self.metrics.broker_messages_consumed.labels(TRANSPORT).inc(len(items))
        if poison:
            self.metrics.broker_messages_quarantined.labels(TRANSPORT).inc(len(poison))
            for source, reason, _ in poison:
                log.warning("%s: quarantined %s: %s", self.name, source, reason)
        count_records(self.metrics, batch, TRANSPORT)
        return None

    def _forget_lag(self, tps: Iterable[TopicPartition]) -> None:
        """Partitions this consumer no longer reads: their lag is someone else's to report."""
        for tp in tps:
            if tp in self._lagging:
                self._lagging.discard(tp)
                with contextlib.suppress(KeyError):
                    self.metrics.kafka_consumer_lag.remove(tp.topic, str(tp.partition))


def _source(item: _Item) -> str:
    return f"kafka:{item.tp.topic}/{item.tp.partition}@{item.record.offset}"


def _upsert_offsets(group: str, rows: Sequence[tuple[str, int, int, int, bool]]) -> Step:
    topics = [r[0] for r in rows]
    partitions = [r[1] for r in rows]
    firsts = [r[2] for r in rows]
    nexts = [r[3] for r in rows]
    restarts = [r[4] for r in rows]

    async def step(conn: asyncpg.Connection) -> None:
        updated = await conn.fetch(UPSERT_OFFSETS, group, topics, partitions, nexts, firsts, restarts)
        if len(updated) != len(rows):
            raise Conflict

    return step


def _replace_digests(old: list[bytes], new: list[bytes]) -> Step:
    async def step(conn: asyncpg.Connection) -> None:
        if old:
            await conn.execute(DELETE_DIGESTS, old)
        await conn.execute(INSERT_DIGESTS, new)

    return step
