"""The RabbitMQ consumer actor: one connection and channel per consumer, acknowledged only after COMMIT.

Each actor (``rabbitmq-0`` ... ``rabbitmq-N-1``) declares RABBITMQ_QUEUE exactly as the client does (not durable,
not exclusive, not auto-delete, no arguments: other flags fail with PRECONDITION_FAILED), sets prefetch
RABBITMQ_PREFETCH_COUNT and consumes with manual acks under the tag ``RABBITMQ_CONSUMER_TAG-<index>``.

Deliveries collect in a buffer on the asyncio side; the trio loop takes the whole buffer in one crossing (which
also sends the previous batch's single ``basic_ack(multiple=True)``), so the batch grows with the load, bounded by
the prefetch. The batch becomes **one** write request whose hook, in the writer's transaction, inserts the SHA-256
digest of every message body into ``scouter.ingested_messages`` and the poison messages into ``scouter.quarantine``.
A message redelivered after a crash between COMMIT and ack is found by its digest and only acknowledged: its rows
are never stored twice. (Two different messages cannot share a body: each record carries a nanosecond timestamp.)

The connection is a plain one: when it drops, every unacknowledged delivery goes back to the queue, the consumer
forgets its buffer, reports not ready, and reconnects with capped, jittered backoff; redeliveries are then
deduplicated by digest. (aio-pika's robust connection would restore the consumer on a new channel with its own
fixed reconnect interval, leaving buffered deliveries whose tags belong to the dead channel.)
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
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

log = logging.getLogger("actors.rabbitmq")

TRANSPORT = "rabbitmq"
T = TypeVar("T")

INSERT_DIGESTS = """
INSERT INTO scouter.ingested_messages (digest, source) SELECT unnest($1::bytea[]), 'rabbitmq'
ON CONFLICT DO NOTHING RETURNING digest
"""
DIGESTS_PRESENT = "SELECT digest FROM scouter.ingested_messages WHERE digest = ANY($1::bytea[])"
PRUNE_CHUNK = 10_000
PRUNE_DIGESTS = f"""
WITH old AS (
    SELECT digest FROM scouter.ingested_messages
    WHERE source = 'rabbitmq' AND created_at < now() - make_interval(secs => $1)
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
        self.buffer: list[AbstractIncomingMessage] = []
        self.arrived = asyncio.Event()
        self.lost: BaseException | None = None

    async def open(self) -> None:
        self.connection = await aio_pika.connect(
            self.settings.addr, timeout=10, client_properties={"connection_name": f"scouter {self.tag}"}
        )
        self.connection.close_callbacks.add(self._closed)
        channel = await self.connection.channel(publisher_confirms=False)
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
        if self.lost is not None:
            raise _LinkLost(f"connection lost before the ack: {self.lost!r}")
        await last.ack(multiple=True)

    async def close(self) -> None:
        self.buffer = []  # unacknowledged: the broker requeues them
        if self.connection is not None and not self.connection.is_closed:
            await self.connection.close()


@attrs.frozen
class _Item:
    message: AbstractIncomingMessage
    digest: bytes
    decoded: Decoded


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
            except (*UNAVAILABLE, RuntimeError, trio.TooSlowError) as exc:
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
        while not stop.is_set():
            messages = await _cross(link.exchange, ack, self.fetch_wait)
            ack = None
            if messages:
                await self._handle(messages)
                ack = max(messages, key=lambda m: m.delivery_tag or 0)
        if ack is not None:  # the last batch is stored: acknowledge it before closing
            with trio.move_on_after(5, shield=True):
                await _cross(link.ack, ack)

    async def _handle(self, messages: Sequence[AbstractIncomingMessage]) -> None:
        started = time.perf_counter()
        items: list[_Item] = []
        seen: set[bytes] = set()
        duplicates = 0
        for message in messages:
            digest = hashlib.sha256(message.body).digest()
            if digest in seen:  # the same message twice in one batch (a publisher's retry): store it once
                duplicates += 1
                continue
            seen.add(digest)
            items.append(_Item(message, digest, decode_message(message.body, self.max_future)))
        if any(m.redelivered for m in messages):
            items, skipped = await self._drop_stored(items)
            duplicates += skipped
        if items:
            await self._store_or_split(items)
        if duplicates:
            self.metrics.broker_messages_duplicate.labels(TRANSPORT).inc(duplicates)
            self.metrics.broker_messages_consumed.labels(TRANSPORT).inc(duplicates)
            log.info(
                "%s: %d message(s) were already stored (redelivered or published twice); acknowledging them",
                self.name,
                duplicates,
            )
        self.metrics.ingest_duration.labels(TRANSPORT).observe(time.perf_counter() - started)

    async def _drop_stored(self, items: list[_Item]) -> tuple[list[_Item], int]:
        """Leave out the messages whose digest is already stored."""
        while True:
            try:
                rows = await self.database.get().fetch(DIGESTS_PRESENT, [i.digest for i in items])
                break
            except (*UNAVAILABLE, RuntimeError) as exc:
                log.warning("%s: cannot check stored digests (%r); retrying", self.name, exc)
                await trio.sleep(1)
        present = {bytes(r["digest"]) for r in rows}
        kept = [i for i in items if i.digest not in present]
        return kept, len(items) - len(kept)

    async def _store_or_split(self, items: list[_Item]) -> None:
        await store_or_split(
            self.name, items, self._store,
            lambda item, reason: _Item(item.message, item.digest, Decoded(item.decoded.raw, None, reason)),
            lambda item: "a message",
        )  # fmt: skip

    async def _store(self, items: list[_Item]) -> str | None:
        """One write request for ``items``; None when stored (or found stored), else the writer's error."""
        while True:
            source = f"rabbitmq:{self.settings.queue}"
            poison = [(source, i.decoded.reason or "", i.decoded.raw) for i in items if i.decoded.batch is None]
            steps = [_insert_digests([i.digest for i in items])]
            if poison:
                steps.append(quarantine_step(poison))
            good = [i.decoded.batch for i in items if i.decoded.batch is not None]
            batch = merge(good) if good else DecodedBatch()
            result = await store(self.writer, batch, hook(steps), reply_within=self.reply_within, what=self.name)
            if not result.ok:
                return result.error or "unknown error"
            if not result.duplicate:
                break
            # Some digest appeared meanwhile (a late copy of this request, another consumer, a publisher's retry):
            # leave those out and store the rest.
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


def _insert_digests(digests: list[bytes]) -> Step:
    async def step(conn: asyncpg.Connection) -> None:
        inserted = await conn.fetch(INSERT_DIGESTS, digests)
        if len(inserted) != len(digests):
            raise Conflict

    return step


def _redacted(url: str) -> str:
    """The address without its password, for logs."""
    scheme, sep, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    if not at:
        return url
    user = credentials.split(":", 1)[0]
    return f"{scheme}{sep}{user}:***@{host}"
