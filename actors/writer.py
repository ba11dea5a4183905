"""The batched writer actor: every record from every transport becomes durable here, in group commits.

Consumes ``WriteRequest``s from one bounded inbox (a full inbox slows the senders down: back-pressure). Takes
whatever is queued (natural batching: the busier the server, the bigger the batch), COPYs each table's rows in one
transaction, and answers every sender only after COMMIT, so a transport acknowledges only what is durable.

* A data error (a bad row) does not sink the others: the batch is retried one request per transaction and only the
  offending sender gets the error.
* The database being unavailable is retried with capped backoff; senders wait (or give up on their own timeout).
  A connection lost during a transaction may have lost only COMMIT's reply: before writing the group again, the
  writer asks PostgreSQL what became of that transaction (``pg_xact_status`` of the id it read inside it), so a
  committed group is answered, not stored twice (HTTP rows have no dedupe hook to catch that).
* On stop it drains what is queued, then returns. The tree owns the inbox, so a restarted writer finds it intact.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import operator
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from itertools import chain
from typing import Any

import asyncpg
import attrs
import trio

from scouter.copy_binary import Unencodable, copy_chunks, encodes
from scouter.records import CUSTOM_COLUMNS, OBSERVABILITY_COLUMNS, PSI_COLUMNS, SPC_COLUMNS, DecodedBatch
from scouter.sql import CURRENT_XACT_ID, END_ORPHANED_TRANSACTION, XACT_STATUS

from ._spc_summaries import SpcSummaryWriter
from .database import UNAVAILABLE, DatabaseHandle
from .metrics import ScouterMetrics

log = logging.getLogger("actors.writer")


@attrs.frozen
class HookAnswer:
    """What a hook may answer instead of a bare bool: whether the rows are new, and the transaction's id (xid8 as
    bigint), which the hook read in one of its own statements (``pg_current_xact_id()``), sparing the writer that
    round trip."""

    new: bool
    xid: int


#: Run in the writer's transaction before the rows (asyncio side). Returns False when the rows are already stored
#: (a redelivered message): they are then skipped and the sender is told so.
InTransaction = Callable[[asyncpg.Connection], Awaitable["bool | HookAnswer"]]


@attrs.frozen
class WriteResult:
    ok: bool
    rows: int = 0
    duplicate: bool = False
    error: str | None = None
    #: The writer stopped (crashed, or cancelled at the end of its grace) before the COMMIT: nothing is wrong with
    #: the records, send them again once the writer is back (HTTP answers 503, a consumer resends the batch).
    unavailable: bool = False


@attrs.frozen(eq=False)
class WriteRequest:
    batch: DecodedBatch
    reply: trio.MemorySendChannel[WriteResult]
    in_transaction: InTransaction | None = None


@attrs.frozen(eq=False)
class _Drain:
    """Queued behind everything else when the writer is asked to stop; only its own writer honours it."""

    owner: object


Inbox = trio.MemoryReceiveChannel["WriteRequest | _Drain"]
InboxSender = trio.MemorySendChannel["WriteRequest | _Drain"]


def open_inbox(capacity: int = 1000) -> tuple[InboxSender, Inbox]:
    return trio.open_memory_channel["WriteRequest | _Drain"](capacity)


async def write(
    inbox: InboxSender,
    batch: DecodedBatch,
    *,
    in_transaction: InTransaction | None = None,
    timeout: float = 30.0,  # noqa: ASYNC109 - a reply deadline, not a cancel scope to hand in
) -> WriteResult:
    """Hand ``batch`` to the writer and wait for its durable answer (TooSlowError after ``timeout``)."""
    reply_send, reply_recv = trio.open_memory_channel[WriteResult](1)  # one slot: the writer never blocks on us
    with reply_send, reply_recv, trio.fail_after(timeout):
        await inbox.send(WriteRequest(batch, reply_send, in_transaction))
        return await reply_recv.receive()


_TABLES = (
    ("spc_drift", SPC_COLUMNS, "spc_rows"),
    ("psi_drift", PSI_COLUMNS, "psi_rows"),
    ("custom_drift", CUSTOM_COLUMNS, "custom_rows"),
    ("observability_metric", OBSERVABILITY_COLUMNS, "observability_rows"),
)
#: The drift tables' rows are COPYed in created_at order (their first column). A group joins requests from several
#: senders (Kafka partitions, HTTP clients), each in time order: interleaved, their rows land all over the created_at
#: indexes, which cost PostgreSQL 11-19% more per row in `bench_queues`' Kafka backlog than the same rows in order.
#: Sorting the few ordered runs is a merge, a few milliseconds a transaction.
_IN_TIME_ORDER = frozenset({"spc_drift", "psi_drift", "custom_drift"})
_CREATED_AT = operator.itemgetter(0)


@attrs.define
class _Attempt:
    """What one transaction learnt before its COMMIT: enough to find out later whether that COMMIT happened."""

    xid: int | None = None  # the transaction's id (xid8), read inside it
    pid: int | None = None  # its server process, ended if it still holds the transaction open
    fresh: list[bool] | None = None  # per request, whether its rows were new (set just before COMMIT)


async def _copy(
    conn: asyncpg.Connection, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], *, ours: bool
) -> None:
    """COPY ``rows`` into ``table`` (asyncio side): the drift tables' rows, when ``ours``, as our own binary stream
    (`scouter.copy_binary`: asyncpg's encoder takes ~2.5 µs a row, most of it in its timestamptz check, ours ~1 µs),
    encoded chunk by chunk while PostgreSQL copies; anything else through asyncpg."""
    if not (ours and encodes(table)):
        await conn.copy_records_to_table(table, records=rows, columns=columns, schema_name="scouter")
        return

    async def chunks() -> AsyncIterator[bytes]:  # asyncpg takes an async iterable, and asks for the next chunk
        for chunk in copy_chunks(table, rows):  # only once the one before is on its way
            yield chunk

    await conn.copy_to_table(table, source=chunks(), columns=columns, schema_name="scouter", format="binary")


async def _commit(
    conn: asyncpg.Connection, requests: Sequence[WriteRequest], attempt: _Attempt, spc: SpcSummaryWriter
) -> list[bool]:
    """One transaction for all ``requests`` (asyncio side); per request, whether its rows were new. SPC rows get
    their summaries in the same transaction (`actors._spc_summaries`): both are stored, or neither."""
    try:
        return await _transaction(conn, requests, attempt, spc, ours=True)
    except Unencodable as exc:  # rolled back: written again, asyncpg encoding the rows (and wording their fault)
        log.info("a row our COPY encoder cannot take (%s); writing the group with asyncpg's", exc)
        attempt.xid = attempt.pid = attempt.fresh = None  # the aborted transaction's, to settle nothing
        return await _transaction(conn, requests, attempt, spc, ours=False)


async def _transaction(
    conn: asyncpg.Connection, requests: Sequence[WriteRequest], attempt: _Attempt, spc: SpcSummaryWriter, *, ours: bool
) -> list[bool]:
    fresh: list[bool] = []
    async with conn.transaction():
        attempt.pid = conn.get_server_pid()
        for request in requests:
            answer = True if request.in_transaction is None else await request.in_transaction(conn)
            if isinstance(answer, HookAnswer):
                attempt.xid, answer = answer.xid, answer.new
            fresh.append(answer)
        if attempt.xid is None:  # no hook read it: known before COMMIT is sent, all a lost reply needs
            attempt.xid = int(await conn.fetchval(CURRENT_XACT_ID))
        kept = [r.batch for r, new in zip(requests, fresh, strict=True) if new]
        for table, columns, attribute in _TABLES:
            rows = list(chain.from_iterable(getattr(batch, attribute) for batch in kept))
            if table in _IN_TIME_ORDER:
                with contextlib.suppress(TypeError):  # naive and aware created_at (only a hand-built batch): as sent
                    rows.sort(key=_CREATED_AT)
            if rows:
                copy = functools.partial(_copy, conn, table, columns, rows, ours=ours)
                await (spc.store_with(conn, rows, copy) if table == "spc_drift" else copy())
        attempt.fresh = fresh
    return fresh


async def _committed(conn: asyncpg.Connection, attempt: _Attempt) -> bool:
    """Whether ``attempt``'s transaction committed (asyncio side), once PostgreSQL knows for sure."""
    while True:
        try:
            status = await conn.fetchval(XACT_STATUS, str(attempt.xid))
        except asyncpg.InvalidParameterValueError:  # "in the future": another server (a failover) never saw it
            return False
        if status == "committed":
            return True
        if status != "in progress":  # aborted; or None, too old to know: writing again risks a duplicate, not a loss
            return False
        # Its server process has not noticed yet that we are gone (a half-open connection). End it: a COMMIT it has
        # begun still completes, anything else is rolled back, and then the answer is final.
        try:
            await conn.execute(END_ORPHANED_TRANSACTION, attempt.pid, str(attempt.xid))
        except asyncpg.InsufficientPrivilegeError:  # not ours to end (a pooler's session): wait for the server
            await asyncio.sleep(1.0)
        await asyncio.sleep(0.05)


@attrs.define
class WriterActor:
    inbox: Inbox
    inbox_sender: InboxSender
    handle: DatabaseHandle
    metrics: ScouterMetrics
    max_rows: int = 50_000  # per transaction; bounds memory and lock time
    gather_rounds: int = 6  # scheduler rounds a transaction waits for requests about to be sent
    stats: dict[str, int] = attrs.Factory(lambda: {"requests": 0, "rows": 0, "flushes": 0, "errors": 0})
    spc_summaries: SpcSummaryWriter = attrs.Factory(SpcSummaryWriter)

    def statistics(self) -> dict[str, int]:
        return {**self.stats, "queued": self.inbox.statistics().current_buffer_used}

    async def run(self, stop: trio.Event, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        token = object()
        task_status.started()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._queue_drain_marker, stop, token)
            draining = False
            while not draining:
                first = await self.inbox.receive()
                if isinstance(first, _Drain):
                    draining = first.owner is token
                    continue
                group, rows = [first], first.batch.total
                for round_ in range(self.gather_rounds + 1):
                    while rows < self.max_rows:  # whatever else is already waiting joins this transaction
                        try:
                            item = self.inbox.receive_nowait()
                        except trio.WouldBlock:
                            break
                        if isinstance(item, _Drain):
                            draining = draining or item.owner is token
                            continue
                        group.append(item)
                        rows += item.batch.total
                    if draining or rows >= self.max_rows or round_ == self.gather_rounds:
                        break
                    # Senders answered by the last COMMIT are runnable and about to send their next request (a broker
                    # consumer's next batch is already decoded): let them, so it joins this transaction instead of
                    # paying a COMMIT of its own. A checkpoint, not a timer: no wait when nobody is about to send.
                    await trio.lowlevel.checkpoint()
                self.metrics.writer_queue_depth.set(self.inbox.statistics().current_buffer_used)
                await self._flush(group)
            nursery.cancel_scope.cancel(reason="writer drained")
        log.info("writer drained its inbox")

    async def _queue_drain_marker(self, stop: trio.Event, token: object) -> None:
        await stop.wait()
        await self.inbox_sender.send(_Drain(token))  # behind everything already queued

    async def _flush(self, group: list[WriteRequest]) -> None:
        started = time.perf_counter()
        try:
            fresh = await self._commit_with_retry(group)
        except asyncpg.PostgresError as exc:  # a bad row somewhere: find whose
            log.warning("group commit of %d requests failed (%r); retrying one by one", len(group), exc)
            for request in group:
                await self._flush_alone(request)
            return
        except BaseException:
            stopped = WriteResult(False, error="the writer stopped before the commit", unavailable=True)
            for request in group:
                self._answer(request, stopped)
            raise
        self.metrics.writer_flush_duration.observe(time.perf_counter() - started)
        total = 0
        for request, new in zip(group, fresh, strict=True):
            rows = request.batch.total if new else 0
            total += rows
            self._answer(request, WriteResult(True, rows=rows, duplicate=not new))
        self._count(group, fresh, total)

    async def _flush_alone(self, request: WriteRequest) -> None:
        try:
            (new,) = await self._commit_with_retry([request])
        except asyncpg.PostgresError as exc:
            self.stats["errors"] += 1
            self.metrics.writer_failures.labels(type(exc).__name__).inc()
            self._answer(request, WriteResult(False, error=f"{type(exc).__name__}: {exc}"))
            return
        self._answer(request, WriteResult(True, rows=request.batch.total if new else 0, duplicate=not new))
        self._count([request], [new], request.batch.total if new else 0)

    async def _commit_with_retry(self, group: list[WriteRequest]) -> list[bool]:
        delay = 0.1
        unsure: _Attempt | None = None  # a transaction cut off after it began: it may have committed
        while True:
            attempt = _Attempt()
            try:
                if unsure is not None:
                    if await self.handle.get().run(_committed, unsure):
                        log.warning("the lost COMMIT had gone through: the group is stored, not writing it again")
                        assert unsure.fresh is not None  # set before COMMIT was sent
                        return unsure.fresh
                    unsure = None
                return await self.handle.get().run(_commit, group, attempt, self.spc_summaries)
            except UNAVAILABLE as exc:
                if attempt.xid is not None:
                    unsure = attempt
                log.warning("database unavailable for the writer (%r); retrying in %.1f s", exc, delay)
            await trio.sleep(delay * random.uniform(0.8, 1.2))
            delay = min(delay * 2, 5.0)

    def _count(self, group: Sequence[WriteRequest], fresh: Sequence[bool], total: int) -> None:
        self.stats["requests"] += len(group)
        self.stats["rows"] += total
        self.stats["flushes"] += 1
        self.metrics.writer_batch_size.observe(total)
        for table, _, attribute in _TABLES:
            count = sum(len(getattr(r.batch, attribute)) for r, new in zip(group, fresh, strict=True) if new)
            if count:
                self.metrics.writer_rows.labels(table).inc(count)

    @staticmethod
    def _answer(request: WriteRequest, result: WriteResult) -> None:
        try:
            request.reply.send_nowait(result)
        except (trio.ClosedResourceError, trio.BrokenResourceError, trio.WouldBlock):
            log.debug("a sender gave up before its answer")
