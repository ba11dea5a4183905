import datetime, time, tempfile, trio, trio_asyncio
from pathlib import Path
from obstore.store import LocalStore
from prometheus_client import CollectorRegistry
import actors.archive_reader as R
from actors.archive_store import StoreHandle
from actors.archiver import ArchiverActor
from actors.database import DatabaseHandle, close_pool, migrate, open_pool
from actors.metrics import ScouterMetrics
from config import DatabaseSettings
from scouter.queries import parse_drift_query
from scouter.sql import SPC_UNARCHIVED_BUCKETS
from tests.bench.bench_archive import _seed, DAYS, ENTITY, _stamp
from tests.services import ensure_postgres, scratch_database
T = {}
orig_table = R.ArchiveReader._table
orig_aggs = R.ArchiveReader._aggregates
orig_lm = R._live_and_manifest
async def lm(*a):
    t0 = time.perf_counter(); r = await orig_lm(*a); T['pg'] = time.perf_counter() - t0; return r
R._live_and_manifest = lm
def aggs(self, *a):
    t0 = time.perf_counter(); r = orig_aggs(self, *a); T['archive'] = time.perf_counter() - t0; return r
R.ArchiveReader._aggregates = aggs
async def run(dsn, total, root):
    async with trio_asyncio.open_loop():
        db = await open_pool(dsn, DatabaseSettings(max_pool_size=4, min_pool_size=2))
        await migrate(db)
        now = datetime.datetime.now(datetime.UTC)
        start = (now - datetime.timedelta(days=DAYS + 31)).replace(minute=0, second=0, microsecond=0)
        await _seed(db, total, start)
        stores = StoreHandle.of(LocalStore(root, mkdir=True), str(root))
        await ArchiverActor(DatabaseHandle(db), stores, 30, ScouterMetrics.create(CollectorRegistry(), process=False)).run_once()
        await db.execute("ANALYZE scouter.spc_drift")
        args = {"space": ENTITY[0], "name": ENTITY[1], "version": ENTITY[2], "time_interval": "FiveMinutes", "max_data_points": "100", "drift_type": "Spc", "begin_custom_datetime": _stamp(start), "end_custom_datetime": _stamp(start + datetime.timedelta(days=DAYS))}
        for threads in (1, 2, 4, 8, 16, 2, 4, 8):
            reader = R.ArchiveReader(stores, 30, cache_bytes=1, fetch_threads=threads)
            print(threads, end=' ')
            q = parse_drift_query(args, now)
            w = q.window
            t0 = time.perf_counter()
            await reader.parts(db, "spc", q, SPC_UNARCHIVED_BUCKETS, (q.space, q.name, q.version, q.bucket, w.begin, w.end))
            print({k: round(v * 1000) for k, v in T.items()}, 'total', round((time.perf_counter() - t0) * 1000))
        await close_pool(db)
with scratch_database(ensure_postgres(), prefix="scouter_bench_") as dsn, tempfile.TemporaryDirectory() as tmp:
    trio.run(run, dsn, 1_000_000, Path(tmp) / "a")
