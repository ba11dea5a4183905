"""Archive throughput and read-back latency.

    python -m tests.bench.bench_archive [rows]

1. ``rows`` SPC rows (default 1,000,000; one entity, 10 features) spread evenly over 30 days that ended 31 days ago,
   in their daily partitions, are archived by one pass to a local folder: rows/s, objects, bytes.
2. A binned SPC query over those 30 days (100 points, the UI's usual), which now reads 720 hourly objects through
   the archive reader (PostgreSQL's live part and manifest in one snapshot, obstore, pyarrow, DataFusion) and
   shapes the response: the first run (objects fetched and decoded) and the best of 5 more (decoded objects
   cached), target <= 200 ms. For scale, the same query answered by PostgreSQL alone before archiving.
3. The same objects copied to an S3-compatible server (moto, in its own process: what the archive tests use) and
   the query's cold read through ``SCOUTER_STORAGE_URI=s3://...`` (fetch + decode over HTTP), best of 5.
4. The days compacted into one object per day (what the archiver does after its pass), copied to S3 too, and the
   cold query again on both stores: its time over the daily objects / over the 720 hourly ones, target <= 0.25.

Ratios are printed against PostgreSQL's time for the same query (time ratios: lower is faster).
"""

from __future__ import annotations

import contextlib
import datetime
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import msgspec
import obstore
import trio
import trio_asyncio
from obstore.store import LocalStore
from prometheus_client import CollectorRegistry

from actors.archive_compactor import ArchiveCompactor
from actors.archive_reader import ArchiveReader
from actors.archive_store import ObjectStore, StoreHandle, open_store
from actors.archiver import ArchiverActor
from actors.database import Database, DatabaseHandle, close_pool, migrate, open_pool
from actors.metrics import ScouterMetrics
from config import DatabaseSettings, StorageSettings
from scouter.binned import merge_spc, spc_response
from scouter.queries import parse_drift_query
from scouter.sql import SPC_BUCKETS, SPC_UNARCHIVED_BUCKETS, create_partition
from tests.bench.common import SMOKE, Verdicts, bench_postgres, same_drift, sizes
from tests.drift_profiles import SPC_COLUMNS, copy_rows
from tests.services import scratch_database

UTC = datetime.UTC
DAYS = sizes(30, 2)
POINTS = 100
ENTITY = ("bench", "model", "1.0.0")


def _stamp(moment: datetime.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


async def _seed(db: Database, total: int, start: datetime.datetime) -> None:
    for d in range(DAYS + 1):
        await db.execute(create_partition("spc_drift", (start + datetime.timedelta(days=d)).date()))
    step = datetime.timedelta(days=DAYS) / total
    chunk = 100_000
    for first in range(0, total, chunk):
        rows = [
            (start + step * i, *ENTITY, f"feature_{i % 10}", float(i % 997) / 8)
            for i in range(first, min(first + chunk, total))
        ]
        await db.run(copy_rows, "spc_drift", SPC_COLUMNS, rows)
    await db.execute("ANALYZE scouter.spc_drift")


async def _timed_query(db: Database, reader: ArchiveReader | None, args: dict[str, str]) -> tuple[float, dict]:
    now = datetime.datetime.now(UTC)
    started = time.perf_counter()
    query = parse_drift_query(args, now)
    window = query.window
    params = (query.space, query.name, query.version, query.bucket, window.begin, window.end)
    if reader is None:
        parts = [await db.fetch(SPC_BUCKETS, *params)]
    else:
        parts = await reader.parts(db, "spc", query, SPC_UNARCHIVED_BUCKETS, params)
    body = spc_response(merge_spc(parts))
    return time.perf_counter() - started, msgspec.to_builtins(body)


@contextlib.contextmanager
def s3_server() -> Iterator[str]:
    """An S3-compatible server (moto) in a process of its own, with an empty bucket `archive`; obstore reaches it
    through the AWS_* variables set here (this process is the bench's own). Yields the storage URI."""
    import boto3

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        endpoint = f"http://127.0.0.1:{port}"
        os.environ.update(AWS_ENDPOINT=endpoint, AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench",
                          AWS_ALLOW_HTTP="true", AWS_REGION="us-east-1")  # fmt: skip
        client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
        deadline = time.monotonic() + 60
        while True:
            try:
                client.create_bucket(Bucket="archive")
                break
            except Exception:  # not listening yet
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.2)
        yield "s3://archive/bench"
    finally:
        proc.terminate()
        proc.wait(30)


def _copy_store(source: ObjectStore, target: ObjectStore) -> int:
    count = 0
    for batch in obstore.list(source):
        for item in batch:
            obstore.put(target, item["path"], obstore.get(source, item["path"]).bytes())
            count += 1
    return count


