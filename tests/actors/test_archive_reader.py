"""The archive read-back on its own: aggregates from Parquet, the decoded-object cache, objects gone missing."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import obstore
import pytest
from obstore.store import MemoryStore

from actors.archive_reader import ArchiveReader, epoch_ns
from actors.archive_store import StoreHandle, encode_parquet
from actors.database import Database
from scouter.archive import KINDS
from scouter.queries import parse_drift_query
from scouter.sql import SPC_BUCKETS, SPC_UNARCHIVED_BUCKETS

from .archive_support import OLD, archiver, bucket_args, insert, keys, spc_query

pytestmark = pytest.mark.postgres

ENTITY = ("sp", "nm", "1")
SPC = KINDS[0]


async def _seed(db: Database, hours: int) -> list[tuple]:
    rows = [
        (OLD + timedelta(hours=h, minutes=m, microseconds=h), *ENTITY, f"f{m % 3}", float(h * 60 + m) / 8)
        for h in range(hours)
        for m in range(0, 60, 7)
    ]
    await insert(db, "spc_drift", rows)
    return rows


async def test_archived_aggregates_equal_postgres_for_odd_widths(db: Database) -> None:
    """DataFusion's buckets (epoch-aligned, width in whole microseconds) and counts are PostgreSQL's date_bin ones,
    for widths that do not divide an hour."""
    await _seed(db, 6)
    query = spc_query(ENTITY, OLD - timedelta(minutes=13), OLD + timedelta(hours=6, seconds=1), 7)
    expected = sorted(tuple(r) for r in await db.fetch(SPC_BUCKETS, *bucket_args(query)))
    store = MemoryStore()
    await archiver(db, store).run_once()
    reader = ArchiveReader(StoreHandle.of(store), 30)
    live, archived = await reader.parts(db, "spc", query, SPC_UNARCHIVED_BUCKETS, bucket_args(query))
    assert [] == list(live)
    got = sorted(archived)
    assert [(f, b, n) for f, b, n, _ in expected] == [(f, b, n) for f, b, n, _ in got]
    assert [m for *_, m in expected] == pytest.approx([m for *_, m in got], rel=1e-12)


async def test_decoded_objects_are_cached_and_the_cache_is_bounded(db: Database) -> None:
    """A second query is answered from decoded objects even after they vanish from the store; with a cache too
    small to hold them every query reads the store again."""
    await _seed(db, 3)
    store = MemoryStore()
    await archiver(db, store).run_once()
    query = spc_query(ENTITY, OLD, OLD + timedelta(hours=3), 3)
    cached = ArchiveReader(StoreHandle.of(store), 30)
    uncached = ArchiveReader(StoreHandle.of(store), 30, cache_bytes=1)

    async def archived(reader: ArchiveReader) -> list[tuple]:
        live, part = await reader.parts(db, "spc", query, SPC_UNARCHIVED_BUCKETS, bucket_args(query))
        assert [] == list(live)
        return sorted(part)

    first = await archived(cached)
    assert 9 == len(first)
    assert first == await archived(uncached)
    assert 0 < cached._cache.size
    assert 0 == uncached._cache.size
    for key in keys(store):
        obstore.delete(store, key)
    assert first == await archived(cached)
    assert [] == await archived(uncached)


async def test_a_listed_object_gone_missing_is_logged_and_skipped(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    """An object in archive_log but not in the store: the rest is answered, and the gap is logged as an error."""
    await _seed(db, 2)
    store = MemoryStore()
    await archiver(db, store).run_once()
    first, second = keys(store)
    obstore.delete(store, first)
    query = spc_query(ENTITY, OLD, OLD + timedelta(hours=2), 1)
    with caplog.at_level(logging.ERROR, logger="actors.archive_reader"):
        _, archived = await ArchiveReader(StoreHandle.of(store), 30).parts(
            db, "spc", query, SPC_UNARCHIVED_BUCKETS, bucket_args(query)
        )
    assert 9 == sum(n for _, _, n, _ in archived)  # the second hour's 9 rows
    assert "1 archived objects listed in archive_log are missing" in caplog.text
    assert second not in caplog.text


async def test_objects_archived_under_the_old_layout_are_read_with_the_new_ones(db: Database) -> None:
    """An hour archived by an earlier version (raw segments, no entity tag in the file name: '100%' as is) and the
    next hour archived now (encoded '100%25', tagged name): one query reads both, because the read-back follows the
    paths archive_log recorded, whatever layout wrote them."""
    entity = ("sp", "100%", "1")
    old_rows = [(OLD + timedelta(minutes=m), *entity, "f0", float(m)) for m in range(0, 60, 10)]
    new_rows = [(OLD + timedelta(hours=1, minutes=m), *entity, "f0", float(m)) for m in range(0, 60, 20)]
    store = MemoryStore()
    partition = f"year={OLD.year}/month={OLD.month}/day={OLD.day}/hour={OLD.hour}"
    old_key = f"sp/100%/1/spc/{partition}/spc-{OLD:%Y%m%d%H}-0000.parquet"
    data = encode_parquet(SPC, *entity, [(epoch_ns(r[0]) // 1000, r[4], r[5]) for r in old_rows])
    obstore.put(store, old_key, data)
    await insert(db, "spc_drift", old_rows)
    await db.execute("UPDATE scouter.spc_drift SET archived = true")
    await db.execute(
        "INSERT INTO scouter.archive_log (kind, space, name, version, hour, part, object_path, rows, bytes)"
        " VALUES ('spc', $1, $2, $3, $4, 0, $5, $6, $7)", *entity, OLD, old_key, len(old_rows), len(data),
    )  # fmt: skip
    await insert(db, "spc_drift", new_rows)
    await archiver(db, store).run_once()
    stored = keys(store)
    assert 2 == len(stored)
    assert old_key in stored
    assert next(k for k in stored if k != old_key).startswith("sp/100%25/1/spc/")

    args = {
        "space": entity[0], "name": entity[1], "version": entity[2], "time_interval": "TwentyFourHours",
        "max_data_points": "1", "drift_type": "Spc",
        "begin_custom_datetime": (OLD - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "end_custom_datetime": (OLD + timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }  # fmt: skip
    query = parse_drift_query(args, datetime.now(UTC))
    reader = ArchiveReader(StoreHandle.of(store), 30)
    live, archived = await reader.parts(db, "spc", query, SPC_UNARCHIVED_BUCKETS, bucket_args(query))
    assert [] == list(live)
    assert [len(old_rows) + len(new_rows)] == [count for _, _, count, _ in archived]
