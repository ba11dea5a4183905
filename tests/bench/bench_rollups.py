"""Reads through the rollups (hours and minutes) against the same reads over the raw rows, in the same run.

    python -m tests.bench.bench_rollups [rows]

For ``rows / 10`` and then ``rows`` (default 1,000,000) SPC and custom rows (one entity, 10 features / metrics)
spread evenly over the last 30 days, COPied into their daily partitions, with the rollups then built by
`scouter rollup rebuild`'s code (its time is printed too):

1. a binned SPC query over the 30 days (1,000 points: 43.2-minute buckets, narrower than an hour, so only minutes
   could serve them, and at ~2 records per feature and minute the read goes to the rows (`minutes_pay_off`); and
   720 points: hourly buckets, read from the hourly rollups), through the rollups ÷ from the rows (target <= 0.1);
2. one custom drift check over the last day (its aggregate query, in the check's snapshot as the poller runs it)
   through the rollups ÷ from the rows, and how the rollup path grows with 10x the rows (flat: it reads grains).

Both paths answer the same numbers (the tests prove it); here only the time is compared, best of 5.
"""

from __future__ import annotations

import datetime
import sys
import time
from types import SimpleNamespace
from typing import Any

import msgspec
import trio
import trio_asyncio

from actors.database import Database, close_pool, migrate, open_pool
from actors.poller import _rollup_args, _window_args
from actors.rollup_reads import SPC, binned_parts, raw_parts
from actors.rollup_rebuild import rebuild_rollups
from config import DatabaseSettings
from scouter.binned import merge_spc, spc_response
from scouter.checks import CheckWindow
from scouter.queries import DriftQuery, Window, bucket_width
from scouter.rollups import GRAINS
from scouter.sql import CUSTOM_AVERAGES, CUSTOM_CHECK_MEANS, create_partition, rollup_table
from scouter.wire.v064 import SpcDriftFeatures
from tests.bench.common import SMOKE, Verdicts, bench_postgres, check, same_drift, sizes
from tests.drift_profiles import CUSTOM_COLUMNS, SPC_COLUMNS, copy_rows
from tests.services import scratch_database

UTC = datetime.UTC
DAYS = 30
ENTITY = ("bench", "model", "1.0.0")


async def _seed(db: Database, total: int, end: datetime.datetime) -> float:
    start = end - datetime.timedelta(days=DAYS)
    for d in range(DAYS + 2):
        for table in ("spc_drift", "custom_drift"):
            await db.execute(create_partition(table, (start + datetime.timedelta(days=d)).date()))
    step = datetime.timedelta(days=DAYS) / total
    for first in range(0, total, 100_000):
        spc = [(start + step * i, *ENTITY, f"feature_{i % 10}", float(i % 997) / 8)
               for i in range(first, min(first + 100_000, total))]  # fmt: skip
        custom = [(t, *entity, key.replace("feature", "metric"), v) for t, *entity, key, v in spc]
        await db.run(copy_rows, "spc_drift", SPC_COLUMNS, spc)
        await db.run(copy_rows, "custom_drift", CUSTOM_COLUMNS, custom)
    await db.execute("ANALYZE scouter.spc_drift")
    await db.execute("ANALYZE scouter.custom_drift")
    # the rows were COPied past the writer: build their rollups as an upgraded server's operator would
    await db.execute("UPDATE scouter.rollup_coverage SET since = now()")
    started = time.perf_counter()
    await rebuild_rollups(db)
    elapsed = time.perf_counter() - started
    for kind in ("spc", "custom"):
        for grain in GRAINS:
            await db.execute(f"ANALYZE {rollup_table(kind, grain)}")
    return elapsed


async def _best(fn: Any, *args: Any) -> float:
    times = []
    for _ in range(5):
        started = time.perf_counter()
        await fn(*args)
        times.append(time.perf_counter() - started)
    return min(times)


async def _binned(db: Database, read: Any, query: DriftQuery, now: datetime.datetime) -> SpcDriftFeatures:
    return spc_response(merge_spc(await read(db, None, SPC, query, now)))


async def _check(conn: Any, window: CheckWindow, rollups: bool) -> list[Any]:
    entity = SimpleNamespace(space=ENTITY[0], name=ENTITY[1], version=ENTITY[2])
    names = [f"metric_{i}" for i in range(10)]
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        if rollups:
            return await conn.fetch(CUSTOM_CHECK_MEANS, *await _rollup_args(conn, entity, window, names))
        return await conn.fetch(CUSTOM_AVERAGES, *_window_args(entity, window, names))


