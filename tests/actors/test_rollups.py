"""Rollups kept exact: maintained by the writer in the rows' transaction, across concurrent writers, built once for
existing rows by the migration, and binned reads through them equal to the raw-row answer (also across the archive
boundary, with the archived rows gone from PostgreSQL)."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
import trio
from obstore.store import MemoryStore
from prometheus_client import CollectorRegistry

from actors.archive_reader import ArchiveReader
from actors.archive_store import StoreHandle
from actors.database import Database, DatabaseHandle, close_pool, migrate, open_pool
from actors.metrics import ScouterMetrics
from actors.poller import _rollup_args, _window_args
from actors.rollup_reads import CUSTOM, PSI, SPC, BinnedSource, binned_parts, raw_parts
from actors.rollup_rebuild import RebuildProgress, rebuild_rollups
from actors.writer import WriterActor, open_inbox, write
from config import DatabaseSettings
from scouter.binned import merge_custom, merge_psi, merge_spc
from scouter.checks import CheckWindow
from scouter.queries import DriftQuery, Window, bucket_width
from scouter.records import DecodedBatch
from scouter.rollups import HOUR, plan
from scouter.sql import (
    CUSTOM_AVERAGES,
    CUSTOM_CHECK_MEANS,
    MIGRATIONS,
    PSI_CHECK_DISTRIBUTIONS,
    PSI_DISTRIBUTIONS,
    ROLLUP_SINCE,
)

from .archive_support import OLD, archiver, insert

pytestmark = pytest.mark.postgres

ENTITY = ("sp", "nm", "1")  # space, name, version
RECENT = (datetime.now(UTC) - timedelta(days=2)).replace(minute=0, second=0, microsecond=0)


def make_writer(db: Database) -> WriterActor:
    send, recv = open_inbox(100)
    return WriterActor(recv, send, DatabaseHandle(db), ScouterMetrics.create(CollectorRegistry(), process=False))


def random_batch(rng: random.Random, start: datetime, minutes: int, n: int) -> DecodedBatch:
    """`n` records of each kind at random microseconds within `minutes` from `start`; values with a large offset
    and a small spread (where a plain sum of squares would lose the variance)."""

    def at() -> datetime:
        return start + timedelta(microseconds=rng.randrange(minutes * 60_000_000))

    space, name, version = ENTITY
    spc = tuple((at(), name, space, version, f"f{rng.randrange(3)}", 1e6 + rng.gauss(0, 1)) for _ in range(n))
    custom = tuple((at(), name, space, version, f"m{rng.randrange(2)}", 1e6 + rng.gauss(0, 1)) for _ in range(n))
    psi = tuple((at(), name, space, version, f"f{rng.randrange(2)}", rng.randrange(5), rng.randrange(1, 50))
                for _ in range(n))  # fmt: skip
    return DecodedBatch(spc_rows=spc, psi_rows=psi, custom_rows=custom)


async def write_all(db: Database, batches: Sequence[DecodedBatch], writers: int = 1) -> None:
    """Write `batches` through `writers` writer actors at once (8 senders each), every one acknowledged."""
    actors = [make_writer(db) for _ in range(writers)]
    stop = trio.Event()
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            for actor in actors:
                await nursery.start(actor.run, stop)

            async def send(chunk: Sequence[DecodedBatch], actor: WriterActor) -> None:
                for batch in chunk:
                    assert (await write(actor.inbox_sender, batch)).ok

            async with trio.open_nursery() as senders:
                for i in range(8 * writers):
                    senders.start_soon(send, batches[i :: 8 * writers], actors[i % writers])
            stop.set()


def raw_grains(kind: str, interval: str) -> str:
    """The aggregate of the rows of `kind` per grain of `interval`, straight from the record table."""
    if kind == "psi":
        return f"""SELECT space, name, version, feature, bin_id, date_bin('{interval}', created_at, 'epoch') AS grain,
                          sum(bin_count) AS count FROM scouter.psi_drift GROUP BY 1, 2, 3, 4, 5, 6"""
    key = "feature" if kind == "spc" else "metric"
    return f"""SELECT space, name, version, {key}, date_bin('{interval}', created_at, 'epoch') AS grain,
                      count(*) AS count, avg(value) AS mean, coalesce(var_pop(value) * count(*), 0) AS m2
               FROM scouter.{kind}_drift GROUP BY 1, 2, 3, 4, 5"""


#: Each rollup table and the grain it holds.
ROLLUP_TABLES = {"": "1 minute", "_hour": "1 hour"}


async def assert_rollups_match_rows(db: Database) -> int:
    """Every rollup row, of both grains, equals the aggregate of its grain's rows (float tolerance for mean and M2),
    and no grain is missing on either side; returns the number of rollup rows compared."""
    compared = 0
    for kind in ("spc", "custom", "psi"):
        for suffix, interval in ROLLUP_TABLES.items():
            n = -3 if kind != "psi" else -1
            expected = {tuple(r)[:n]: tuple(r) for r in await db.fetch(raw_grains(kind, interval))}
            stored = {tuple(r)[:n]: tuple(r) for r in await db.fetch(f"SELECT * FROM scouter.{kind}_rollup{suffix}")}
            assert sorted(expected) == sorted(stored), (kind, interval)
            for key, row in expected.items():
                got = stored[key]
                if kind == "psi":
                    assert row[-1] == got[-1]
                    continue
                count, mean, m2 = row[-3:]
                assert count == got[-3]
                assert math.isclose(mean, got[-2], rel_tol=1e-12), (kind, key)
                # M2 of n values spread ~1 around 1e6: Chan's merge loses at most a few ulps of mean² per merge
                assert math.isclose(m2, got[-1], rel_tol=1e-6, abs_tol=1e-6 * count), (kind, key, m2, got[-1])
            compared += len(stored)
    return compared


async def test_writer_keeps_rollups_equal_to_its_rows(db: Database) -> None:
    """Random records of every kind through the writer (many senders, so grains receive several commits): each
    rollup row equals its grain's rows."""
    rng = random.Random(18)
    await write_all(db, [random_batch(rng, RECENT, 10, 50) for _ in range(80)])
    assert await assert_rollups_match_rows(db) > 30


