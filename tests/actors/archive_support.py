"""Helpers of the archive tests: rows dated in the past, an S3-compatible server (moto), reading the store back,
the drift query the read-back answers, and a script killed midway."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import attrs
import obstore
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import trio
from prometheus_client import CollectorRegistry

from actors.archive_store import ObjectStore, StoreHandle
from actors.archiver import ArchiverActor
from actors.database import Database, DatabaseHandle
from actors.metrics import ScouterMetrics
from scouter.queries import DriftQuery, parse_drift_query
from tests.drift_profiles import CUSTOM_COLUMNS, PSI_COLUMNS, SPC_COLUMNS, copy_rows

ROOT = Path(__file__).resolve().parents[2]
RETENTION_DAYS = 30
#: A whole UTC hour well past retention: rows from here on are archived by a pass run now. Always 02:00, whatever
#: the hour the suite runs at: the tests' hours (OLD - 1 h … OLD + 6 h) then stay on one day, with single-digit
#: `hour=` folders, so sorted object keys follow time order.
OLD = (datetime.now(UTC) - timedelta(days=40)).replace(hour=2, minute=0, second=0, microsecond=0)


def metrics() -> ScouterMetrics:
    return ScouterMetrics.create(CollectorRegistry(), process=False)


def archiver(db: Database, store: ObjectStore, **kwargs: Any) -> ArchiverActor:
    """An archiver on `store` with 30 days of retention."""
    return ArchiverActor(DatabaseHandle(db), StoreHandle.of(store), RETENTION_DAYS, kwargs.pop("metrics", metrics()),
                         **kwargs)  # fmt: skip


async def insert(db: Database, table: str, rows: Sequence[tuple[Any, ...]]) -> None:
    """COPY rows (created_at, space, name, version, key, values...) into scouter.`table`."""
    columns = {"spc_drift": SPC_COLUMNS, "psi_drift": PSI_COLUMNS, "custom_drift": CUSTOM_COLUMNS}[table]
    await db.run(copy_rows, table, columns, rows)


async def fetch_count(db: Database, sql: str, *args: Any) -> int:
    """The single number `sql` selects."""
    return int(await db.fetchval(sql, *args))


def spc_query(entity: Sequence[str], begin: datetime, end: datetime, points: int = 50) -> DriftQuery:
    """The client's SPC drift query for `entity`, hourly buckets over [begin, end], at most `points` of them."""
    args = {
        "space": entity[0], "name": entity[1], "version": entity[2], "time_interval": "OneHour",
        "max_data_points": str(points), "drift_type": "Spc",
        "begin_custom_datetime": begin.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "end_custom_datetime": end.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
    }  # fmt: skip
    return parse_drift_query(args, datetime.now(UTC))


def bucket_args(query: DriftQuery) -> tuple[Any, ...]:
    """The bucket statements' parameters for `query`: entity, bucket width, window."""
    w = query.window
    return (query.space, query.name, query.version, query.bucket, w.begin, w.end)


async def kill_midway(argv: Sequence[str], reached: Callable[[bytes], bool]) -> bytes:
    """Run `argv` from the checkout and SIGKILL it as soon as its output so far is `reached` (within 30 s); returns
    that output. The process never outlives the call."""
    proc = await trio.lowlevel.open_process(list(argv), cwd=ROOT, stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        seen = b""
        with trio.fail_after(30):
            while not reached(seen):
                chunk = await proc.stdout.receive_some()
                assert chunk, seen
                seen += chunk
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    return seen


def script(module: str, *args: str) -> list[str]:
    """The command line running `module` with this interpreter."""
    return [sys.executable, "-m", module, *args]


#: Backends of this database, other than the one asking, still running a statement or holding a transaction open.
_BUSY_BACKENDS = """
SELECT count(*) FROM pg_stat_activity
WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend' AND state <> 'idle'
"""


async def advisory_locks_released(db: Database) -> None:
    """Wait until the killed client's backends are done: no advisory lock held, and no backend busy. The server
    notices a killed client at once, but not necessarily before the test asks; and a COMMIT the client sent just
    before it died still completes, so a test reading in several queries meanwhile would see its rows in some of
    them and not in others."""
    with trio.fail_after(20):
        while await fetch_count(db, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'") or await fetch_count(
            db, _BUSY_BACKENDS
        ):
            await trio.sleep(0.05)


def keys(store: ObjectStore) -> list[str]:
    """Every object's path in the store, sorted."""
    return sorted(item["path"] for batch in obstore.list(store) for item in batch)


def read(store: ObjectStore, key: str) -> pa.Table:
    return pq.read_table(pa.BufferReader(obstore.get(store, key).bytes()))


def archived_rows(store: ObjectStore, prefix: str = "") -> list[tuple[Any, ...]]:
    """Every row of every Parquet object (under `prefix`), as tuples with created_at made aware UTC, sorted."""
    rows = []
    for key in keys(store):
        if not key.startswith(prefix):
            continue
        table = read(store, key)
        # nanoseconds would come back as pandas Timestamps; the database holds microseconds anyway
        table = table.set_column(0, "created_at", table.column(0).cast(pa.timestamp("us")))
        for row in table.to_pylist():
            values = list(row.values())
            values[0] = values[0].replace(tzinfo=UTC)
            rows.append(tuple(values))
    return sorted(rows)


@attrs.frozen
class S3Server:
    endpoint: str
    bucket: str


@pytest.fixture
def s3_server() -> Iterator[S3Server]:
    """An S3-compatible server (moto, in a thread) on 127.0.0.1 with an empty bucket; obstore reaches it through the
    usual AWS environment variables, set for the test and restored after."""
    from moto.server import ThreadedMotoServer  # imported late: moto is a test-only dependency

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    env = {
        "AWS_ENDPOINT": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_ALLOW_HTTP": "true",
    }
    try:
        with environment(env):
            import boto3

            # moto keeps its buckets in the process, across servers: start every test from an empty one
            reset = urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")
            urllib.request.urlopen(reset, timeout=10).close()
            boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(Bucket="archive")
            yield S3Server(endpoint, "archive")
    finally:
        server.stop()


@contextlib.contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    """`values` set in os.environ (where obstore reads credentials and endpoints) inside the block, restored after."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@pytest.fixture
def azurite_container() -> Iterator[str]:
    """An Azure blob container named `archive` on a private Azurite (installed from npm on first use); obstore
    reaches it through AZURE_STORAGE_USE_EMULATOR and AZURITE_BLOB_STORAGE_URL, set for the test."""
    from tests.services import private_azurite

    with private_azurite() as server, environment(server.env):
        server.create_container("archive")
        yield "archive"
