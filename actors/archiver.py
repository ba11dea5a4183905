"""The archiver actor: rows past ``DATA_RETENTION_PERIOD`` days, as hourly Parquet objects (server.md §8).

A pass, at start-up and then every ``SCOUTER_ARCHIVE_INTERVAL_SECONDS``:

1. takes a session advisory lock on one pooled connection (``pg_try_advisory_lock``); another replica holding it
   means this pass is skipped. Every statement of the pass runs on that connection, so a replica whose connection
   died (and with it the lock) cannot mark anything afterwards;
2. plans the groups: per record kind (Spc, Psi, Custom), entity and UTC hour, the unarchived rows created before
   the cut-off (``now - retention`` floored to the hour: only whole hours are archived);
3. archives each group in **one REPEATABLE READ transaction**: select the rows, encode them as Parquet, upload the
   object, then mark exactly those rows archived (the UPDATE sees the same snapshot as the SELECT, so a row that
   arrived meanwhile is neither marked nor lost) and record the object in ``scouter.archive_log``. A crash, a
   cancellation or an error anywhere rolls the transaction back: nothing is marked, and the next pass writes the
   same object name again (same part number), overwriting the orphan;
4. rows that cannot be archived (an empty space, name or version; a negative PSI bin id or count) are never
   written to the store: they are copied to ``scouter.quarantine`` and deleted, in one
   transaction, and logged. Otherwise they would stay unarchived and keep their partitions forever;
5. a group that fails on its data (a created_at of -infinity or before 1677, stored before the decoder bounded it:
   'year 0 is out of range', 'cannot convert infinity to bigint') is rolled back, logged, counted
   (``scouter_archive_groups_failed_total``) and skipped: the pass carries on with the other groups. Its rows stay
   unarchived (in the default partition, which is never dropped) until someone deletes them. A failure of the
   store or the database still ends the pass (retried at the next one).

Late rows for an hour already archived become the next part of that hour (see `scouter.archive`). Once a
compaction has retired the hour's entries that is part 0 again, possibly the name of a retired object a stopped
compaction left in ``scouter.archive_retired``: the upload replaces it, and the group's transaction takes the name
off that list, so the compactor's clean-up never deletes the new object.

After each pass the actor compacts the complete days' hourly objects into one object per day
(`actors.archive_compactor`, under the same lock), unless built with ``compact=False``.

The transaction around the upload is one asyncio coroutine crossing once from trio (dependencies.md §4.2); the
Parquet encoding and the blocking obstore call run in a thread of the actor's own, off the event loop.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import attrs
import orjson
import trio
import trio_asyncio

from scouter.archive import KINDS, ArchiveKind, UnsafeSegment, archive_cutoff, object_key
from scouter.sql import (
    ARCHIVE_LOCK_KEY,
    INSERT_ARCHIVE_LOG,
    INSERT_QUARANTINE,
    NEXT_PART,
    archive_plan,
    archive_rows,
    delete_group,
    mark_archived,
)

from .archive_compactor import ArchiveCompactor, CompactionReport, compact_logged
from .archive_store import ObjectStore, StorageError, StoreHandle, UnarchivableRows, encode_parquet, put_object
from .database import UNAVAILABLE, Database, DatabaseHandle, acquire
from .metrics import ScouterMetrics

log = logging.getLogger("actors.archiver")

HOUR = timedelta(hours=1)
#: What one group's data can raise (timestamps out of range in Python or asyncpg, a statement PostgreSQL refuses for
#: these rows, such as 'cannot convert infinity to bigint'): that group is skipped, not the pass. Connection and
#: store failures (UNAVAILABLE, StorageError) are re-raised: they end the pass.
UNWRITABLE = (ValueError, OverflowError, asyncpg.PostgresError)
#: Writes one object: (store, key, bytes). Replaced in tests to fail or stall right after an upload.
Put = Callable[[ObjectStore, str, bytes], None]


def _utcnow() -> datetime:
    return datetime.now(UTC)


@attrs.frozen
class ArchiveGroup:
    """The rows of one kind, entity and UTC hour still to archive (``rows`` as counted when planning)."""

    kind: ArchiveKind
    space: str
    name: str
    version: str
    hour: datetime
    rows: int

    @property
    def label(self) -> str:
        return f"{self.kind.name} {self.space!r}/{self.name!r}/{self.version!r} {self.hour:%Y-%m-%d %H}h"


@attrs.frozen
class GroupResult:
    outcome: str  # "archived", "quarantined", "failed" (skipped, see UNWRITABLE) or "empty" (nothing left)
    rows: int = 0
    bytes: int = 0
    key: str | None = None
    reason: str | None = None


@attrs.frozen
class ArchiveProgress:
    """Where a pass is; handed to the progress callback after planning and after each group."""

    groups_done: int
    groups_total: int
    rows_done: int
    rows_total: int
    current: ArchiveGroup | None = None


@attrs.frozen
class ArchiveReport:
    skipped: bool = False  # another replica held the lock
    objects: int = 0
    rows: int = 0
    bytes: int = 0
    quarantined_rows: int = 0
    failed_groups: int = 0  # groups skipped because their rows cannot be written (see UNWRITABLE)
    kinds: tuple[str, ...] = ()  # the kinds that archived anything, in pass order
    stopped_early: bool = False  # asked to stop between groups; the rest waits for the next pass
    duration: float = 0.0


class ArchiveConflict(RuntimeError):
    """The rows marked archived are not the rows written: the group's transaction is rolled back."""


