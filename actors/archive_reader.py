"""Read-back of the archive for the drift queries (server.md §2.10, §8.2): per-bucket aggregates from Parquet.

A query whose window begins before ``now - DATA_RETENTION_PERIOD`` is answered from two parts that never overlap:

* the **live** part: PostgreSQL rows of the window that are *not* archived;
* the **archived** part: the rows of the window in the objects ``scouter.archive_log`` lists.

Every row is in exactly one of them, because the archiver marks rows archived and logs their object in the same
transaction, and the live aggregates and the object list are read in one REPEATABLE READ snapshot here. (Splitting
at the boundary instead, as upstream does, drops the rows that are past the boundary but not archived yet, and
counts twice an object uploaded by a pass that crashed before committing.) Rows past the boundary that the archiver
has not reached yet therefore still come from PostgreSQL.

The archived part is computed by DataFusion over the objects fetched with obstore (DataFusion cannot use obstore
stores: dependencies.md §4.7), with bind parameters only. Both parts return aggregates in the same mergeable form
(`scouter.binned`), which merges them bucket by bucket. No object listed, or none readable: an empty part (§12 #25).

What one query loads is bounded: the objects of its window are aggregated a chunk of at most ``chunk_bytes`` (of
Parquet, as ``archive_log`` states) at a time, each chunk one more mergeable part, and a window whose objects add up
to more than ``max_query_bytes`` is refused (`ArchiveLimitExceeded`, a 400) before anything is fetched.

Committed objects are never rewritten, so decoded objects are kept in a bounded LRU cache: the first query over a
month of hourly objects pays for fetching and decoding them, later ones only for the aggregation. Complete days are
compacted into one object each (`actors.archive_compactor`), which the log then lists instead of the day's hourly
objects (an entry covers ``[hour, hour + span)``); a query that listed hourly objects just before their day was
compacted and finds them deleted reads the log again. Objects that are
not in ``archive_log`` (written by upstream, or orphans of a crashed pass) are never read.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import attrs
import pyarrow as pa
import trio
from datafusion import SessionConfig, SessionContext

from scouter.archive import ArchiveKind, archive_boundary, floor_hour, kind_named
from scouter.queries import DriftQuery
from scouter.sql import ARCHIVE_BUCKETS, ARCHIVE_MANIFEST

from .archive_store import StoreHandle, decode_parquet, get_object
from .database import Database

log = logging.getLogger("actors.archive_reader")

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def epoch_ns(moment: datetime) -> int:
    """Nanoseconds since the Unix epoch, exactly (datetimes hold microseconds)."""
    return (moment - EPOCH) // _MICROSECOND * 1000


def from_epoch_ns(ns: int) -> datetime:
    return EPOCH + timedelta(microseconds=ns // 1000)


class ArchiveReadError(RuntimeError):
    """The archived part could not be read (the store unreachable, a corrupt object): the query fails with 500."""


class _ObjectsGone(Exception):
    """Objects listed in the manifest that the store no longer has: read the manifest again."""


#: Tries of a query whose listed objects went missing (compacted meanwhile) before it answers without them.
_ATTEMPTS = 3


async def _nothing() -> None:
    pass


class ArchiveLimitExceeded(ArchiveReadError):
    """The window holds more archived data than one query may load: the caller's request is refused (400)."""


@attrs.frozen
class ManifestEntry:
    object_path: str
    rows: int
    bytes: int


async def _live_and_manifest(
    conn: asyncpg.Connection,
    live_sql: str,
    live_args: Sequence[Any],
    manifest_args: Sequence[Any],
) -> tuple[list[asyncpg.Record], list[asyncpg.Record]]:  # asyncio side: one snapshot for both
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        live = await conn.fetch(live_sql, *live_args)
        manifest = await conn.fetch(ARCHIVE_MANIFEST, *manifest_args)
    return live, manifest


def _chunks(entries: Sequence[ManifestEntry], limit: int) -> list[list[ManifestEntry]]:
    """`entries` in order, cut into runs of at most `limit` bytes (an object larger than that alone); at least one
    run, possibly empty, so that a query always has its archived part."""
    chunks: list[list[ManifestEntry]] = [[]]
    size = 0
    for entry in entries:
        if chunks[-1] and size + entry.bytes > limit:
            chunks.append([])
            size = 0
        chunks[-1].append(entry)
        size += entry.bytes
    return chunks


