"""The RabbitMQ consumer actor: one connection and channel per consumer, acknowledged only after COMMIT.

Each actor (``rabbitmq-0`` ... ``rabbitmq-N-1``) declares RABBITMQ_QUEUE exactly as the client does (not durable,
not exclusive, not auto-delete, no arguments: other flags fail with PRECONDITION_FAILED), sets prefetch
RABBITMQ_PREFETCH_COUNT and consumes with manual acks under the tag ``RABBITMQ_CONSUMER_TAG-<index>``.

Deliveries collect in a buffer on the asyncio side; the trio loop takes the whole buffer in one crossing (which
also sends the previous batch's single ``basic_ack(multiple=True)``), so the batch grows with the load, bounded by
the prefetch. The batch becomes **one** write request whose hook, in the writer's transaction, records a digest of
every message in ``scouter.ingested_messages`` and inserts the poison messages into ``scouter.quarantine``.

Which messages are recognised as already stored, and how, is `actors._rabbit_digests`.

The connection is a plain one: when it drops, every unacknowledged delivery goes back to the queue, the consumer
forgets its buffer, reports not ready, and reconnects with capped, jittered backoff; redeliveries are then
deduplicated by digest. (aio-pika's robust connection would restore the consumer on a new channel with its own
fixed reconnect interval, leaving buffered deliveries whose tags belong to the dead channel.)
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from typing import Any, TypeVar

import aio_pika
import asyncpg
import attrs
import trio
from aio_pika.abc import AbstractIncomingMessage
from aio_pika.exceptions import CONNECTION_EXCEPTIONS
from trio_asyncio import aio_as_trio

from config import RabbitSettings
from scouter.records import DEFAULT_MAX_FUTURE, DecodedBatch

from ._consuming import (
    Backoff,
    Decoded,
    close_bounded,
    count_records,
    decode_message,
    hook,
    merge,
    quarantine_step,
    store,
    store_or_split,
)
from ._rabbit_digests import (
    DIGESTS_PRESENT,
    SETTLE_COPIES,
    Item,
    identify,
    record_digests,
    request_mark,
    settle_step,
)
from .database import UNAVAILABLE, DatabaseHandle
from .health import HealthBoard
from .metrics import ScouterMetrics
from .writer import InboxSender

log = logging.getLogger("actors.rabbitmq")

TRANSPORT = "rabbitmq"
T = TypeVar("T")

PRUNE_CHUNK = 10_000
PRUNE_DIGESTS = f"""
WITH old AS (
    SELECT digest FROM scouter.ingested_messages
    WHERE source IN ('rabbitmq', 'rabbitmq-request') AND created_at < now() - make_interval(secs => $1)
    LIMIT {PRUNE_CHUNK}
)
DELETE FROM scouter.ingested_messages m USING old WHERE m.digest = old.digest
"""


class _LinkLost(ConnectionError):
    """The connection or the channel closed under us."""


class _Link:
    """The asyncio side of one consumer: connection, channel, and the buffer its deliveries land in."""

    def __init__(self, settings: RabbitSettings, tag: str) -> None:
        self.settings = settings
        self.tag = tag
        self.connection: aio_pika.abc.AbstractConnection | None = None
        self.channel: aio_pika.abc.AbstractChannel | None = None
        self.buffer: list[AbstractIncomingMessage] = []
        self.arrived = asyncio.Event()
        self.lost: BaseException | None = None

    async def open(self) -> None:
        # Not aio_pika.connect(): when the broker refuses us (a wrong password) that drops the half-made connection,
        # whose __del__ then schedules its close from the garbage collector, inside whatever trio-asyncio is doing
        # (a TrioInternalError). Held here, it is closed by `close()` like any other.
        self.connection = aio_pika.Connection(
            aio_pika.connection.make_url(self.settings.addr),
            client_properties={"connection_name": f"scouter {self.tag}"},
        )
        await self.connection.connect(timeout=10)
        self.connection.close_callbacks.add(self._closed)
        channel = self.channel = await self.connection.channel(publisher_confirms=False)
        channel.close_callbacks.add(self._closed)
        await channel.set_qos(prefetch_count=self.settings.prefetch)
        queue = await channel.declare_queue(
            self.settings.queue, durable=False, exclusive=False, auto_delete=False, arguments=None
        )
        await queue.consume(self._deliver, no_ack=False, consumer_tag=self.tag)

    async def _deliver(self, message: AbstractIncomingMessage) -> None:
        self.buffer.append(message)
        self.arrived.set()

    def _closed(self, sender: object, exc: BaseException | None = None) -> None:
        if self.lost is None:
            self.lost = exc or _LinkLost("closed")
        self.arrived.set()

    async def exchange(self, ack: AbstractIncomingMessage | None, wait: float) -> list[AbstractIncomingMessage]:
        """Acknowledge everything up to ``ack``, then take what was delivered (waiting up to ``wait`` for it)."""
        if ack is not None:
            await self.ack(ack)
        if not self.buffer and self.lost is None:
            try:
                await asyncio.wait_for(self.arrived.wait(), wait)
            except TimeoutError:
                pass
        if self.lost is not None:
            raise _LinkLost(f"connection lost: {self.lost!r}")
        batch, self.buffer = self.buffer, []
        self.arrived.clear()
        return batch

    async def ack(self, last: AbstractIncomingMessage) -> None:
        """Acknowledge up to ``last`` and return once the broker has processed it: basic.ack has no answer, but a
        channel's methods are handled in order, so the answer to a no-op basic.qos sent after it confirms it."""
        if self.lost is not None:
            raise _LinkLost(f"connection lost before the ack: {self.lost!r}")
        await last.ack(multiple=True)
        assert self.channel is not None
        await self.channel.set_qos(prefetch_count=self.settings.prefetch)

    async def close(self) -> None:
        self.buffer = []  # unacknowledged: the broker requeues them
        if self.connection is not None and not self.connection.is_closed:
            await self.connection.close()


