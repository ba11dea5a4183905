"""Daily compaction of the archive: a complete day's hourly objects become one object per kind, entity and day.

A month of hourly objects is 720 fetches and decodes for every cold query; the same month compacted is 30. The
compacted object lives in the day's folder of the same Hive layout (``…/{kind}/year=/month=/day=/``), so DuckDB,
Spark or Trino still read the archive as it stands, and it is listed in ``scouter.archive_log`` with a span of one
day (migration 310); the read-back follows the log.

A compaction pass holds the archiver's advisory lock (one replica at a time, never beside an archive pass), then:

1. deletes the objects a previous pass left listed in ``scouter.archive_retired`` (retired but not deleted yet, or a
   daily object written for a day that never committed; a name the archiver has written again since, for late rows,
   is no longer listed there: `actors.archiver`);
2. plans the days: per kind and entity, each UTC day wholly before the archiver's cut-off that has hourly entries
   (late rows archived after a compaction make a day's next hourly part; the next pass merges it with the daily
   object into a new one);
3. per day: fetches the listed objects (a day with a listed object missing is skipped and logged, never compacted
   without it), checks their rows add up to what the log says, lists the daily object's name in
   ``archive_retired`` (garbage unless its day commits), writes them sorted by time as one Parquet object named with
   the next free part number, then **in one transaction** records it (off ``archive_retired``) and retires the day's
   entries (deleted from ``archive_log``, listed in ``archive_retired``), then deletes the retired objects and
   forgets them.

A crash anywhere leaves a readable archive that counts no row twice: before the commit the log lists the hourly
objects only (the daily object written is an orphan that the next pass deletes, whatever part number the day then
gets: late rows may have taken this one); after it,
the daily object only (the hourly objects are garbage listed in ``archive_retired``, deleted by the next pass). A
query that read the log just before the commit and finds an object gone reads the log again (`ArchiveReader`).
Running it again changes nothing: a day without hourly entries is not planned.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

import asyncpg
import attrs
import obstore
import trio
import trio_asyncio

from scouter.archive import KINDS, ArchiveKind, UnsafeSegment, archive_cutoff, day_object_key, kind_named
from scouter.sql import (
    ARCHIVE_LOCK_KEY,
    COMPACTION_PLAN,
    DAY_ENTRIES,
    FORGET_RETIRED,
    INSERT_DAY_ENTRY,
    INSERT_RETIRED,
    LIST_RETIRED,
    NEXT_DAY_PART,
    RETIRE_ENTRIES,
)

from .archive_store import ObjectStore, StoreHandle, get_object, merge_parquet, put_object
from .database import UNAVAILABLE, DatabaseHandle, acquire

log = logging.getLogger("actors.archive_compactor")

#: Writes one object: (store, key, bytes). Replaced in tests to stall or die right after the upload.
Put = Callable[[ObjectStore, str, bytes], None]
#: Deletes objects: (store, keys). Replaced in tests to die before the deletion.
Delete = Callable[[ObjectStore, Sequence[str]], None]


def delete_objects(store: ObjectStore, keys: Sequence[str]) -> None:
    """Delete `keys`; one already gone counts as deleted (a re-run after a crash may find some gone)."""
    for key in keys:
        try:
            obstore.delete(store, key)
        except FileNotFoundError:
            pass


class CompactionConflict(RuntimeError):
    """A day's entries changed under the pass (they cannot while it holds the lock): its transaction rolls back."""


class DayNotCompactable(ValueError):
    """A listed object is missing, or the objects hold another number of rows than the log says: the day is skipped
    and stays as it is, readable."""


@attrs.frozen
class CompactionDay:
    kind: ArchiveKind
    space: str
    name: str
    version: str
    day: datetime
    objects: int
    rows: int

    @property
    def label(self) -> str:
        return f"{self.kind.name} {self.space!r}/{self.name!r}/{self.version!r} {self.day:%Y-%m-%d}"


@attrs.frozen
class CompactionReport:
    skipped: bool = False  # another replica held the lock
    days: int = 0  # days now one object
    objects_retired: int = 0  # entries replaced (and their objects deleted, or left to the next pass)
    rows: int = 0
    bytes: int = 0
    failed_days: int = 0
    deleted: int = 0  # objects deleted from the store, leftovers of an earlier pass included
    duration: float = 0.0


