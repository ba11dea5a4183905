"""The archive on cloud object stores through their emulators: write a pass, read the objects and the aggregates
back (Azure Blob Storage on Azurite; S3 on moto is in test_archiver; GCS has no usable emulator: see
tests/services/_azurite.py)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from actors.archive_reader import ArchiveReader
from actors.archive_store import StoreHandle, open_store
from actors.database import Database
from config import StorageSettings
from scouter.queries import parse_drift_query
from scouter.sql import SPC_BUCKETS, SPC_UNARCHIVED_BUCKETS

from .archive_support import OLD, archived_rows, archiver, azurite_container, insert, keys

pytestmark = pytest.mark.postgres

__all__ = ["azurite_container"]  # the fixture, imported for the tests below

ENTITY = ("sp", "nm", "1.0.0")


async def test_azure_blob_store_archives_and_reads_back(db: Database, azurite_container: str) -> None:
    """SCOUTER_STORAGE_URI=az://container/prefix through obstore on Azurite: one object per hour under the prefix,
    the very rows stored, and the archive reader's aggregates equal to PostgreSQL's before archiving."""
    rows = [
        (OLD + timedelta(hours=h, minutes=m, microseconds=h), *ENTITY, f"f{m % 3}", float(h * 60 + m) / 8)
        for h in range(3)
        for m in range(0, 60, 7)
    ]
    await insert(db, "spc_drift", rows)
    query = parse_drift_query(
        {
            "space": ENTITY[0], "name": ENTITY[1], "version": ENTITY[2], "time_interval": "OneHour",
            "max_data_points": "6", "drift_type": "Spc",
            "begin_custom_datetime": f"{OLD - timedelta(hours=1):%Y-%m-%dT%H:%M:%S.%fZ}",
            "end_custom_datetime": f"{OLD + timedelta(hours=4):%Y-%m-%dT%H:%M:%S.%fZ}",
        },
        OLD + timedelta(days=40),
    )  # fmt: skip
    window = query.window
    params = (query.space, query.name, query.version, query.bucket, window.begin, window.end)
    before = sorted(tuple(r) for r in await db.fetch(SPC_BUCKETS, *params))

    store = open_store(StorageSettings(uri=f"az://{azurite_container}/scouter"))
    report = await archiver(db, store).run_once()

    assert (3, len(rows)) == (report.objects, report.rows)
    assert 3 == len(keys(store))
    assert all(key.startswith(f"{ENTITY[0]}/{ENTITY[1]}/{ENTITY[2]}/spc/") for key in keys(store))
    assert sorted(rows) == archived_rows(store)
    reader = ArchiveReader(StoreHandle.of(store, f"az://{azurite_container}/scouter"), 30)
    live, archived = await reader.parts(db, "spc", query, SPC_UNARCHIVED_BUCKETS, params)
    assert [] == list(live)
    got = sorted(archived)
    assert [(f, b, n) for f, b, n, _ in before] == [(f, b, n) for f, b, n, _ in got]
    assert [m for *_, m in before] == pytest.approx([m for *_, m in got], rel=1e-12)