async def run(dsn: str, total: int, root: Path, s3_uri: str) -> dict[str, float]:
    async with trio_asyncio.open_loop():
        db = await open_pool(dsn, DatabaseSettings(max_pool_size=4, min_pool_size=2))
        try:
            await migrate(db)
            now = datetime.datetime.now(UTC)
            start = (now - datetime.timedelta(days=DAYS + 31)).replace(minute=0, second=0, microsecond=0)
            await _seed(db, total, start)
            args = {
                "space": ENTITY[0],
                "name": ENTITY[1],
                "version": ENTITY[2],
                "time_interval": "FiveMinutes",
                "max_data_points": str(POINTS),
                "drift_type": "Spc",
                "begin_custom_datetime": _stamp(start),
                "end_custom_datetime": _stamp(start + datetime.timedelta(days=DAYS)),
            }
            postgres = [(await _timed_query(db, None, args)) for _ in range(3)]

            stores = StoreHandle.of(LocalStore(root, mkdir=True), str(root))
            metrics = ScouterMetrics.create(CollectorRegistry(), process=False)
            archiver = ArchiverActor(DatabaseHandle(db), stores, 30, metrics)
            report = await archiver.run_once()
            # Within a minute or so autovacuum vacuums and analyses the partitions whose rows were all just marked
            # archived (every row updated: all dead). Done here at once, as in steady state: the live part is planned
            # on its partial index, which no longer holds the archived rows' dead entries (without the VACUUM each
            # query walks ~2,800 index pages of them, 4-10 ms; the test server runs with autovacuum off).
            await db.execute("VACUUM ANALYZE scouter.spc_drift")

            reader = ArchiveReader(stores, 30)
            archived = [(await _timed_query(db, reader, args)) for _ in range(6)]
            assert archived[0][1] == postgres[0][1] or same_drift(archived[0][1], postgres[0][1])
            # A running server meets a cold cache with its libraries already loaded: a fresh reader (empty decoded-
            # object cache, new threads) in this warmed process, best of 5 (the machine is shared: the least
            # disturbed run).
            cold = [(await _timed_query(db, ArchiveReader(stores, 30), args)) for _ in range(5)]
            assert all(body == postgres[0][1] or same_drift(body, postgres[0][1]) for _, body in cold)

            s3 = open_store(StorageSettings(uri=s3_uri))
            copied = await trio.to_thread.run_sync(_copy_store, stores.get(), s3)
            s3_stores = StoreHandle.of(s3, s3_uri)
            s3_cold = [(await _timed_query(db, ArchiveReader(s3_stores, 30), args)) for _ in range(5)]
            assert all(body == postgres[0][1] or same_drift(body, postgres[0][1]) for _, body in s3_cold)

            # The same days compacted into one object per day. The hourly objects are kept (a no-op delete) so that
            # the two layouts can be timed in turns, under the same load (the machine is shared): the archive_log of
            # each is put back in place before each query. The reader follows the log, so the query is exactly the
            # server's; the daily objects are copied to S3 as well.
            hourly_log = await db.fetch(f"SELECT {_LOG_COLUMNS} FROM scouter.archive_log")
            compactor = ArchiveCompactor(DatabaseHandle(db), stores, 30, archiver.clock, delete=lambda *_: None)
            compaction = await compactor.run_once()
            daily_log = await db.fetch(f"SELECT {_LOG_COLUMNS} FROM scouter.archive_log")
            await trio.to_thread.run_sync(_copy_store, stores.get(), s3)
            turns: dict[str, list[tuple[float, dict]]] = {"local hourly": [], "local daily": [], "s3 hourly": [],
                                                          "s3 daily": []}  # fmt: skip
            for _ in range(5):
                for layout, log_rows in (("hourly", hourly_log), ("daily", daily_log)):
                    await db.run(_put_log, log_rows)
                    turns[f"local {layout}"].append(await _timed_query(db, ArchiveReader(stores, 30), args))
                    turns[f"s3 {layout}"].append(await _timed_query(db, ArchiveReader(s3_stores, 30), args))
            for timed in turns.values():
                assert all(body == postgres[0][1] or same_drift(body, postgres[0][1]) for _, body in timed)
            compacted, s3_compacted = turns["local daily"], turns["s3 daily"]
        finally:
            await close_pool(db)
    points = sum(len(f["values"]) for f in archived[0][1]["features"].values())
    figures = {
        "rows": report.rows,
        "objects": report.objects,
        "bytes": report.bytes,
        "archive_s": report.duration,
        "archive_rows_per_s": report.rows / report.duration,
        "query_first_ms": archived[0][0] * 1000,
        "query_best_ms": min(t for t, _ in archived[1:]) * 1000,
        "query_cold_cache_ms": min(t for t, _ in cold) * 1000,
        "postgres_best_ms": min(t for t, _ in postgres) * 1000,
        "s3_cold_ms": min(t for t, _ in s3_cold) * 1000,
        "compaction_s": compaction.duration,
        "daily_objects": compaction.days,
        "compacted_cold_ms": min(t for t, _ in compacted) * 1000,
        "s3_compacted_cold_ms": min(t for t, _ in s3_compacted) * 1000,
        "hourly_in_turns_ms": min(t for t, _ in turns["local hourly"]) * 1000,
        "s3_hourly_in_turns_ms": min(t for t, _ in turns["s3 hourly"]) * 1000,
        "points": points,
    }
    print(f"archive bench, {total:,} SPC rows over {DAYS} days (one entity, 10 features){' (smoke sizes)' * SMOKE}")
    print(f"  pass: {report.rows:,} rows in {report.objects} objects, {report.bytes / 2**20:.1f} MiB, "
          f"{report.duration:.2f} s = {figures['archive_rows_per_s']:,.0f} rows/s")  # fmt: skip
    print(f"  binned query over the {DAYS} archived days ({POINTS} points, {points} values in the answer):")
    print(f"    first query after start-up (libraries load, fetch + decode {report.objects} objects) "
          f"{figures['query_first_ms']:.0f} ms")  # fmt: skip
    print(f"    cold cache in a running server, local store, best of 5: {figures['query_cold_cache_ms']:.0f} ms")
    print(f"    cold cache in a running server, S3 (moto, {copied} objects over HTTP), best of 5: "
          f"{figures['s3_cold_ms']:.0f} ms")  # fmt: skip
    print(f"    decoded objects cached, best of 5: {figures['query_best_ms']:.0f} ms")
    print(f"    same query from PostgreSQL before archiving: best of 3 {figures['postgres_best_ms']:.0f} ms")
    print(
        f"  compaction: {report.objects} hourly objects into {compaction.days} daily ones in "
        f"{compaction.duration:.2f} s; the same query, cold cache, in turns with the hourly layout, best of 5:"
    )
    print(
        f"    local: hourly {figures['hourly_in_turns_ms']:.0f} ms, daily {figures['compacted_cold_ms']:.0f} ms; "
        f"S3: hourly {figures['s3_hourly_in_turns_ms']:.0f} ms, daily {figures['s3_compacted_cold_ms']:.0f} ms"
    )
    verdicts = Verdicts()
    verdicts.target("cold cache, local store", figures["query_cold_cache_ms"], " ms", 200, at_most=True)
    pg = figures["postgres_best_ms"]
    verdicts.ratio("cold local / PostgreSQL (time)", figures["query_cold_cache_ms"], pg)
    verdicts.ratio("cold S3 / PostgreSQL (time)", figures["s3_cold_ms"], pg)
    verdicts.ratio("cold S3 / cold local (time)", figures["s3_cold_ms"], figures["query_cold_cache_ms"])
    verdicts.ratio("cached / PostgreSQL (time)", figures["query_best_ms"], pg)
    for label, daily, hourly in (
        ("local", figures["compacted_cold_ms"], figures["hourly_in_turns_ms"]),
        ("S3", figures["s3_compacted_cold_ms"], figures["s3_hourly_in_turns_ms"]),
    ):
        value = verdicts.ratio(f"cold {label}, compacted days / hourly objects (time)", daily, hourly)
        verdicts.target(f"cold {label}, compacted / hourly", value, "", 0.25, at_most=True)
    verdicts.finish()
    return figures


_LOG_COLUMNS = "kind, space, name, version, hour, part, span, object_path, rows, bytes"


async def _put_log(conn: asyncpg.Connection, rows: list[asyncpg.Record]) -> None:
    """Make `rows` the whole archive_log (the bench's turns between the hourly and the daily layout)."""
    async with conn.transaction():
        await conn.execute("DELETE FROM scouter.archive_log")
        await conn.copy_records_to_table(
            "archive_log", schema_name="scouter", columns=_LOG_COLUMNS.split(", "), records=[tuple(r) for r in rows]
        )
    # settle the new rows (statistics, hint bits) here, not in the timed query that follows
    await conn.execute("ANALYZE scouter.archive_log")
    await conn.fetchval("SELECT count(*) FROM scouter.archive_log")


def main(total: int) -> dict[str, float]:
    with (
        scratch_database(bench_postgres(), prefix="scouter_bench_") as dsn,
        tempfile.TemporaryDirectory() as tmp,
        s3_server() as s3_uri,
    ):
        return trio.run(run, dsn, total, Path(tmp) / "archive", s3_uri)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else sizes(1_000_000, 20_000))