async def _one_size(dsn: str, total: int) -> dict[str, float]:
    async with trio_asyncio.open_loop():
        db = await open_pool(dsn, DatabaseSettings(max_pool_size=4, min_pool_size=2))
        try:
            await migrate(db)
            now = datetime.datetime.now(UTC).replace(second=30, microsecond=0)
            rebuild = await _seed(db, total, now)
            figures = {"rows": total, "rebuild_s": rebuild}
            window = Window(now - datetime.timedelta(days=DAYS), now)
            for points in (1000, 720):
                query = DriftQuery(*ENTITY, "Spc", window, bucket_width(window.length, points), points)
                raw, rolled = await _binned(db, raw_parts, query, now), await _binned(db, binned_parts, query, now)
                same = same_drift(msgspec.to_builtins(raw), msgspec.to_builtins(rolled))
                check(same, f"binned SPC, {points} points: the rollup path's answer differs from the rows'")
                figures[f"binned_{points}_raw_s"] = await _best(_binned, db, raw_parts, query, now)
                figures[f"binned_{points}_rollup_s"] = await _best(_binned, db, binned_parts, query, now)
            day = CheckWindow(now - datetime.timedelta(days=1, seconds=17), now, "", None)
            raw_means = {r["metric"]: r["value"] for r in await db.run(_check, day, False)}
            rolled_means = {r["metric"]: r["value"] for r in await db.run(_check, day, True)}
            alike = raw_means.keys() == rolled_means.keys() and all(
                abs(raw_means[k] - rolled_means[k]) <= 1e-9 * max(1.0, abs(raw_means[k])) for k in raw_means
            )
            check(alike, "custom check: the rollup path's means differ")
            figures["check_raw_s"] = await _best(db.run, _check, day, False)
            figures["check_rollup_s"] = await _best(db.run, _check, day, True)
            return figures
        finally:
            await close_pool(db)


def main(total: int) -> dict[str, float]:
    verdicts = Verdicts()
    results = []
    dsn_server = bench_postgres()
    for size in (total // 10, total):
        with scratch_database(dsn_server, prefix="scouter_bench_") as dsn:
            results.append(trio.run(_one_size, dsn, size))
    small, big = results
    print(f"rollup bench{' (smoke sizes)' if SMOKE else ''}: one entity, 10 features, rows over {DAYS} days "
          "(best of 5; both paths answer alike, checked)")  # fmt: skip
    for f in results:
        rows = f"{f['rows']:,} rows"
        print(f"  {rows}: rollups rebuilt in {f['rebuild_s']:.1f} s")
        for points in (1000, 720):
            raw, rolled = f[f"binned_{points}_raw_s"], f[f"binned_{points}_rollup_s"]
            print(f"    binned SPC, 30 days, {points:>4} points: rows {raw * 1000:8.1f} ms   "
                  f"rollups {rolled * 1000:8.1f} ms")  # fmt: skip
        raw, rolled = f["check_raw_s"], f["check_rollup_s"]
        print(f"    custom check, last day:           rows {raw * 1000:8.1f} ms   rollups {rolled * 1000:8.1f} ms")
    # speed-ups (rows ÷ rollups): 10 is the "rollups ÷ rows <= 0.1"
    for points in (1000, 720):
        verdicts.ratio(f"binned 30 days {points} points, rows / rollups at {big['rows']:,} rows",
                       big[f"binned_{points}_raw_s"], big[f"binned_{points}_rollup_s"], target=10)  # fmt: skip
    verdicts.ratio(f"custom check rows / rollups at {big['rows']:,} rows", big["check_raw_s"], big["check_rollup_s"])
    verdicts.ratio("binned 720 points through rollups, 10x rows / 1x rows", big["binned_720_rollup_s"],
                   small["binned_720_rollup_s"])  # fmt: skip
    verdicts.ratio("custom check through rollups, 10x rows / 1x rows", big["check_rollup_s"], small["check_rollup_s"])
    verdicts.finish()
    return {f"{key}@{f['rows']}": value for f in results for key, value in f.items()}


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else sizes(1_000_000, 5_000))
