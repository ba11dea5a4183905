"""What the Kafka and RabbitMQ consumers share: decoding broker messages, the writer hook, quarantine, backoff.

A consumed batch becomes **one** write request: the good messages' rows, plus a hook that the writer runs in the same
transaction before the rows (transport positions or message digests, quarantined messages). The hook runs its
statements in a savepoint; when it finds that the messages were already stored it raises `Conflict` inside the
savepoint, which undoes only the hook's own statements, and answers False so that the writer skips the rows.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from itertools import chain
from typing import TypeVar

import asyncpg
import attrs
import msgspec
import trio
from trio_asyncio import aio_as_trio

from scouter.entities import UnknownUid, resolve_uids, uids_of
from scouter.records import DEFAULT_MAX_FUTURE, CreatedAtBounds, DecodedBatch, DecodeError, decode_server_records

from .database import UNAVAILABLE, DatabaseHandle
from .entity_cache import EntityCache
from .metrics import ScouterMetrics
from .writer import InboxSender, InTransaction, WriteResult, write

log = logging.getLogger("actors.consumers")

#: Upstream skips bigger payloads; we quarantine them (server.md §4.3).
MAX_MESSAGE_BYTES = 10 * 1024 * 1024

QUARANTINE_SQL = (
    "INSERT INTO scouter.quarantine (source, reason, raw) SELECT * FROM unnest($1::text[], $2::text[], $3::bytea[])"
)

#: One hook step: an asyncio coroutine function run with the writer's connection, inside the hook's savepoint.
Step = Callable[[asyncpg.Connection], Awaitable[None]]
Item = TypeVar("Item")


class Conflict(Exception):
    """Raised by a hook step: the messages are already stored (or someone else moved the position)."""


class Decoded(msgspec.Struct, frozen=True, gc=False):
    """One broker message after decoding: rows to store, or the reason it goes to quarantine.

    Not tracked by the garbage collector (it holds no cycle): a Kafka backlog keeps thousands of them in flight, and
    every collection would walk them all."""

    raw: bytes
    batch: DecodedBatch | None
    reason: str | None = None


def decode_message(
    raw: bytes | None, max_future: timedelta = DEFAULT_MAX_FUTURE, *, bounds: CreatedAtBounds | None = None
) -> Decoded:
    """Decode a broker payload; anything that is not a ServerRecords message of at most 10 MiB, with every
    ``created_at`` from 1970 to ``max_future`` ahead of now (SCOUTER_MAX_FUTURE_SECONDS), is poison. ``bounds``,
    when given, replaces the bounds around now (one computation for a slice of a batch instead of one per message)."""
    raw = raw if raw is not None else b""
    if len(raw) > MAX_MESSAGE_BYTES:
        return Decoded(raw, None, f"message of {len(raw)} bytes exceeds the limit of {MAX_MESSAGE_BYTES} bytes")
    if bounds is None:
        bounds = CreatedAtBounds.around(datetime.now(UTC), max_future)
    try:
        return Decoded(raw, decode_server_records(raw, bounds))
    except DecodeError as exc:
        return Decoded(raw, None, exc.reason)


async def resolve_entities(
    name: str,
    decoded: Sequence[Decoded],
    entities: EntityCache,
    database: DatabaseHandle,
    metrics: ScouterMetrics,
    transport: str,
) -> list[Decoded]:
    """Each message's 0.25 records (named by uid) filed under their own entity; a message naming a uid no profile
    has, or a uid of another drift type, goes to quarantine whole (never stored under a guess). Out-of-scope
    payloads (traces, tags, GenAI records) are counted and logged. The database being away is waited out."""
    uids: set[str] = set()
    for item in decoded:
        if item.batch is not None:
            uids |= uids_of(item.batch.uid_rows)
            for kind, count in item.batch.dropped:
                metrics.records_dropped.labels(kind, transport).inc(count)
                log.info("%s: dropped %d %s payload(s): not served by this server", name, count, kind)
    if not uids:
        return list(decoded)
    while True:
        try:
            found = await entities.lookup(database.get(), uids)
            break
        except (*UNAVAILABLE, RuntimeError) as exc:
            log.warning("%s: cannot look up record uids (%r); retrying", name, exc)
            await trio.sleep(1)
    resolved: list[Decoded] = []
    for item in decoded:
        if item.batch is not None and item.batch.uid_rows:
            try:
                item = Decoded(item.raw, resolve_uids(item.batch, found))
            except UnknownUid as exc:
                item = Decoded(item.raw, None, exc.reason)
        resolved.append(item)
    return resolved


def merge(batches: Sequence[DecodedBatch]) -> DecodedBatch:
    """The rows of several messages as one batch (one COPY per table in the writer)."""
    if len(batches) == 1:
        return batches[0]
    return DecodedBatch(
        spc_rows=tuple(chain.from_iterable(b.spc_rows for b in batches)),
        psi_rows=tuple(chain.from_iterable(b.psi_rows for b in batches)),
        custom_rows=tuple(chain.from_iterable(b.custom_rows for b in batches)),
        observability_rows=tuple(chain.from_iterable(b.observability_rows for b in batches)),
        first_space=next((b.first_space for b in batches if b.first_space is not None), None),
    )


def quarantine_step(entries: Sequence[tuple[str, str, bytes]]) -> Step:
    """A hook step storing (source, reason, raw) of poison messages."""
    sources = [source for source, _, _ in entries]
    reasons = [reason for _, reason, _ in entries]
    raws = [raw for _, _, raw in entries]

    async def step(conn: asyncpg.Connection) -> None:
        await conn.execute(QUARANTINE_SQL, sources, reasons, raws)

    return step


def hook(steps: Sequence[Step]) -> InTransaction:
    """The writer hook running ``steps`` in one savepoint; False (rows skipped) when a step raises `Conflict`."""

    async def run(conn: asyncpg.Connection) -> bool:  # asyncio side, inside the writer's transaction
        try:
            async with conn.transaction():  # nested: a savepoint
                for step in steps:
                    await step(conn)
        except Conflict:
            return False
        return True

    return run


_KINDS = (("spc", "spc_rows"), ("psi", "psi_rows"), ("custom", "custom_rows"), ("observability", "observability_rows"))


def count_records(metrics: ScouterMetrics, batch: DecodedBatch, transport: str) -> None:
    """scouter_records_received by kind, as the HTTP route counts them."""
    for kind, attribute in _KINDS:
        rows = getattr(batch, attribute)
        if rows:
            metrics.records_received.labels(kind, transport).inc(len(rows))


async def store(
    writer: InboxSender, batch: DecodedBatch, in_transaction: InTransaction, *, reply_within: float, what: str
) -> WriteResult:
    """Write until the writer answers; no answer within ``reply_within``, or a writer that stopped before the commit,
    is retried (the hook makes a late first attempt harmless)."""
    while True:
        try:
            result = await write(writer, batch, in_transaction=in_transaction, timeout=reply_within)
        except trio.TooSlowError:
            log.warning("%s: no answer from the writer within %.0f s; retrying the same batch", what, reply_within)
            continue
        if not result.unavailable:
            return result
        # the writer died holding the batch: not the messages' fault (splitting or quarantining them would be wrong)
        log.warning("%s: %s; sending the same batch again", what, result.error)
        await trio.sleep(0.5)


async def store_or_split(
    name: str,
    items: list[Item],
    store_items: Callable[[Sequence[Item]], Awaitable[str | None]],
    quarantined: Callable[[Item, str], Item],
    describe: Callable[[Item], str],
) -> None:
    """Store ``items`` as one request; when the database rejects it, store them one by one (three tries each) and
    quarantine a message it keeps rejecting, so one bad message never blocks the rest. Raises when even the
    quarantine cannot be stored: then something is wrong beyond one message, and the supervisor takes over."""
    error = await store_items(items)
    if error is None:
        return
    if len(items) > 1:
        log.warning("%s: a batch of %d messages failed (%s); storing them one by one", name, len(items), error)
    for item in items:
        for attempt in range(3):
            error = await store_items([item])
            if error is None:
                break
            await trio.sleep(0.5 * (attempt + 1))
        else:
            reason = f"rejected by the database: {error}"
            log.error("%s: quarantining %s: %s", name, describe(item), reason)
            if await store_items([quarantined(item, reason)]) is not None:
                raise RuntimeError(f"cannot even quarantine {describe(item)}")


@attrs.define
class Backoff:
    """Capped exponential backoff with ±20 % jitter, so that many consumers do not reconnect in step."""

    initial: float = 0.5
    maximum: float = 30.0
    _next: float = attrs.field(init=False, default=0.0)

    def __attrs_post_init__(self) -> None:
        self._next = self.initial

    def reset(self) -> None:
        self._next = self.initial

    def delay(self) -> float:
        current = self._next
        self._next = min(self._next * 2, self.maximum)
        return current * random.uniform(0.8, 1.2)

    async def wait(self, stop: trio.Event) -> None:
        """Sleep for the next delay, or until ``stop`` is set."""
        with trio.move_on_after(self.delay()):
            await stop.wait()


async def close_bounded(close: Callable[[], Awaitable[object]], what: str, limit: float = 5.0) -> None:
    """Run an asyncio close (through trio-asyncio) shielded from cancellation, but never longer than ``limit``."""
    with trio.move_on_after(limit, shield=True) as scope:
        try:
            await aio_as_trio(close)()
        except Exception as exc:  # closing a broken client fails in many ways; it is gone either way
            log.debug("closing %s failed: %r", what, exc)
    if scope.cancelled_caught:
        log.warning("closing %s took over %.0f s; abandoned", what, limit)
