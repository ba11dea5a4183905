"""The archive read-back on its own: aggregates from Parquet, the decoded-object cache, objects gone missing."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import obstore
import pytest
from obstore.store import MemoryStore

from actors.archive_reader import ArchiveReader
from actors.archive_store import StoreHandle
from actors.database import Database
from scouter.queries import parse_drift_query
from scouter.sql import SPC_BUCKETS, SPC_UNARCHIVED_BUCKETS

from .archive_support import OLD, archiver, insert, keys

pytestmark = pytest.mark.postgres

ENTITY = ("sp", "nm", "1")


def _query(points: int, begin: datetime, end: datetime):  # type: ignore[no-untyped-def]
    args = {
        "space": ENTITY[0], "name": ENTITY[1], "version": ENTITY[2], "time_interval": "OneHour",
        "max_data_points": str(points), "drift_type": "Spc",
        "begin_custom_datetime": begin.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "end_custom_datetime": end.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
    }  # fmt: skip
    return parse_drift_query(args, datetime.now(UTC))


def _args(query) -> tuple:  # type: ignore[no-untyped-def]
    w = query.window
    return (query.space, query.name, query.version, query.bucket, w.begin, w.end)


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
    query = _query(7, OLD - timedelta(minutes=13), OLD + timedelta(hours=6, seconds=1))
    expected = sorted(tuple(r) for r in await db.fetch(SPC_BUCKETS, *_args(query)))
    store = MemoryStore()
    await archiver(db, store).run_once()
    reader = ArchiveReader(StoreHandle.of(store), 30)
    live, archived = await reader.parts(db, "spc", query, SPC_UNARCHIVED_BUCKETS, _args(query))
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
    query = _query(3, OLD, OLD + timedelta(hours=3))
    cached = ArchiveReader(StoreHandle.of(store), 30)
    uncached = ArchiveReader(StoreHandle.of(store), 30, cache_bytes=1)

    async def archived(reader: ArchiveReader) -> list[tuple]:
        live, part = await reader.parts(db, "spc", query, SPC_UNARCHIVED_BUCKETS, _args(query))
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
    query = _query(1, OLD, OLD + timedelta(hours=2))
    with caplog.at_level(logging.ERROR, logger="actors.archive_reader"):
        _, archived = await ArchiveReader(StoreHandle.of(store), 30).parts(
            db, "spc", query, SPC_UNARCHIVED_BUCKETS, _args(query)
        )
    assert 9 == sum(n for _, _, n, _ in archived)  # the second hour's 9 rows
    assert "1 archived objects listed in archive_log are missing" in caplog.text
    assert second not in caplog.text
