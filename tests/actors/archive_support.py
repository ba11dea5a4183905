"""Helpers of the archive tests: rows dated in the past, an S3-compatible server (moto), reading the store back."""

from __future__ import annotations

import contextlib
import os
import urllib.request
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import obstore
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from prometheus_client import CollectorRegistry

from actors.archive_store import ObjectStore, StoreHandle
from actors.archiver import ArchiverActor
from actors.database import Database, DatabaseHandle
from actors.metrics import ScouterMetrics
from tests.drift_profiles import CUSTOM_COLUMNS, PSI_COLUMNS, SPC_COLUMNS, copy_rows

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
    from tests.emulators import private_azurite

    with private_azurite() as server, environment(server.env):
        server.create_container("archive")
        yield "archive"