@attrs.define(eq=False)
class RabbitConsumerActor:
    settings: RabbitSettings
    index: int
    database: DatabaseHandle
    writer: InboxSender
    board: HealthBoard
    metrics: ScouterMetrics
    reply_within: float = 30.0  # seconds to wait for the writer before re-sending the same batch
    fetch_wait: float = 0.5  # how often the loop looks at its stop event when idle
    prune_every: float = 300.0  # seconds between prunes of old digests (consumer 0 only)
    backoff: Backoff = attrs.Factory(Backoff)
    max_future: timedelta = DEFAULT_MAX_FUTURE  # SCOUTER_MAX_FUTURE_SECONDS: later created_at is quarantined
    _reachable: bool = False
    _connected_since: float | None = None
    #: Copies whose ack the broker has processed, still to be taken off their digests' ``unacked`` (by the next
    #: write request's transaction, or on their own when idle).
    _unsettled: Counter[bytes] = attrs.field(init=False, factory=Counter)

    @property
    def name(self) -> str:
        return f"rabbitmq-{self.index}"

    @property
    def consumer_tag(self) -> str:
        return f"{self.settings.consumer_tag}-{self.index}"

    async def run(self, stop: trio.Event, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Consume until ``stop``; a broker that is away is waited for, never a reason to crash."""
        self.board.failing(self.name, "connecting to RabbitMQ")
        task_status.started()  # the tree goes on starting; readiness says whether we are connected
        try:
            async with trio.open_nursery() as nursery:
                if self.index == 0:
                    nursery.start_soon(self._prune_digests, stop)
                await self._connect_and_consume(stop)
                nursery.cancel_scope.cancel(reason="consumer stopped")
        finally:
            self.board.forget(self.name)

    async def _connect_and_consume(self, stop: trio.Event) -> None:
        while not stop.is_set():
            link = _Link(self.settings, self.consumer_tag)
            try:
                with trio.fail_after(30):
                    await _cross(link.open)
                self._found()
                await self._consume(link, stop)
            except (_LinkLost, trio.TooSlowError) as exc:
                self._lost(exc)
            finally:
                await close_bounded(link.close, f"{self.name} connection")
            if not stop.is_set():
                await self.backoff.wait(stop)

    async def _prune_digests(self, stop: trio.Event) -> None:
        """Delete digests older than RABBITMQ_DIGEST_RETENTION_SECONDS, but only while this consumer has been
        connected for that long: after a crash the broker redelivers at once to whichever consumer is connected (or
        at its next connect), so the digests that matter are young then; nobody prunes while no one consumes."""
        retention = self.settings.digest_retention
        while True:
            with trio.move_on_after(self.prune_every):
                await stop.wait()
            if stop.is_set():
                return
            if self._connected_since is None or trio.current_time() - self._connected_since < retention:
                continue
            deleted = 0
            try:
                with trio.fail_after(60):
                    while True:
                        status = await self.database.get().execute(PRUNE_DIGESTS, retention)
                        count = int(status.split()[-1])
                        deleted += count
                        if count < PRUNE_CHUNK:
                            break
            except (*UNAVAILABLE, trio.TooSlowError) as exc:
                log.warning("%s: pruning old message digests failed (%r); trying again later", self.name, exc)
            if deleted:
                log.info("%s: pruned %d message digests older than %.0f s", self.name, deleted, retention)

    def _found(self) -> None:
        log.info("%s: consuming %r at %s", self.name, self.settings.queue, _redacted(self.settings.addr))
        self._reachable = True
        self._connected_since = trio.current_time()
        self.backoff.reset()
        self.board.ok(self.name)

    def _lost(self, exc: BaseException) -> None:
        self.metrics.broker_reconnects.labels(TRANSPORT).inc()
        self.board.failing(self.name, f"RabbitMQ: {exc!r}")
        if self._reachable:
            log.warning("%s: RabbitMQ connection lost: %r", self.name, exc)
        else:
            log.info("%s: RabbitMQ not reachable yet: %r", self.name, exc)
        self._reachable = False
        self._connected_since = None

    async def _consume(self, link: _Link, stop: trio.Event) -> None:
        ack: AbstractIncomingMessage | None = None
        copies: Counter[bytes] = Counter()
        while not stop.is_set():
            messages = await _cross(link.exchange, ack, self.fetch_wait)
            if ack is not None:
                self._unsettled.update(copies)
            ack = None
            if messages:
                copies = await self._handle(messages, link)
                ack = max(messages, key=lambda m: m.delivery_tag or 0)
            elif self._unsettled:
                await self._settle()
        if ack is not None:  # the last batch is stored: acknowledge it before closing
            with trio.move_on_after(5, shield=True):
                await _cross(link.ack, ack)
                self._unsettled.update(copies)
                await self._settle()

    async def _handle(self, messages: Sequence[AbstractIncomingMessage], link: _Link) -> Counter[bytes]:
        """Store the batch; the copies of each digest it settles once acknowledged (stored or matched)."""
        started = time.perf_counter()
        items: list[Item] = []
        copies: Counter[bytes] = Counter()
        duplicates = 0
        for message in messages:
            digest, by_id = identify(message)
            copies[digest] += 1
            if by_id and copies[digest] > 1:  # one message id twice in one batch (a producer's retry): store it once
                duplicates += 1
                continue
            items.append(Item(message, digest, by_id, decode_message(message.body, self.max_future)))
        if any(i.checked for i in items):
            items, skipped = await self._drop_stored(items)
            duplicates += skipped
        if items:
            await self._store_or_split(items, link)
        if duplicates:
            self.metrics.broker_messages_duplicate.labels(TRANSPORT).inc(duplicates)
            self.metrics.broker_messages_consumed.labels(TRANSPORT).inc(duplicates)
            log.info(
                "%s: %d message(s) were already stored (redelivered or published twice); acknowledging them",
                self.name,
                duplicates,
            )
        self.metrics.ingest_duration.labels(TRANSPORT).observe(time.perf_counter() - started)
        return copies

    async def _drop_stored(self, items: list[Item]) -> tuple[list[Item], int]:
        """Leave out the messages that may have been delivered before and are recorded: one with a message id when
        its id is; redelivered ones as long as stored copies of their body wait for an ack (the rest were in
        flight, never stored)."""
        recorded = await self._recorded([i.digest for i in items if i.checked])
        unmatched = dict(recorded)
        kept = []
        for item in items:
            if item.by_id and item.digest in recorded:
                continue
            if item.redelivered:
                if unmatched.get(item.digest, 0) > 0:
                    unmatched[item.digest] -= 1
                    continue
                item = attrs.evolve(item, seen=recorded.get(item.digest, 0))
            kept.append(item)
        return kept, len(items) - len(kept)

    async def _recorded(self, digests: list[bytes]) -> dict[bytes, int]:
        """Which of `digests` scouter.ingested_messages holds, with their unacknowledged copies (asked until the
        database answers)."""
        while True:
            try:
                rows = await self.database.get().fetch(DIGESTS_PRESENT, digests)
                break
            except UNAVAILABLE as exc:
                log.warning("%s: cannot check stored digests (%r); retrying", self.name, exc)
                await trio.sleep(1)
        return {bytes(r["digest"]): r["unacked"] for r in rows}

    async def _settle(self) -> None:
        """Take the acknowledged copies off their digests now (nothing to store that could carry them)."""
        copies, self._unsettled = self._unsettled, Counter()
        digests = sorted(copies)
        try:
            with trio.fail_after(10):
                await self.database.get().execute(SETTLE_COPIES, digests, [copies[d] for d in digests])
        except (*UNAVAILABLE, RuntimeError, asyncpg.PostgresError, trio.TooSlowError) as exc:
            # Harmless for exactly-once: until pruned, a redelivered message of such a body is matched once more.
            log.warning("%s: could not settle %d acknowledged digests: %r", self.name, len(digests), exc)

    async def _store_or_split(self, items: list[Item], link: _Link) -> None:
        await store_or_split(
            self.name, items, functools.partial(self._store, link=link),
            lambda item, reason: attrs.evolve(item, decoded=Decoded(item.decoded.raw, None, reason)),
            lambda item: "a message",
        )  # fmt: skip

    async def _store(self, items: list[Item], link: _Link) -> str | None:
        """One write request for ``items``; None when stored (or found stored), else the writer's error. Raises
        `_LinkLost` when the connection they came on is lost before they are stored: the broker redelivers them."""
        while True:
            source = f"rabbitmq:{self.settings.queue}"
            poison = [(source, i.decoded.reason or "", i.decoded.raw) for i in items if i.decoded.batch is None]
            # A mark of this very request, so that when the writer answers late and `store` sends the request again,
            # whichever copy commits second finds the mark and stores nothing (first deliveries are never matched
            # by their digests).
            mark = request_mark()
            steps = [record_digests(items, mark, lambda: link.lost is not None)]
            if poison:
                steps.append(quarantine_step(poison))
            settle, self._unsettled = self._unsettled, Counter()
            if settle:  # acknowledged copies ride along: no statement of their own
                steps.append(settle_step(settle))
            good = [i.decoded.batch for i in items if i.decoded.batch is not None]
            batch = merge(good) if good else DecodedBatch()
            result = await store(self.writer, batch, hook(steps), reply_within=self.reply_within, what=self.name)
            stored = result.ok and (not result.duplicate or mark in await self._recorded([mark]))
            if not stored:  # rolled back, settling too (never restored when unsure: settling twice would be unsafe)
                self._unsettled.update(settle)
            if not result.ok:
                return result.error or "unknown error"
            if stored:
                break  # now, or by an earlier copy of this request
            if link.lost is not None:
                raise _LinkLost(f"connection lost while its batch waited for the writer: {link.lost!r}")
            # The digest of a message that may have been delivered before appeared meanwhile (another consumer, a
            # producer's retry): leave those out and store the rest.
            items, skipped = await self._drop_stored(items)
            if skipped:
                self.metrics.broker_messages_duplicate.labels(TRANSPORT).inc(skipped)
                self.metrics.broker_messages_consumed.labels(TRANSPORT).inc(skipped)
            if not items:
                return None
        self.metrics.broker_messages_consumed.labels(TRANSPORT).inc(len(items))
        if poison:
            self.metrics.broker_messages_quarantined.labels(TRANSPORT).inc(len(poison))
            for _, reason, _ in poison:
                log.warning("%s: quarantined a message from %r: %s", self.name, self.settings.queue, reason)
        count_records(self.metrics, batch, TRANSPORT)
        return None


async def _cross(fn: Callable[..., Awaitable[T]], *args: Any) -> T:
    """One crossing into the link (asyncio side); every broker or network failure becomes `_LinkLost`."""
    try:
        return await aio_as_trio(fn)(*args)
    except _LinkLost:
        raise
    except CONNECTION_EXCEPTIONS as exc:
        raise _LinkLost(repr(exc)) from exc


def _redacted(url: str) -> str:
    """The address without its password, for logs."""
    scheme, sep, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    if not at:
        return url
    user = credentials.split(":", 1)[0]
    return f"{scheme}{sep}{user}:***@{host}"