async def test_replicas_adding_to_the_same_grains_agree(db: Database, fresh_database_dsn: str) -> None:
    """Two writers with their own pools (two replicas) add to the same grains at once: no deadlock, no lost
    update."""
    other = await open_pool(fresh_database_dsn, DatabaseSettings(max_pool_size=4, min_pool_size=1))
    try:
        rng = random.Random(7)
        batches = [random_batch(rng, RECENT, 3, 40) for _ in range(60)]
        stop = trio.Event()
        actors = [make_writer(db), make_writer(other)]
        with trio.fail_after(60):
            async with trio.open_nursery() as nursery:
                for actor in actors:
                    await nursery.start(actor.run, stop)

                async def send(chunk: Sequence[DecodedBatch], actor: WriterActor) -> None:
                    for batch in chunk:
                        assert (await write(actor.inbox_sender, batch)).ok

                async with trio.open_nursery() as senders:
                    for i in range(16):
                        senders.start_soon(send, batches[i::16], actors[i % 2])
                stop.set()
    finally:
        await close_pool(other)
    await assert_rollups_match_rows(db)


async def test_rollup_rebuild_builds_rollups_of_rows_stored_before_them(
    aio_loop: None, fresh_database_dsn: str
) -> None:
    """Rows stored before migration 300 are read from the rows (the coverage starts at the migration's minute);
    `rebuild_rollups` then builds their rollups a day at a time, lowers the coverage, and reads through the rollups
    still equal the rows'."""
    db = await open_pool(fresh_database_dsn, DatabaseSettings(max_pool_size=2, min_pool_size=1))
    try:
        await migrate(db, tuple(m for m in MIGRATIONS if m.version < 300))
        rng = random.Random(3)
        start = RECENT - timedelta(days=2, minutes=30)  # three UTC days
        batch = random_batch(rng, start, 3 * 24 * 60, 3000)
        for table, rows in (("spc_drift", batch.spc_rows), ("custom_drift", batch.custom_rows),
                            ("psi_drift", batch.psi_rows)):  # fmt: skip
            await insert(db, table, [(r[0], r[2], r[1], *r[3:]) for r in rows])
        await migrate(db)
        assert 0 == await db.fetchval("SELECT count(*) FROM scouter.spc_rollup")
        assert await db.fetchval(ROLLUP_SINCE) > start + timedelta(days=3)
        assert await compare_random_windows(db, rng, start, 3 * 24 * 60, None, 5) == (0, 0)  # all from the rows

        progress: list[RebuildProgress] = []
        report = await rebuild_rollups(db, progress.append)
        assert report.days >= 3
        assert [p.days_done for p in progress] == list(range(1, report.days + 1))
        assert await db.fetchval(ROLLUP_SINCE) <= start
        assert await assert_rollups_match_rows(db) > 1000
        used, hourly = await compare_random_windows(db, rng, start, 3 * 24 * 60, None, 10)
        assert used > 5
        assert hourly > 3
        assert (await rebuild_rollups(db)).days == 0  # nothing left: a rerun does nothing
    finally:
        await close_pool(db)


