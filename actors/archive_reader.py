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
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
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


@attrs.define
class ArchiveReader:
    """Answers the archived part of drift queries; shares the archiver's store."""

    stores: StoreHandle
    retention_days: int
    fetch_threads: int = 16
    target_partitions: int = 2
    _pool: ThreadPoolExecutor | None = attrs.field(init=False, default=None)

    def reaches_archive(self, query: DriftQuery, now: datetime) -> bool:
        """Does the query's window begin before the archive boundary (so archived rows may be in it)?"""
        return query.window.begin < archive_boundary(now, self.retention_days)

    async def parts(
        self, db: Database, kind: str, query: DriftQuery, live_sql: str, live_args: Sequence[Any]
    ) -> list[Sequence[Any]]:
        """``[live aggregates, archived aggregates]`` for `query`. `live_sql` must aggregate only rows *not*
        archived, with `live_args`; the object list comes from the same snapshot."""
        window = query.window
        manifest_args = (kind, query.space, query.name, query.version, floor_hour(window.begin), window.end)
        live, manifest = await db.run(_live_and_manifest, live_sql, live_args, manifest_args)
        entries = [ManifestEntry(r["object_path"], r["rows"], r["bytes"]) for r in manifest]
        archived = await self.aggregates(kind_named(kind), entries, query)
        return [live, archived]

    async def aggregates(self, kind: ArchiveKind, entries: Sequence[ManifestEntry], query: DriftQuery) -> list[tuple]:
        """The archived part's aggregates over `entries` (in a worker thread; DataFusion releases the GIL)."""
        if not entries:
            return []
        return await trio.to_thread.run_sync(self._aggregates, kind, [e.object_path for e in entries], query)

    # -- worker thread --------------------------------------------------------------------------------------------
    def _fetch(self, keys: Sequence[str]) -> list[bytes | None]:
        store = self.stores.get()
        if len(keys) == 1:
            return [get_object(store, keys[0])]
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.fetch_threads, thread_name_prefix="archive-read")
        return list(self._pool.map(lambda key: get_object(store, key), keys))

    def _aggregates(self, kind: ArchiveKind, keys: Sequence[str], query: DriftQuery) -> list[tuple]:
        blobs = self._fetch(keys)
        missing = [key for key, blob in zip(keys, blobs, strict=True) if blob is None]
        if missing:  # listed but gone (deleted by hand?): answer with what is there, loudly
            log.error("%d archived objects listed in archive_log are missing, e.g. %s", len(missing), missing[0])
        tables = [decode_parquet(blob, kind.columns) for blob in blobs if blob is not None]
        if not tables:
            return []
        batches = pa.concat_tables(tables).to_batches()
        n = max(1, min(self.target_partitions, len(batches)))
        ctx = SessionContext(SessionConfig().with_target_partitions(self.target_partitions))
        ctx.register_record_batches("archive", [batches[i::n] for i in range(n)])
        window = query.window
        params = {
            "1": query.space,
            "2": query.name,
            "3": query.version,
            "4": query.bucket // _MICROSECOND * 1000,
            "5": epoch_ns(window.begin),
            "6": epoch_ns(window.end),
        }
        result = ctx.sql(ARCHIVE_BUCKETS[kind.name], param_values=params).to_arrow_table()
        columns = [result.column(i).to_pylist() for i in range(result.num_columns)]
        columns[1] = [from_epoch_ns(ns) for ns in columns[1]]
        return list(zip(*columns, strict=True))
