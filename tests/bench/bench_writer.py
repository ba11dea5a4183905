"""Writer throughput against raw asyncpg COPY of the same rows into the same table, in the same run.

    python -m tests.bench.bench_writer [rows]

Ours: 8 concurrent senders each handing 1,000-row batches to the writer actor, answered after COMMIT; the writer
merges whatever is queued into one COPY per transaction (about 8 batches at a time). Two baselines in plain asyncio
(no trio, no trio-asyncio), one connection, into the same table:

- sequential: one COPY + COMMIT per 1,000-row batch, what a hand-written ingest loop would do;
- merged (the fair one): the same batching as ours by hand, the batches merged into COPYs of as many batches as the
  writer put in each of its transactions in this run, one COMMIT each.

Every variant writes its own rows (tagged in the space column), counted afterwards. Both ratios: target >= 0.8.
The writer's transactions also keep the rollups of both grains, minutes and hours (`scouter.rollups`, a statement
trigger on the table), the SPC segments (another trigger) and the SPC summaries of its rows (its entity has an SPC
profile, `scouter.spc_summaries`); the baselines are plain COPYs, with those triggers disabled while they run.
"""

from __future__ import annotations

import asyncio
import datetime
import sys
import time

import asyncpg
import trio
import trio_asyncio
from prometheus_client import CollectorRegistry

from actors.database import DatabaseHandle, close_pool, migrate, open_pool
from actors.maintenance import MaintenanceActor
from actors.metrics import ScouterMetrics
from actors.writer import WriterActor, open_inbox, write
from config import DatabaseSettings
from scouter.records import SPC_COLUMNS, DecodedBatch
from tests.bench.common import SMOKE, Verdicts, bench_postgres, check, sizes
from tests.drift_profiles import insert_profile, spc_profile
from tests.services import scratch_database

BATCH = 1000
SENDERS = 8


def make_batches(total: int, tag: str) -> list[DecodedBatch]:
    now = datetime.datetime.now(datetime.UTC)
    rows = [
        (now + datetime.timedelta(microseconds=i), "bench", tag, "1.0.0", f"feature_{i % 10}", float(i))
        for i in range(total)
    ]
    return [DecodedBatch(spc_rows=tuple(rows[i : i + BATCH])) for i in range(0, total, BATCH)]


async def raw_copy(dsn: str, batches: list[DecodedBatch], merge: int = 1) -> float:
    """Seconds to COPY every batch, `merge` batches per COPY + COMMIT, over one connection."""
    groups = [
        [row for batch in batches[i : i + merge] for row in batch.spc_rows] for i in range(0, len(batches), merge)
    ]
    conn = await asyncpg.connect(dsn)
    # the baseline is a plain COPY: without the rollups the writer's transactions also keep (a trigger)
    await conn.execute("ALTER TABLE scouter.spc_drift DISABLE TRIGGER spc_drift_rollup")
    await conn.execute("ALTER TABLE scouter.spc_drift DISABLE TRIGGER spc_drift_segments")
    try:
        started = time.perf_counter()
        for rows in groups:
            async with conn.transaction():
                await conn.copy_records_to_table("spc_drift", records=rows, columns=SPC_COLUMNS, schema_name="scouter")
        return time.perf_counter() - started
    finally:
        await conn.execute("ALTER TABLE scouter.spc_drift ENABLE TRIGGER spc_drift_rollup")
        await conn.execute("ALTER TABLE scouter.spc_drift ENABLE TRIGGER spc_drift_segments")
        await conn.close()


async def stored(dsn: str) -> dict[str, int]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT space, count(*) AS n FROM scouter.spc_drift GROUP BY space")
        return {row["space"]: int(row["n"]) for row in rows}
    finally:
        await conn.close()


