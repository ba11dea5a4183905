"""Writer throughput against raw asyncpg COPY of the same rows into the same table, in the same run.

    python -m tests.bench.bench_writer [rows]

Baseline: plain asyncio (no trio, no trio-asyncio), one connection, one COPY + COMMIT per 1,000-row batch — what a
hand-written ingest loop would do. Ours: 8 concurrent senders each handing 1,000-row batches to the writer actor,
answered after COMMIT, which also keeps the per-minute rollups (`scouter.rollups`, a statement trigger) in the same
transaction; the baseline's COPY runs with that trigger disabled. Both
into a fresh, migrated database with today's partition in place. A second argument spreads the rows' created_at
back over that many seconds (rows older than today land in the default partition), so that each flush adds to many
rollup rows: ``python -m tests.bench.bench_writer 200000 3600``.
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
from tests.services import ensure_postgres, scratch_database

BATCH = 1000
SENDERS = 8


def make_batches(total: int, tag: str, spread: float = 0.0) -> list[DecodedBatch]:
    """`total` rows of 10 features, one microsecond apart, or, with `spread` seconds, spread evenly back over that
    span (then each flush adds to many per-minute rollup rows instead of one per feature)."""
    now = datetime.datetime.now(datetime.UTC)
    step = datetime.timedelta(seconds=spread / total) if spread else datetime.timedelta(microseconds=1)
    rows = [(now - i * step, "bench", tag, "1.0.0", f"feature_{i % 10}", float(i)) for i in range(total)]
    return [DecodedBatch(spc_rows=tuple(rows[i : i + BATCH])) for i in range(0, total, BATCH)]


async def raw_copy(dsn: str, batches: list[DecodedBatch]) -> float:
    conn = await asyncpg.connect(dsn)
    # the baseline is a plain COPY: without the per-minute rollups the writer's transactions also keep (a trigger)
    await conn.execute("ALTER TABLE scouter.spc_drift DISABLE TRIGGER spc_drift_rollup")
    try:
        started = time.perf_counter()
        for batch in batches:
            async with conn.transaction():
                await conn.copy_records_to_table(
                    "spc_drift", records=batch.spc_rows, columns=SPC_COLUMNS, schema_name="scouter"
                )
        return time.perf_counter() - started
    finally:
        await conn.execute("ALTER TABLE scouter.spc_drift ENABLE TRIGGER spc_drift_rollup")
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
        await close_pool(db)


def main(total: int = 200_000, spread: float = 0.0) -> dict[str, float]:
    with scratch_database(ensure_postgres(), prefix="scouter_bench_") as dsn:
        trio.run(prepare, dsn)
        raw_batches, our_batches = make_batches(total, "raw", spread), make_batches(total, "writer", spread)
        asyncio.run(raw_copy(dsn, make_batches(20_000, "warm")))  # warm the server's caches for both
        raw = asyncio.run(raw_copy(dsn, raw_batches))
        ours, stats = trio.run(through_writer, dsn, our_batches)
    figures = {
        "rows": total,
        "raw_copy_rows_per_s": total / raw,
        "writer_rows_per_s": total / ours,
        "ratio": raw / ours,
        "writer_flushes": stats["flushes"],
    }
    print(f"writer bench, {total:,} SPC rows in {BATCH:,}-row batches, created over {spread:,.0f} s")
    print(f"  raw asyncpg COPY (asyncio, 1 conn):   {figures['raw_copy_rows_per_s']:>12,.0f} rows/s")
    print(
        f"  writer actor ({SENDERS} senders, trio):    {figures['writer_rows_per_s']:>12,.0f} rows/s"
        f"  ({stats['flushes']} flushes)"
    )
    print(f"  ratio writer / raw COPY:              {figures['ratio']:>12.2f}   (target >= 0.8)")
    return figures


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200_000, float(sys.argv[2]) if len(sys.argv) > 2 else 0.0)