# --- asyncio side: one coroutine per unit of work, on the pass's connection ------------------------------------------


async def _release(pool: asyncpg.Pool, conn: asyncpg.Connection, locked: bool) -> None:
    try:
        if locked and not conn.is_closed():
            await conn.execute("SELECT pg_advisory_unlock($1)", ARCHIVE_LOCK_KEY)
    finally:
        await pool.release(conn)  # the pool's reset also runs pg_advisory_unlock_all()


async def _try_lock(conn: asyncpg.Connection) -> bool:
    return bool(await conn.fetchval("SELECT pg_try_advisory_lock($1)", ARCHIVE_LOCK_KEY))


async def _plan(conn: asyncpg.Connection, kinds: Sequence[ArchiveKind], cutoff: datetime) -> list[ArchiveGroup]:
    groups = []
    for kind in kinds:
        for r in await conn.fetch(archive_plan(kind), cutoff):
            groups.append(ArchiveGroup(kind, r["space"], r["name"], r["version"], r["hour"], r["rows"]))
    return groups


def _quarantine_payload(group: ArchiveGroup, reason: str, rows: Sequence[Sequence[Any]]) -> bytes:
    kind = group.kind
    return orjson.dumps(
        {
            "kind": kind.name,
            "space": group.space,
            "name": group.name,
            "version": group.version,
            "hour": group.hour.isoformat(),
            "reason": reason,
            "columns": ["created_us", kind.key, *kind.values],
            "rows": [list(row) for row in rows],
        }
    )