async def test_hourly_rollups_are_derived_from_the_minutes_of_an_upgraded_database(
    aio_loop: None, fresh_database_dsn: str
) -> None:
    """A database whose writer kept only minute rollups (before migration 360): the migration derives every hour
    from those minutes, and the writer then keeps both grains equal to the rows."""
    db = await open_pool(fresh_database_dsn, DatabaseSettings(max_pool_size=4, min_pool_size=1))
    try:
        await migrate(db, tuple(m for m in MIGRATIONS if m.version < 360))
        rng = random.Random(360)
        await write_all(db, [random_batch(rng, RECENT - timedelta(minutes=20), 200, 50) for _ in range(20)])
        assert await db.fetchval("SELECT to_regclass('scouter.spc_rollup_hour')") is None
        await migrate(db)
        assert await db.fetchval("SELECT count(*) FROM scouter.spc_rollup_hour") >= 4
        await assert_rollups_match_rows(db)
        await write_all(db, [random_batch(rng, RECENT, 200, 50) for _ in range(10)])
        await assert_rollups_match_rows(db)
    finally:
        await close_pool(db)


# --- reads -----------------------------------------------------------------------------------------------------------

_SOURCES: dict[str, tuple[BinnedSource, Any]] = {
    "spc": (SPC, merge_spc),
    "custom": (CUSTOM, merge_custom),
    "psi": (PSI, merge_psi),
}


def _close(expected: list[tuple[Any, ...]], got: list[tuple[Any, ...]], kind: str) -> None:
    assert [r[:3] for r in expected] == [r[:3] for r in got], kind
    for e, g in zip(expected, got, strict=True):
        if kind == "psi":
            assert e == g
            continue
        assert math.isclose(e[3], g[3], rel_tol=1e-12), (kind, e, g)  # means around 1e6
        if kind == "custom":  # sample variance of values spread ~1
            assert math.isclose(e[4], g[4], rel_tol=1e-6, abs_tol=1e-6), (kind, e, g)


async def compare_random_windows(
    db: Database, rng: random.Random, start: datetime, minutes: int, archive: ArchiveReader | None, rounds: int
) -> tuple[int, int]:
    """`rounds` random windows and bucket widths within `minutes` from `start`: the rollup path equals the raw one
    for every kind. Returns how many of them used the rollups, and how many of those the hourly ones."""
    now = datetime.now(UTC)
    since = await db.fetchval(ROLLUP_SINCE)
    used = hourly = 0
    for _ in range(rounds):
        a, b = sorted(rng.randrange(-60_000_000, (minutes + 1) * 60_000_000) for _ in range(2))
        begin, end = start + timedelta(microseconds=a), start + timedelta(microseconds=b + 1)
        points = rng.choice([1, 2, 3, 7, 10, 60, 100, 1000, rng.randrange(1, 500)])
        # whole minutes, whole hours, and hours and a half (their boundaries cut every other hour)
        width = rng.choice([bucket_width(end - begin, points), timedelta(minutes=rng.choice([1, 5, 60, 90, 120]))])
        split = plan(begin, end, width, since)
        used += split.uses_rollups
        hourly += bool(split.ranges(HOUR))
        for kind, (source, merge) in _SOURCES.items():
            query = DriftQuery(*ENTITY, kind.capitalize(), Window(begin, end), width, points)
            extra = (["f0", "f1"],) if kind == "psi" else ()
            expected = sorted(merge(await raw_parts(db, archive, source, query, now, *extra)))
            parts = await binned_parts(db, archive, source, query, now, *extra)
            _close(expected, sorted(merge(parts)), kind)
    return used, hourly


async def test_binned_reads_through_rollups_equal_the_rows(db: Database) -> None:
    """Seeded random windows over eight hours (edges anywhere, down to the microsecond), bucket widths (whole
    minutes, whole hours, odd widths whose boundaries cut minutes or hours, one bucket) and record times: SPC,
    custom and PSI answers through the hourly and minute rollups equal those from the rows."""
    rng = random.Random(1818)
    await write_all(db, [random_batch(rng, RECENT, 480, 100) for _ in range(20)])
    used, hourly = await compare_random_windows(db, rng, RECENT, 480, None, 50)
    assert used > 25
    assert hourly > 10


async def test_binned_reads_across_the_archive_boundary_equal_the_rows(db: Database) -> None:
    """Records past retention are archived and then deleted from PostgreSQL (as a dropped partition would be);
    windows crossing the archive boundary through the rollups (whole grains) plus PostgreSQL and Parquet (the raw
    ranges) equal the rows' answer from PostgreSQL and Parquet."""
    rng = random.Random(1815)
    start = OLD - timedelta(hours=1)
    batches = [random_batch(rng, start, 480, 60) for _ in range(10)]
    await write_all(db, batches)
    store = MemoryStore()
    await archiver(db, store).run_once()
    for table in ("spc_drift", "custom_drift", "psi_drift"):
        await db.execute(f"DELETE FROM scouter.{table} WHERE archived")
    await write_all(db, [random_batch(rng, start, 480, 20) for _ in range(3)])  # late rows, not archived yet
    reader = ArchiveReader(StoreHandle.of(store), 30)
    used, hourly = await compare_random_windows(db, rng, start, 480, reader, 30)
    assert used > 10
    assert hourly > 5