@attrs.define
class _TableCache:
    """Decoded archive objects, least recently used first out, bounded by their Arrow size. Sound because a committed
    object is never rewritten (late rows go to a new part); keyed by path and size as the manifest states them."""

    capacity: int
    _tables: OrderedDict[tuple[str, int], pa.Table] = attrs.field(init=False, factory=OrderedDict)
    _size: int = attrs.field(init=False, default=0)
    _lock: threading.Lock = attrs.field(init=False, factory=threading.Lock)

    def get(self, key: tuple[str, int]) -> pa.Table | None:
        with self._lock:
            table = self._tables.get(key)
            if table is not None:
                self._tables.move_to_end(key)
            return table

    def put(self, key: tuple[str, int], table: pa.Table) -> None:
        size = table.nbytes
        if size > self.capacity:
            return
        with self._lock:
            if key in self._tables:
                return
            self._tables[key] = table
            self._size += size
            while self._size > self.capacity:
                _, old = self._tables.popitem(last=False)
                self._size -= old.nbytes

    @property
    def size(self) -> int:
        return self._size


@attrs.define
class ArchiveReader:
    """Answers the archived part of drift queries; shares the archiver's store. Objects are fetched and decoded in
    parallel threads and kept decoded in a bounded cache (`cache_bytes`), so repeated queries over the same days
    cost only the aggregation."""

    stores: StoreHandle
    retention_days: int
    fetch_threads: int = 8
    target_partitions: int = 2
    rows_per_partition: int = 1_000_000
    cache_bytes: int = 256 * 2**20
    #: Parquet bytes aggregated at once (one part per chunk), and the most one query may load (else a 400).
    chunk_bytes: int = 64 * 2**20
    max_query_bytes: int = 2**30
    #: Awaited between reading the manifest and fetching its objects; replaced in tests to compact meanwhile.
    manifest_read: Callable[[], Awaitable[None]] = _nothing
    _pool: ThreadPoolExecutor = attrs.field(init=False)
    _cache: _TableCache = attrs.field(init=False)

    @_pool.default
    def _make_pool(self) -> ThreadPoolExecutor:  # threads start on first use
        return ThreadPoolExecutor(self.fetch_threads, thread_name_prefix="archive-read")

    @_cache.default
    def _make_cache(self) -> _TableCache:
        return _TableCache(self.cache_bytes)

    def reaches_archive(self, query: DriftQuery, now: datetime) -> bool:
        """Does the query's window begin before the archive boundary (so archived rows may be in it)?"""
        return query.window.begin < archive_boundary(now, self.retention_days)

    async def parts(
        self, db: Database, kind: str, query: DriftQuery, live_sql: str, live_args: Sequence[Any]
    ) -> list[Sequence[Any]]:
        """``[live aggregates, archived aggregates...]`` for `query` (one archived part per chunk of objects, so at
        least one). `live_sql` must aggregate only rows *not* archived, with `live_args`; the object list comes from
        the same snapshot. Raises `ArchiveLimitExceeded` when the window's objects exceed ``max_query_bytes``.

        An object listed but gone is most likely an hourly object that a compaction replaced (and deleted) after the
        list was read: the whole answer is computed again from a fresh snapshot, which lists the daily object
        instead. Only the last attempt answers without a missing object (logged as an error)."""
        for attempt in range(1, _ATTEMPTS + 1):
            try:
                return await self._parts(db, kind, query, live_sql, live_args, strict=attempt < _ATTEMPTS)
            except _ObjectsGone as exc:
                log.info("archived objects gone since the manifest was read (compacted?), reading it again: %s", exc)
        raise AssertionError("unreachable: the last attempt is not strict")

    async def _parts(
        self, db: Database, kind: str, query: DriftQuery, live_sql: str, live_args: Sequence[Any], *, strict: bool
    ) -> list[Sequence[Any]]:
        window = query.window
        manifest_args = (kind, query.space, query.name, query.version, floor_hour(window.begin), window.end)
        live, manifest = await db.run(_live_and_manifest, live_sql, live_args, manifest_args)
        await self.manifest_read()
        entries = [ManifestEntry(r["object_path"], r["rows"], r["bytes"]) for r in manifest]
        total = sum(entry.bytes for entry in entries)
        if total > self.max_query_bytes:
            raise ArchiveLimitExceeded(
                f"the window holds {total} bytes of archived data, over the limit of {self.max_query_bytes} bytes "
                "per query; query a shorter window"
            )
        parts: list[Sequence[Any]] = [live]
        for chunk in _chunks(entries, self.chunk_bytes):
            parts.append(await self.aggregates(kind_named(kind), chunk, query, strict=strict))
        return parts

    async def aggregates(
        self, kind: ArchiveKind, entries: Sequence[ManifestEntry], query: DriftQuery, *, strict: bool = False
    ) -> list[tuple]:
        """The archived part's aggregates over `entries` (in a worker thread; DataFusion releases the GIL). A listed
        object that is gone raises `_ObjectsGone` when `strict`, else it is logged and the rest answered."""
        if not entries:
            return []
        try:
            return await trio.to_thread.run_sync(self._aggregates, kind, entries, query, strict)
        except _ObjectsGone:
            raise
        except Exception as exc:  # obstore, pyarrow and DataFusion each raise their own kinds
            log.error("reading the archive failed", exc_info=True)
            raise ArchiveReadError(f"archive: {exc}") from exc

    # -- worker threads -------------------------------------------------------------------------------------------
    def _table(self, kind: ArchiveKind, entry: ManifestEntry) -> pa.Table | None:
        key = (entry.object_path, entry.bytes)
        table = self._cache.get(key)
        if table is None:
            blob = get_object(self.stores.get(), entry.object_path)
            if blob is None:
                return None
            table = decode_parquet(blob, ("created_at", kind.key, *kind.values), dictionary=(kind.key,))
            self._cache.put(key, table)
        return table

    def _aggregates(
        self, kind: ArchiveKind, entries: Sequence[ManifestEntry], query: DriftQuery, strict: bool
    ) -> list[tuple]:
        if len(entries) == 1:
            found = [self._table(kind, entries[0])]
        else:
            found = list(self._pool.map(lambda entry: self._table(kind, entry), entries))
        missing = [e.object_path for e, table in zip(entries, found, strict=True) if table is None]
        if missing and strict:
            raise _ObjectsGone(f"{len(missing)} objects, e.g. {missing[0]}")
        if missing:  # listed but gone (deleted by hand?): answer with what is there, loudly
            log.error("%d archived objects listed in archive_log are missing, e.g. %s", len(missing), missing[0])
        tables = [table for table in found if table is not None]
        if not tables:
            return []
        # The decoded batches as they are (no concatenation: a copy of every row), dealt round-robin to partitions.
        # One partition per ~rows_per_partition rows: below that a second one costs more than it gains (a hash
        # repartition before the final aggregate; 26 against 51 ms over a million rows on two cores).
        rows = sum(table.num_rows for table in tables)
        if not rows:
            return []
        n = max(1, min(self.target_partitions, -(-rows // self.rows_per_partition)))
        partitions: list[list[pa.RecordBatch]] = [[] for _ in range(n)]
        for i, batch in enumerate(b for table in tables for b in table.to_batches() if b.num_rows):
            partitions[i % n].append(batch)
        ctx = SessionContext(SessionConfig().with_target_partitions(n))
        ctx.register_record_batches("archive", [p for p in partitions if p])
        window = query.window
        params = {
            "1": query.bucket // _MICROSECOND * 1000,
            "2": epoch_ns(window.begin),
            "3": epoch_ns(window.end),
        }
        result = ctx.sql(ARCHIVE_BUCKETS[kind.name], param_values=params).to_arrow_table()
        columns = [result.column(i).to_pylist() for i in range(result.num_columns)]
        columns[1] = [from_epoch_ns(ns) for ns in columns[1]]
        return list(zip(*columns, strict=True))