# --- asyncio side ----------------------------------------------------------------------------------------------------


async def _try_lock(pool: asyncpg.Pool, wait: float) -> asyncpg.Connection | None:
    conn = await acquire(pool, wait)  # a connection refused is an outage (DatabaseUnavailable), waited out
    try:
        if await conn.fetchval("SELECT pg_try_advisory_lock($1)", ARCHIVE_LOCK_KEY):
            return conn
    except BaseException:
        await pool.release(conn)
        raise
    await pool.release(conn)
    return None


async def _release(pool: asyncpg.Pool, conn: asyncpg.Connection) -> None:
    try:
        if not conn.is_closed():
            await conn.execute("SELECT pg_advisory_unlock($1)", ARCHIVE_LOCK_KEY)
    finally:
        await pool.release(conn)


async def _plan(conn: asyncpg.Connection, kinds: Sequence[ArchiveKind], cutoff: datetime) -> list[CompactionDay]:
    rows = await conn.fetch(COMPACTION_PLAN, cutoff, [k.name for k in kinds])
    return [
        CompactionDay(kind_named(r["kind"]), r["space"], r["name"], r["version"], r["day"], r["objects"], r["rows"])
        for r in rows
    ]


async def _fetch(conn: asyncpg.Connection, sql: str, *args: Any) -> list[asyncpg.Record]:
    return await conn.fetch(sql, *args)


async def _fetchval(conn: asyncpg.Connection, sql: str, *args: Any) -> Any:
    return await conn.fetchval(sql, *args)


async def _execute(conn: asyncpg.Connection, sql: str, *args: Any) -> str:
    return await conn.execute(sql, *args)


async def _commit_day(
    conn: asyncpg.Connection, day: CompactionDay, part: int, key: str, retired: Sequence[str], rows: int, size: int
) -> None:  # asyncio side: record the daily object and retire the day's entries, or neither
    entity = (day.kind.name, day.space, day.name, day.version)
    async with conn.transaction():
        gone = await conn.fetch(RETIRE_ENTRIES, *entity, list(retired))
        if len(gone) != len(retired):
            raise CompactionConflict(f"{day.label}: {len(retired)} entries to retire but {len(gone)} found")
        await conn.execute(INSERT_DAY_ENTRY, *entity, day.day, part, key, rows, size)
        await conn.execute(INSERT_RETIRED, list(retired))


# --- the pass --------------------------------------------------------------------------------------------------------