async def test_buckets_narrower_than_an_hour_read_minutes_only_where_records_are_dense(db: Database) -> None:
    """10-minute buckets over three hours are read from minutes: through the minute rollups for a model sending
    dozens of records a minute per feature, but from the rows for one sending a record every three minutes (as many
    minute rollup rows as records there, and a rollup row costs more to read). Both answer as the rows do."""
    rows = []
    for name, every in (("dense", timedelta(seconds=2)), ("sparse", timedelta(minutes=3))):
        t = RECENT
        while t < RECENT + timedelta(hours=3):
            rows += [(t, ENTITY[0], name, ENTITY[2], f"f{i}", 1e6 + i + t.second / 60) for i in range(2)]
            t += every
    await insert(db, "spc_drift", rows)
    now = datetime.now(UTC)
    window = Window(RECENT + timedelta(seconds=7), RECENT + timedelta(hours=2, minutes=50, seconds=3))
    parts = {}
    for name in ("dense", "sparse"):
        query = DriftQuery(ENTITY[0], name, ENTITY[2], "Spc", window, timedelta(minutes=10), 100)
        parts[name] = await binned_parts(db, None, SPC, query, now)
        expected = sorted(merge_spc(await raw_parts(db, None, SPC, query, now)))
        _close(expected, sorted(merge_spc(parts[name])), "spc")
    assert 2 == len(parts["dense"])  # the minutes, and the rows of the two partial minutes at the edges
    assert 1 == len(parts["sparse"])  # the rows of the whole window


# --- drift checks ----------------------------------------------------------------------------------------------------


async def _check_aggregates(conn: Any, window: CheckWindow, rollups: bool) -> tuple[list[tuple], list[tuple]]:
    entity = SimpleNamespace(space=ENTITY[0], name=ENTITY[1], version=ENTITY[2])
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        if rollups:
            custom = await conn.fetch(CUSTOM_CHECK_MEANS, *await _rollup_args(conn, entity, window, ["m0", "m1"]))
            psi = await conn.fetch(PSI_CHECK_DISTRIBUTIONS, *await _rollup_args(conn, entity, window, ["f0", "f1"]))
        else:
            custom = await conn.fetch(CUSTOM_AVERAGES, *_window_args(entity, window, ["m0", "m1"]))
            psi = await conn.fetch(PSI_DISTRIBUTIONS, *_window_args(entity, window, ["f0", "f1"]))
    return sorted(tuple(r) for r in custom), sorted(tuple(r) for r in psi)


async def test_check_aggregates_through_rollups_equal_the_rows(db: Database) -> None:
    """Custom means and PSI distributions of seeded random check windows over five hours ([start, end), edges
    anywhere, so most cross hour edges and many hold whole hours), including
    rows committed after the previous check's snapshot with created_at before the window (late rows, read raw):
    through the rollups they equal the rows' (means to float tolerance, PSI counts and proportions exactly)."""
    for drift_type in ("Custom", "Psi"):
        await db.execute(
            "INSERT INTO scouter.drift_profile (space, name, version, drift_type, profile, active, schedule) "
            "VALUES ($1, $2, $3, $4, '{}', true, '0 0 0 * * *')",
            *ENTITY,
            drift_type,
        )
    rng = random.Random(99)
    await write_all(db, [random_batch(rng, RECENT, 300, 100) for _ in range(10)])
    snapshot = await db.fetchval("SELECT pg_current_snapshot()::text")
    await write_all(db, [random_batch(rng, RECENT - timedelta(minutes=30), 60, 30) for _ in range(3)])
    checked = hourly = 0
    for _ in range(30):
        a, b = sorted(rng.randrange(0, 300 * 60_000_000) for _ in range(2))
        start, end = RECENT + timedelta(microseconds=a), RECENT + timedelta(microseconds=b + 1)
        window = CheckWindow(start, end, snapshot, rng.choice([None, snapshot]))
        raw_custom, raw_psi = await db.run(_check_aggregates, window, False)
        custom, psi = await db.run(_check_aggregates, window, True)
        assert [(r[0], r[2]) for r in raw_custom] == [(r[0], r[2]) for r in custom]
        for e, g in zip(raw_custom, custom, strict=True):
            assert math.isclose(e[1], g[1], rel_tol=1e-12), (e, g)
        assert raw_psi == psi
        split = plan(start, end, None, await db.fetchval(ROLLUP_SINCE), end_inclusive=False)
        checked += split.uses_rollups
        hourly += bool(split.ranges(HOUR))
    assert checked > 15
    assert hourly > 5