async def through_writer(dsn: str, batches: list[DecodedBatch]) -> tuple[float, dict[str, int]]:
    async with trio_asyncio.open_loop():
        db = await open_pool(dsn, DatabaseSettings(max_pool_size=4, min_pool_size=2))
        send, recv = open_inbox(1000)
        writer = WriterActor(recv, send, DatabaseHandle(db), ScouterMetrics.create(CollectorRegistry(), process=False))
        queue = list(batches)

        async def sender() -> None:
            while queue:
                result = await write(send, queue.pop())
                assert result.ok, result.error

        stop = trio.Event()
        async with trio.open_nursery() as nursery:
            await nursery.start(writer.run, stop)
            started = time.perf_counter()
            async with trio.open_nursery() as senders:
                for _ in range(SENDERS):
                    senders.start_soon(sender)
            elapsed = time.perf_counter() - started
            stop.set()
        await close_pool(db)
        return elapsed, writer.statistics()


async def prepare(dsn: str) -> None:
    async with trio_asyncio.open_loop():
        db = await open_pool(dsn, DatabaseSettings(max_pool_size=2, min_pool_size=1))
        await migrate(db)
        await MaintenanceActor(DatabaseHandle(db)).run_once()
        # the writer's entity has an SPC profile, so its transactions also store summaries (inactive: no check runs)
        features = {f"feature_{f}": (0.0, 1.0) for f in range(10)}
        now = datetime.datetime.now(datetime.UTC)
        await db.run(insert_profile, spc_profile(features, space="bench", name="writer"), now, None, False)
        await close_pool(db)


def main(total: int) -> dict[str, float]:
    verdicts = Verdicts()
    with scratch_database(bench_postgres(), prefix="scouter_bench_") as dsn:
        trio.run(prepare, dsn)
        asyncio.run(raw_copy(dsn, make_batches(min(total, 20_000), "warm")))  # warm the server's caches for all
        raw = asyncio.run(raw_copy(dsn, make_batches(total, "raw")))
        ours, stats = trio.run(through_writer, dsn, make_batches(total, "writer"))
        merge = max(1, round(stats["requests"] / stats["flushes"]))  # batches per writer transaction, this run
        merged = asyncio.run(raw_copy(dsn, make_batches(total, "merged"), merge))
        counts = asyncio.run(stored(dsn))
    for tag in ("raw", "writer", "merged"):
        check(counts.get(tag) == total, f"{tag}: {counts.get(tag, 0):,} rows stored, {total:,} written")
    figures = {
        "rows": total,
        "raw_copy_rows_per_s": total / raw,
        "merged_copy_rows_per_s": total / merged,
        "writer_rows_per_s": total / ours,
        "writer_flushes": stats["flushes"],
        "batches_per_flush": stats["requests"] / stats["flushes"],
    }
    print(f"writer bench, {total:,} SPC rows in {BATCH:,}-row batches{' (smoke sizes)' if SMOKE else ''}")
    print(f"  raw asyncpg COPY, sequential (asyncio, 1 conn, 1 batch per COPY): "
          f"{figures['raw_copy_rows_per_s']:>10,.0f} rows/s")  # fmt: skip
    print(f"  raw asyncpg COPY, merged (asyncio, 1 conn, {merge} batches per COPY):  "
          f"{figures['merged_copy_rows_per_s']:>10,.0f} rows/s")  # fmt: skip
    print(f"  writer actor ({SENDERS} senders, trio):                              "
          f"{figures['writer_rows_per_s']:>10,.0f} rows/s  ({stats['flushes']} flushes, "
          f"{figures['batches_per_flush']:.1f} batches each)")  # fmt: skip
    print(f"  rows stored per variant: {counts.get('raw', 0):,} raw, {counts.get('merged', 0):,} merged, "
          f"{counts.get('writer', 0):,} writer (each {total:,} written)")  # fmt: skip
    figures["ratio"] = verdicts.ratio(
        "writer / raw COPY sequential", figures["writer_rows_per_s"], figures["raw_copy_rows_per_s"], target=0.8
    )
    figures["fair_ratio"] = verdicts.ratio(
        "writer / raw COPY merged alike (fair)",
        figures["writer_rows_per_s"],
        figures["merged_copy_rows_per_s"],
        target=0.8,
    )
    verdicts.finish()
    return figures


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else sizes(200_000, 8_000))