@attrs.define
class ArchiveCompactor:
    """One compaction pass per `run_once`; the archiver runs one after each archive pass."""

    handle: DatabaseHandle
    stores: StoreHandle
    retention_days: int
    clock: Callable[[], datetime]
    kinds: tuple[ArchiveKind, ...] = KINDS
    put: Put = put_object
    delete: Delete = delete_objects
    fetch_threads: int = 8
    _pool: ThreadPoolExecutor = attrs.field(init=False)

    @_pool.default
    def _make_pool(self) -> ThreadPoolExecutor:  # threads start on first use
        return ThreadPoolExecutor(self.fetch_threads, thread_name_prefix="archive-compact")

    async def run_once(self, stopping: Callable[[], bool] = lambda: False) -> CompactionReport:
        """One pass now; `stopping` is checked between days (a day in flight completes or rolls back)."""
        db = self.handle.get()
        started = time.perf_counter()
        aio = trio_asyncio.aio_as_trio
        conn = await aio(_try_lock)(db.pool, db.acquire_timeout)
        if conn is None:
            return CompactionReport(skipped=True)
        try:
            return await self._pass(conn, stopping, started)
        finally:
            with trio.move_on_after(5, shield=True) as scope:
                await aio(_release)(db.pool, conn)
            if scope.cancelled_caught:
                log.warning("compactor connection did not release within 5 s: terminating it")
                conn.terminate()

    async def _pass(self, conn: asyncpg.Connection, stopping: Callable[[], bool], started: float) -> CompactionReport:
        aio = trio_asyncio.aio_as_trio
        leftovers = [r["object_path"] for r in await aio(_fetch)(conn, LIST_RETIRED)]
        cutoff = archive_cutoff(self.clock(), self.retention_days)
        days = await aio(_plan)(conn, self.kinds, cutoff)
        if not leftovers and not days:
            return CompactionReport(duration=time.perf_counter() - started)
        store = self.stores.get()
        deleted = await self._delete(conn, store, leftovers)
        done = retired = rows = written = failed = 0
        for day in days:
            if stopping():
                break
            try:
                result = await self._compact_day(conn, store, day)
            except DayNotCompactable as exc:
                failed += 1
                log.error("%s: not compacted, its hourly objects stay as they are: %s", day.label, exc)
                continue
            done += 1
            retired += result[0]
            written += result[1]
            deleted += result[2]
            rows += result[3]
        return CompactionReport(
            days=done,
            objects_retired=retired,
            rows=rows,
            bytes=written,
            failed_days=failed,
            deleted=deleted,
            duration=time.perf_counter() - started,
        )

    async def _compact_day(self, conn: asyncpg.Connection, store: ObjectStore, day: CompactionDay) -> tuple[int, ...]:
        """(entries retired, bytes written, objects deleted, rows) for one day."""
        aio = trio_asyncio.aio_as_trio
        entity = (day.kind.name, day.space, day.name, day.version)
        entries = await aio(_fetch)(conn, DAY_ENTRIES, *entity, day.day)
        paths = [e["object_path"] for e in entries]
        expected = sum(e["rows"] for e in entries)
        part = await aio(_fetchval)(conn, NEXT_DAY_PART, *entity, day.day)
        try:
            key = day_object_key(day.kind, day.space, day.name, day.version, day.day, part)
        except UnsafeSegment as exc:  # logged before the archiver quarantined such names; never written since
            raise DayNotCompactable(str(exc)) from exc
        data = await trio.to_thread.run_sync(self._merge, store, day.kind, paths, expected)
        # Listed for deletion until its day commits (which takes it off the list): a pass stopped in between leaves
        # the next pass an orphan to delete, even when late rows have taken its part number by then.
        await aio(_execute)(conn, INSERT_RETIRED, [key])
        await trio.to_thread.run_sync(self.put, store, key, data)
        # Only now, with the daily object stored: record it and retire the hourly entries, or neither.
        await aio(_commit_day)(conn, day, part, key, paths, expected, len(data))
        deleted = await self._delete(conn, store, paths)
        return len(paths), len(data), deleted, expected

    def _merge(self, store: ObjectStore, kind: ArchiveKind, paths: Sequence[str], expected: int) -> bytes:
        blobs = list(self._pool.map(lambda path: get_object(store, path), paths))
        missing = [path for path, blob in zip(paths, blobs, strict=True) if blob is None]
        if missing:
            raise DayNotCompactable(f"{len(missing)} listed objects are missing from the store, e.g. {missing[0]}")
        rows, data = merge_parquet(kind, [blob for blob in blobs if blob is not None])
        if rows != expected:
            raise DayNotCompactable(f"the objects hold {rows} rows, archive_log says {expected}")
        return data

    async def _delete(self, conn: asyncpg.Connection, store: ObjectStore, paths: Sequence[str]) -> int:
        """Delete retired objects from the store, then forget them; a failure leaves them listed for the next pass."""
        if not paths:
            return 0
        await trio.to_thread.run_sync(self.delete, store, paths)
        await trio_asyncio.aio_as_trio(_execute)(conn, FORGET_RETIRED, list(paths))
        return len(paths)


async def compact_logged(compactor: ArchiveCompactor, stopping: Callable[[], bool]) -> None:
    """One pass, its outcome logged: a failure is retried at the next pass, never raised."""
    try:
        report = await compactor.run_once(stopping)
    except UNAVAILABLE as exc:
        log.warning("compaction pass skipped, database unavailable: %r", exc)
    except Exception:  # the store down, a conflict: retried at the next pass
        log.exception("compaction pass failed; retried at the next pass")
    else:
        if report.failed_days:
            log.error("compaction skipped %d days that cannot be compacted", report.failed_days)
        if report.days:
            log.info(
                "compacted %d days (%d rows, %d objects into %d, %d bytes) in %.1f s",
                report.days,
                report.rows,
                report.objects_retired,
                report.days,
                report.bytes,
                report.duration,
            )


__all__ = [
    "ArchiveCompactor",
    "CompactionReport",
    "compact_logged",
    "delete_objects",
]
