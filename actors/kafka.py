"""The Kafka consumer actor: one aiokafka consumer in group KAFKA_GROUP, stored exactly once through PostgreSQL.

Each actor (``kafka-0`` ... ``kafka-N-1``) runs two stages joined by a channel of at most ``ahead`` batches, so that
fetching and decoding the next batches overlaps the writer's COPY and COMMIT of the current one:

* the **fetch stage** makes one asyncio crossing per batch (apply pending seeks, commit the stored offsets to Kafka,
  ``getmany``), checks each partition's first message against what is stored, and decodes the batch;
* the **store stage** hands the batches to the writer in fetch order, the ones already waiting joined to the one at
  hand (`actors._kafka_batches.joined`: a backlog drains in fewer, bigger transactions), and only after its COMMIT
  moves the positions on (PostgreSQL first, Kafka at the next crossing). A batch fetched before a rebalance or a
  re-positioning (the generation in `actors._kafka_positions.Partitions`) is dropped, never stored.

Each (joined) batch becomes **one** write request whose hook, in the writer's transaction (in one round trip that
also reads the transaction's id, which the writer needs to settle a lost COMMIT reply):

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
(HealthBoard) red and green, and a consumer that fails outright is rebuilt with capped, jittered backoff. When the
broker answers again, every partition is planned again as on an assignment, so that a broker that came back without
its log (and aiokafka, which goes on from its old positions) never makes the consumer skip the new log's start.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta

import attrs
import trio
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import IllegalStateError, KafkaError
from trio_asyncio import aio_as_trio

from config import KafkaSettings
from scouter.records import DEFAULT_MAX_FUTURE, CreatedAtBounds, DecodedBatch

from ._consuming import (
    Backoff,
    Decoded,
    close_bounded,
    count_records,
    decode_message,
    merge,
    resolve_entities,
    store,
    store_or_split,
)
from ._kafka_batches import Batch, Fetched, Item, Message, join_waiting, quarantined, send_unless_stopped, source
from ._kafka_client import Listener, consumer_options, quiet_client_logs
from ._kafka_positions import (
    DIGESTS_PRESENT,
    STORED_OFFSETS,
    Partitions,
    Records,
    position_digest,
    positions_hook,
)
from .database import UNAVAILABLE, DatabaseHandle
from .entity_cache import EntityCache
from .health import HealthBoard
from .metrics import ScouterMetrics
from .writer import InboxSender

__all__ = ["KafkaConsumerActor", "consumer_options", "position_digest", "quiet_client_logs"]

log = logging.getLogger("actors.kafka")

TRANSPORT = "kafka"
DECODE_SLICE = 16  # messages decoded between two checkpoints (a fraction of a millisecond: the writer waits meanwhile)


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
    commit_every: float = 1.0  # seconds between those commits (a round trip to the broker); and when stopping
    max_future: timedelta = DEFAULT_MAX_FUTURE  # SCOUTER_MAX_FUTURE_SECONDS: later created_at is quarantined
    #: Batches fetched and decoded ahead of the one at the writer (at most KAFKA_MAX_BATCH messages each).
    ahead: int = attrs.field(default=4, validator=attrs.validators.ge(1))
    _state: Partitions = attrs.Factory(Partitions)
    _idle: asyncio.Event = attrs.Factory(asyncio.Event)  # set while no batch of ours is at the writer
    _commit: dict[TopicPartition, int] = attrs.Factory(dict)
    _reachable: bool = False
    _last_probe: float = 0.0
    _committed_at: float = 0.0
    _lagging: set[TopicPartition] = attrs.Factory(set)  # partitions whose lag gauge this consumer set
    entities: EntityCache = attrs.Factory(EntityCache)  # uid -> entity of 0.25 records

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
        self._state = Partitions()
        self._commit = {}
        self._idle.set()
        consumer = await aio_as_trio(self._create)()
        try:
            self.backoff.reset()
            self._found()
            await self._pipeline(consumer, stop)
            if self._commit and self.commit_to_kafka:
                with trio.move_on_after(5, shield=True):
                    await aio_as_trio(self._commit_offsets)(consumer)
        finally:
            await close_bounded(consumer.stop, f"{self.name} consumer")

    async def _create(self) -> AIOKafkaConsumer:  # asyncio side: aiokafka objects are born in the loop
        consumer = AIOKafkaConsumer(**consumer_options(self.settings, self.index))
        grace = max(1.0, self.settings.session_timeout_ms / 1000)
        listener = Listener(consumer, self._state, self._idle, grace, self._forget_lag, self.name)
        consumer.subscribe(list(self.settings.topics), listener=listener)
        try:
            await consumer.start()
        except BaseException:
            await consumer.stop()
            raise
        return consumer

    async def _pipeline(self, consumer: AIOKafkaConsumer, stop: trio.Event) -> None:
        """The two stages, until ``stop`` or a client failure; the batch at the writer is seen through either way
        (its rows may be committed: the next session must find its position stored), the batches behind it are
        dropped unstored."""
        send, receive = trio.open_memory_channel[Batch](self.ahead - 1)  # plus one held by the blocked sender
        failure: KafkaError | OSError | None = None
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._store_stage, receive, stop, name=f"{self.name}-store")
            with send:
                try:
                    await self._fetch_stage(consumer, send, stop)
                except (KafkaError, OSError) as exc:
                    failure = exc
        if failure is not None:
            raise failure

    # -- the fetch stage -------------------------------------------------------------------------------------------

    async def _fetch_stage(
        self, consumer: AIOKafkaConsumer, send: trio.MemorySendChannel[Batch], stop: trio.Event
    ) -> None:
        while not stop.is_set():
            await self._plan_assigned()
            fetched = await aio_as_trio(self._exchange)(consumer)
            if fetched.reachable is False:
                if self._reachable:
                    self._lost("metadata request failed")
            elif fetched.reachable or fetched.records:
                if not self._reachable:
                    self._recheck_logs(consumer)
                    self._found()
                    continue  # what this fetch brought is stale now: fetched again once the positions are checked
                self._found()
            if fetched.records:
                batch = await self._prepare(fetched)
                if batch is not None:
                    await send_unless_stopped(send, batch, stop)

    async def _exchange(self, consumer: AIOKafkaConsumer) -> Fetched:  # asyncio side
        """Apply pending seeks, commit the stored batches to Kafka, fetch the next batch (and probe when idle)."""
        state = self._state
        generation = state.generation
        seeks, state.seeks = state.seeks, []
        assigned = consumer.assignment()
        for seek in seeks:
            if seek.tp not in assigned or seek.assignments != state.assignments:
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
        if self._commit and self.commit_to_kafka and time.monotonic() - self._committed_at >= self.commit_every:
            await self._commit_offsets(consumer)
        records = await consumer.getmany(timeout_ms=int(self.fetch_wait * 1000), max_records=self.settings.max_batch)
        if records:
            state.fetched(records, generation)  # before any other coroutine runs
            return Fetched(records, {tp: consumer.highwater(tp) for tp in records}, None, generation)
        reachable = None
        now = time.monotonic()
        if now - self._last_probe >= self.probe_every:
            self._last_probe = now
            try:
                await asyncio.wait_for(consumer.topics(), 5)
                reachable = True
            except (KafkaError, OSError, TimeoutError):
                reachable = False
        return Fetched({}, {}, reachable, generation)

    def _recheck_logs(self, consumer: AIOKafkaConsumer) -> None:
        """The broker is back after it was unreachable: it may have come back without its log (memory storage), and
        aiokafka goes on fetching from its old positions, which a new log of the same length also has. Every partition
        is paused and planned again from PostgreSQL, as on an assignment, so that the last stored message is checked
        against this log before anything more is stored."""
        state = self._state
        assigned = consumer.assignment()  # plain reads and writes of the client's state: safe from trio
        state.generation += 1
        for tp in assigned:
            state.verify.pop(tp, None)
            state.expected.pop(tp, None)
        if assigned:
            consumer.pause(*assigned)
            state.pending |= set(assigned)
            log.info("%s: Kafka is back; checking the stored positions against its log", self.name)

    async def _commit_offsets(self, consumer: AIOKafkaConsumer) -> None:  # asyncio side
        offsets, self._commit = self._commit, {}
        self._committed_at = time.monotonic()
        assigned = consumer.assignment()
        offsets = {tp: offset for tp, offset in offsets.items() if tp in assigned}
        if not offsets:
            return
        try:
            await consumer.commit(offsets)
        except (KafkaError, IllegalStateError) as exc:  # only lag tools read these; PostgreSQL has the truth
            log.debug("%s: Kafka offset commit failed: %r", self.name, exc)

    async def _plan_assigned(self) -> None:
        """Read the stored positions of newly assigned partitions; they are sought and resumed on the next fetch."""
        state = self._state
        if not state.pending:
            return
        await aio_as_trio(self._idle.wait)()  # a batch still at the writer may move the positions about to be read
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
        state.plan(pending, {(r["topic"], r["partition"]): r["next_offset"] for r in rows})

    async def _prepare(self, fetched: Fetched) -> Batch | None:
        """Recognise and decode one fetch; None when nothing in it is to be stored, or a rebalance or
        re-positioning overtook it."""
        started = time.perf_counter()
        state = self._state
        if fetched.generation != state.generation:
            return None
        records = await self._recognise(dict(fetched.records), fetched.generation)
        if not records:
            return None
        pairs = [(tp, record) for tp, batch in records.items() for record in batch]
        decoded: list[Decoded] = []
        for start in range(0, len(pairs), DECODE_SLICE):
            if start:
                # The writer's transaction runs on this thread too: each of its round trips would otherwise wait for
                # the whole batch to be decoded.
                await trio.lowlevel.checkpoint()
            bounds = CreatedAtBounds.around(datetime.now(UTC), self.max_future)
            decoded += [decode_message(r.value, bounds=bounds) for _, r in pairs[start : start + DECODE_SLICE]]
        decoded = await resolve_entities(self.name, decoded, self.entities, self.database, self.metrics, TRANSPORT)
        if fetched.generation != state.generation:
            return None
        restarted = state.restarted & records.keys()
        state.restarted -= restarted
        return Batch(
            items=[Item(tp, Message.of(record), d) for (tp, record), d in zip(pairs, decoded, strict=True)],
            last={tp: batch[-1].offset for tp, batch in records.items()},
            highwater=fetched.highwater,
            generation=fetched.generation,
            assignments=state.assignments,
            restarted=restarted,
            starts={tp: state.starts.get(tp, 0) for tp in records},
            started=started,
            rows=sum(d.batch.total for d in decoded if d.batch is not None),
        )

    async def _recognise(self, records: Records, generation: int) -> Records:
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
            if generation != state.generation:
                return {}
        for tp, why in state.recognise(records, checks, present):
            log.warning(
                "%s: %s/%d: %s: the log was replaced; starting the partition over (KAFKA_OFFSET_RESET=%s)",
                self.name,
                tp.topic,
                tp.partition,
                why,
                self.settings.offset_reset,
            )
        return records

    # -- the store stage -------------------------------------------------------------------------------------------

    async def _store_stage(self, receive: trio.MemoryReceiveChannel[Batch], stop: trio.Event) -> None:
        """Store the batches in fetch order, until the fetch stage ends or ``stop`` is set; the batches already
        waiting (a backlog being drained) join the one at hand, so they share one write request and one COMMIT."""
        held: Batch | None = None  # received, but not to be joined to the batch before it
        with receive:
            while True:
                if held is None:
                    try:
                        batch = await receive.receive()
                    except trio.EndOfChannel:
                        return
                else:
                    batch, held = held, None
                if stop.is_set():
                    return  # what the fetch stage got ahead of us is fetched again by whoever goes on
                state = self._state
                if batch.generation != state.generation:
                    if batch.assignments == state.assignments:
                        state.restarted |= batch.restarted
                    continue
                batch, held = join_waiting(batch, receive)
                self._idle.clear()  # no checkpoint since the generation check: a revoke waits for this batch
                try:
                    await self._store_batch(batch)
                finally:
                    self._idle.set()

    async def _store_batch(self, batch: Batch) -> None:
        try:
            await store_or_split(self.name, batch.items, functools.partial(self._store, batch), quarantined, source)
        except _Lost:
            return
        for tp, last in batch.last.items():
            high = batch.highwater.get(tp)
            if high is not None:
                self.metrics.kafka_consumer_lag.labels(tp.topic, str(tp.partition)).set(max(0, high - last - 1))
                self._lagging.add(tp)
        self.metrics.ingest_duration.labels(TRANSPORT).observe(time.perf_counter() - batch.started)

    async def _store(self, batch: Batch, items: Sequence[Item]) -> str | None:
        """One write request for ``items``; None when stored (or found stored), else the writer's error."""
        state = self._state
        spans: dict[TopicPartition, tuple[Message, Message]] = {}
        for item in items:
            first, _ = spans.get(item.tp, (item.record, item.record))
            spans[item.tp] = (first, item.record)
        tps = list(spans)
        digests = {tp: position_digest(self.settings.group, last) for tp, (_, last) in spans.items()}
        poison = [(source(i), i.decoded.reason or "", i.decoded.raw) for i in items if i.decoded.batch is None]
        in_transaction = positions_hook(
            self.settings.group,
            [
                (tp.topic, tp.partition, first.offset, last.offset + 1, tp in batch.restarted)
                for tp, (first, last) in spans.items()
            ],
            [state.last_digest[tp] for tp in tps if tp in state.last_digest],
            list(digests.values()),
            poison,
        )
        good = [i.decoded.batch for i in items if i.decoded.batch is not None]
        rows = merge(good) if good else DecodedBatch()
        result = await store(self.writer, rows, in_transaction, reply_within=self.reply_within, what=self.name)
        if not result.ok:
            return result.error or "unknown error"
        if result.duplicate:
            await self._reposition(batch, tps, {tp: first.offset for tp, (first, _) in spans.items()})
            raise _Lost
        current = batch.generation == state.generation  # else a rebalance re-plans these partitions anyway
        for tp, (_, last) in spans.items():
            batch.restarted.discard(tp)
            self._commit[tp] = last.offset + 1
            if current:
                state.last_digest[tp] = digests[tp]
                if state.starts.get(tp, 0) == batch.starts[tp]:
                    state.resume[tp] = last.offset + 1
        self.metrics.broker_messages_consumed.labels(TRANSPORT).inc(len(items))
        if poison:
            self.metrics.broker_messages_quarantined.labels(TRANSPORT).inc(len(poison))
            for where, reason, _ in poison:
                log.warning("%s: quarantined %s: %s", self.name, where, reason)
        count_records(self.metrics, rows, TRANSPORT)
        return None

    async def _reposition(self, batch: Batch, tps: Sequence[TopicPartition], firsts: dict[TopicPartition, int]) -> None:
        """After a conflict: go on from what is stored (someone else stored these messages); every batch fetched
        behind this one is dropped and fetched again."""
        while True:
            try:
                rows = await self.database.get().fetch(
                    STORED_OFFSETS, self.settings.group, sorted({tp.topic for tp in tps})
                )
                break
            except UNAVAILABLE as exc:
                log.warning("%s: cannot read stored offsets (%r); retrying", self.name, exc)
                await trio.sleep(1)
        state = self._state
        if batch.assignments != state.assignments:
            return  # reassigned meanwhile: planned again from the stored positions
        stored = {(r["topic"], r["partition"]): r["next_offset"] for r in rows}
        targets = {tp: max(stored.get((tp.topic, tp.partition), 0), firsts[tp]) for tp in tps}
        for tp, offset in targets.items():
            state.last_digest.pop(tp, None)
            log.warning(
                "%s: %s/%d was stored elsewhere up to offset %d; going on from there",
                self.name,
                tp.topic,
                tp.partition,
                offset,
            )
        state.reposition(targets)

    def _forget_lag(self, tps: Iterable[TopicPartition]) -> None:
        """Partitions this consumer no longer reads: their lag is someone else's to report."""
        for tp in tps:
            if tp in self._lagging:
                self._lagging.discard(tp)
                with contextlib.suppress(KeyError):
                    self.metrics.kafka_consumer_lag.remove(tp.topic, str(tp.partition))