async def _archive_group(
    conn: asyncpg.Connection, group: ArchiveGroup, store: ObjectStore, put: Put, executor: ThreadPoolExecutor
) -> GroupResult:  # asyncio side: the whole group in one transaction
    kind = group.kind
    entity = (group.space, group.name, group.version)
    where = (*entity, group.hour, group.hour + HOUR)

    def off_loop(fn: Callable[..., Any], *args: Any) -> asyncio.Future[Any]:
        # Not loop.run_in_executor: under trio-asyncio that one cannot be cancelled, and a cancellation arriving
        # while it runs is lost (the coroutine carries on and commits). A wrapped future is cancelled at once; the
        # thread finishes in the background.
        return asyncio.wrap_future(executor.submit(fn, *args))

    async with conn.transaction(isolation="repeatable_read"):
        rows = await conn.fetch(archive_rows(kind), *where)
        if not rows:
            return GroupResult("empty")
        reason: str | None = None
        try:
            part = await conn.fetchval(NEXT_PART, kind.name, *entity, group.hour)
            key = object_key(kind, *entity, group.hour, part)
            data = await off_loop(encode_parquet, kind, *entity, rows)
        except (UnsafeSegment, UnarchivableRows) as exc:
            reason = str(exc)
        if reason is not None:
            await conn.execute(INSERT_QUARANTINE, f"archiver: {reason}", _quarantine_payload(group, reason, rows))
            deleted = int((await conn.execute(delete_group(kind), *where)).split()[-1])
            if deleted != len(rows):
                raise ArchiveConflict(f"{group.label}: quarantined {len(rows)} rows but deleted {deleted}")
            return GroupResult("quarantined", len(rows), reason=reason)
        await off_loop(put, store, key, data)
        # Only now, with the object safely stored: mark the rows and record the object, or neither.
        marked = int((await conn.execute(mark_archived(kind), *where)).split()[-1])
        if marked != len(rows):
            raise ArchiveConflict(f"{group.label}: wrote {len(rows)} rows but {marked} would be marked")
        # Logging it also takes its name off archive_retired (a retired object of that name was just overwritten).
        await conn.execute(INSERT_ARCHIVE_LOG, kind.name, *entity, group.hour, part, key, len(rows), len(data))
    return GroupResult("archived", len(rows), len(data), key)


# --- the actor -------------------------------------------------------------------------------------------------------


@attrs.define
class ArchiverActor:
    """Archives on a fixed period; a failed pass is logged and retried at the next one (never a crash loop)."""

    handle: DatabaseHandle
    stores: StoreHandle
    retention_days: int
    metrics: ScouterMetrics
    interval: float = 3600.0
    clock: Callable[[], datetime] = _utcnow
    kinds: tuple[ArchiveKind, ...] = KINDS
    put: Put = put_object
    #: Compact complete days into daily objects after each pass (`actors.archive_compactor`).
    compact: bool = True
    #: One thread for encoding and uploading, kept across passes: an upload left running by a cancelled pass
    #: finishes before the next pass's upload of the same object starts, so it can never overwrite the newer one.
    _executor: ThreadPoolExecutor = attrs.field(
        init=False, factory=lambda: ThreadPoolExecutor(1, thread_name_prefix="archiver")
    )

    compactor: ArchiveCompactor = attrs.field(init=False)

    @compactor.default
    def _make_compactor(self) -> ArchiveCompactor:
        return ArchiveCompactor(self.handle, self.stores, self.retention_days, self.clock, self.kinds)

    async def compact_once(self, stopping: Callable[[], bool] = lambda: False) -> CompactionReport:
        """One compaction pass now (see `actors.archive_compactor`)."""
        return await self.compactor.run_once(stopping)

    async def run(self, stop: trio.Event, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        # Ready at once: a first pass over a large backlog must not hold up the children started after this one.
        task_status.started()
        next_at = trio.current_time()
        while not stop.is_set():
            await self._logged_pass(stop)
            if self.compact and not stop.is_set():
                await compact_logged(self.compactor, stop.is_set)
            next_at += self.interval
            with trio.move_on_at(next_at):
                await stop.wait()

    async def _logged_pass(self, stop: trio.Event) -> None:
        try:
            report = await self.run_once(stopping=stop.is_set)
        except UNAVAILABLE as exc:
            log.warning("archive pass skipped, database unavailable: %r", exc)
        except Exception:  # the store down, bad credentials, a conflict: retried at the next pass
            log.exception("archive pass failed; retrying in %.0f s", self.interval)
        else:
            if report.skipped:
                log.debug("archive pass skipped: another replica is archiving")
            if report.failed_groups:
                log.error("archive pass skipped %d groups that cannot be archived", report.failed_groups)
            if report.objects or report.quarantined_rows:
                log.info(
                    "archived %d rows (%s) in %d objects, %d bytes, in %.1f s",
                    report.rows,
                    ", ".join(report.kinds) or "none",
                    report.objects,
                    report.bytes,
                    report.duration,
                )

    async def run_once(
        self,
        progress: Callable[[ArchiveProgress], None] | None = None,
        stopping: Callable[[], bool] = lambda: False,
    ) -> ArchiveReport:
        """One pass now. `progress` is called after planning and after each group; `stopping` is checked between
        groups (a group in flight always completes or rolls back). Raises on the first failing group."""
        db = self.handle.get()
        started = time.perf_counter()
        try:
            report = await self._pass(db, progress, stopping, started)
        except Exception:  # a cancellation (shutdown) is not a failure
            self.metrics.archive_passes.labels("failed").inc()
            raise
        if report.skipped:
            self.metrics.archive_passes.labels("skipped").inc()
            return report
        self.metrics.archive_passes.labels("ok").inc()
        self.metrics.archive_pass_duration.observe(report.duration)
        self.metrics.archive_last_success.set_to_current_time()
        return report

    async def _pass(
        self,
        db: Database,
        progress: Callable[[ArchiveProgress], None] | None,
        stopping: Callable[[], bool],
        started: float,
    ) -> ArchiveReport:
        aio = trio_asyncio.aio_as_trio
        conn = await aio(acquire)(db.pool, db.acquire_timeout)
        locked = False
        try:
            locked = await aio(_try_lock)(conn)
            if not locked:
                return ArchiveReport(skipped=True)
            cutoff = archive_cutoff(self.clock(), self.retention_days)
            groups = await aio(_plan)(conn, self.kinds, cutoff)
            return await self._archive(conn, groups, progress, stopping, started)
        finally:
            with trio.move_on_after(5, shield=True) as scope:
                await aio(_release)(db.pool, conn, locked)
            if scope.cancelled_caught:
                log.warning("archiver connection did not release within 5 s: terminating it")
                conn.terminate()

    async def _archive(
        self,
        conn: asyncpg.Connection,
        groups: list[ArchiveGroup],
        progress: Callable[[ArchiveProgress], None] | None,
        stopping: Callable[[], bool],
        started: float,
    ) -> ArchiveReport:
        # opened only when there is work: a server with nothing to archive never creates ./scouter_storage
        store = self.stores.get() if groups else None
        rows_total = sum(g.rows for g in groups)
        done_rows = archived = objects = written = quarantined = failed = 0
        kinds: list[str] = []
        if progress is not None:
            progress(ArchiveProgress(0, len(groups), 0, rows_total))
        stopped = False
        for index, group in enumerate(groups, 1):
            if stopping():
                stopped = True
                break
            assert store is not None
            kind = group.kind.name
            try:
                result = await trio_asyncio.aio_as_trio(_archive_group)(conn, group, store, self.put, self._executor)
            except UNWRITABLE as exc:
                if isinstance(exc, (StorageError, *UNAVAILABLE)):
                    raise
                failed += 1
                self.metrics.archive_groups_failed.labels(kind).inc()
                log.error("%s: %d rows cannot be archived, skipped; they stay unarchived until deleted: %r",
                          group.label, group.rows, exc)  # fmt: skip
                result = GroupResult("failed", reason=repr(exc))
            if result.outcome == "archived":
                objects += 1
                archived += result.rows
                written += result.bytes
                self.metrics.archive_rows.labels(kind).inc(result.rows)
                self.metrics.archive_bytes.labels(kind).inc(result.bytes)
                self.metrics.archive_objects.labels(kind).inc()
                if kind not in kinds:
                    kinds.append(kind)
            elif result.outcome == "quarantined":
                quarantined += result.rows
                self.metrics.archive_quarantined_rows.labels(kind).inc(result.rows)
                log.error("%s: %d rows cannot be archived (%s): moved to scouter.quarantine",
                          group.label, result.rows, result.reason)  # fmt: skip
            done_rows += group.rows
            if progress is not None:
                progress(ArchiveProgress(index, len(groups), done_rows, rows_total, group))
        return ArchiveReport(
            objects=objects,
            rows=archived,
            bytes=written,
            quarantined_rows=quarantined,
            failed_groups=failed,
            kinds=tuple(kinds),
            stopped_early=stopped,
            duration=time.perf_counter() - started,
        )
