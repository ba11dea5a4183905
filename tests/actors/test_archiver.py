"""The archiver against a real PostgreSQL and real stores (a local folder, memory, an S3-compatible server)."""

from __future__ import annotations

import base64
import secrets
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pytest
import trio
from obstore.store import LocalStore, MemoryStore

from actors.archive_reader import ArchiveReader, ManifestEntry
from actors.archive_store import SCHEMAS, StorageError, StoreHandle, open_store, put_object
from actors.archiver import ArchiveProgress
from actors.database import Database, DatabaseHandle
from actors.maintenance import MaintenanceActor
from config import StorageSettings
from scouter.archive import KINDS, entity_tag
from scouter.queries import parse_drift_query

from .archive_support import (
    OLD,
    S3Server,
    advisory_locks_released,
    archived_rows,
    archiver,
    fetch_count,
    insert,
    keys,
    kill_midway,
    metrics,
    read,
    s3_server,
    script,
)

pytestmark = pytest.mark.postgres

__all__ = ["s3_server"]  # the fixture, imported for the tests below

HOUR = timedelta(hours=1)
SPC = KINDS[0]
EXPECTED_SCHEMAS = {
    "spc": [("created_at", "timestamp[ns]"), ("space", "string"), ("name", "string"), ("version", "string"),
            ("feature", "string"), ("value", "double")],
    "psi": [("created_at", "timestamp[ns]"), ("space", "string"), ("name", "string"), ("version", "string"),
            ("feature", "string"), ("bin_id", "uint64"), ("bin_count", "uint64")],
    "custom": [("created_at", "timestamp[ns]"), ("space", "string"), ("name", "string"), ("version", "string"),
               ("metric", "string"), ("value", "double")],
}  # fmt: skip


def _path(kind: str, space: str, name: str, version: str, hour: datetime, part: int = 0) -> str:
    tag = entity_tag(space, name, version)
    return (
        f"{space}/{name}/{version}/{kind}/year={hour.year}/month={hour.month}/day={hour.day}/hour={hour.hour}/"
        f"{kind}-{hour:%Y%m%d%H}-{part:04d}-{tag}.parquet"
    )


def _spc(hour: datetime, count: int, space: str = "sp", name: str = "nm", version: str = "1.0.0") -> list[tuple]:
    """`count` SPC rows in `hour`, 7 seconds and a few microseconds apart, two features."""
    return [
        (hour + timedelta(seconds=7 * i, microseconds=i), space, name, version, f"feature_{i % 2}", float(i) / 4)
        for i in range(count)
    ]


def _tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


async def test_pass_writes_one_object_per_kind_entity_and_hour_in_upstream_layout(db: Database, tmp_path: Path) -> None:
    """Rows past retention, grouped by kind, entity and UTC hour: one Parquet object each, at
    {space}/{name}/{version}/{kind}/year=/month=/day=/hour= without zero padding, with the §8.1 schemas (non-nullable,
    naive timestamp[ns] UTC, uint64 bins), holding exactly the rows; the rows are marked archived and logged; rows
    newer than the cut-off stay."""
    spc = _spc(OLD, 5) + _spc(OLD + HOUR, 3) + _spc(OLD, 2, version="2.0.0")
    psi = [(OLD + timedelta(minutes=m), "sp", "nm", "1.0.0", "f", b, 10 * b + m) for m in (1, 2) for b in (1, 2, 3)]
    custom = [(OLD + timedelta(minutes=5), "sp", "nm", "1.0.0", "mae", 1.5)]
    custom.append((OLD + 2 * HOUR, "sp", "nm", "1.0.0", "mae", 2.5))
    recent = _spc(datetime.now(UTC) - timedelta(days=29, hours=23), 4)
    await insert(db, "spc_drift", spc + recent)
    await insert(db, "psi_drift", psi)
    await insert(db, "custom_drift", custom)
    store = LocalStore(tmp_path / "root", mkdir=True)
    actor = archiver(db, store)

    report = await actor.run_once()

    expected_keys = sorted([
        _path("spc", "sp", "nm", "1.0.0", OLD),
        _path("spc", "sp", "nm", "1.0.0", OLD + HOUR),
        _path("spc", "sp", "nm", "2.0.0", OLD),
        _path("psi", "sp", "nm", "1.0.0", OLD),
        _path("custom", "sp", "nm", "1.0.0", OLD),
        _path("custom", "sp", "nm", "1.0.0", OLD + 2 * HOUR),
    ])  # fmt: skip
    assert expected_keys == keys(store)
    assert "month=0" not in "".join(expected_keys)
    for key in expected_keys:
        schema = read(store, key).schema
        kind = key.split("/")[3]
        assert EXPECTED_SCHEMAS[kind] == [(f.name, str(f.type)) for f in schema]
        assert not any(f.nullable for f in schema)
    assert sorted(spc) == sorted(archived_rows(store, "sp/nm/1.0.0/spc/") + archived_rows(store, "sp/nm/2.0.0/spc/"))
    assert sorted(psi) == archived_rows(store, "sp/nm/1.0.0/psi/")
    assert sorted(custom) == archived_rows(store, "sp/nm/1.0.0/custom/")

    total = len(spc) + len(psi) + len(custom)
    assert (6, total, ("spc", "psi", "custom")) == (report.objects, report.rows, report.kinds)
    assert sum((tmp_path / "root" / key).stat().st_size for key in expected_keys) == report.bytes
    assert len(recent) == await fetch_count(db, "SELECT count(*) FROM scouter.spc_drift WHERE NOT archived")
    assert 0 == await fetch_count(db, "SELECT count(*) FROM scouter.psi_drift WHERE NOT archived")
    log = await db.fetch("SELECT kind, object_path, rows, bytes, part FROM scouter.archive_log ORDER BY object_path")
    logged = [(r["kind"], r["object_path"], r["part"]) for r in log]
    assert [(k.split("/")[3], k, 0) for k in sorted(expected_keys)] == logged
    assert report.rows == sum(r["rows"] for r in log)
    assert report.bytes == sum(r["bytes"] for r in log)
    sample = actor.metrics.registry.get_sample_value
    kinds = ("spc", "psi", "custom")
    assert [len(spc), len(psi), len(custom)] == [sample("scouter_archive_rows_total", {"kind": k}) for k in kinds]
    assert report.bytes == sum(sample("scouter_archive_bytes_total", {"kind": k}) for k in kinds)
    assert [3, 1, 2] == [sample("scouter_archive_objects_total", {"kind": k}) for k in kinds]
    assert 1 == sample("scouter_archive_passes_total", {"outcome": "ok"})
    assert 0 < sample("scouter_archive_last_success_timestamp_seconds")

    again = await actor.run_once()
    assert (0, 0) == (again.objects, again.rows)
    assert expected_keys == keys(store)


async def test_created_at_is_naive_utc_nanoseconds(db: Database) -> None:
    """created_at keeps its microseconds and is stored as naive UTC nanoseconds (what upstream's files hold)."""
    moment = OLD + timedelta(minutes=12, seconds=34, microseconds=567891)
    await insert(db, "spc_drift", [(moment, "sp", "nm", "1", "f", 1.0)])
    store = MemoryStore()
    await archiver(db, store).run_once()
    (key,) = keys(store)
    column = read(store, key).column("created_at")
    assert pa.timestamp("ns") == column.type
    expected_ns = (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1) * 1000
    assert [expected_ns] == column.cast(pa.int64()).to_pylist()


async def test_s3_compatible_store(db: Database, s3_server: S3Server) -> None:
    """SCOUTER_STORAGE_URI=s3://bucket/prefix through obstore, credentials and endpoint from AWS_* variables: the same
    layout under the prefix, the same rows."""
    rows = _spc(OLD, 4) + _spc(OLD + 3 * HOUR, 2)
    await insert(db, "spc_drift", rows)
    store = open_store(StorageSettings(uri=f"s3://{s3_server.bucket}/scouter"))
    report = await archiver(db, store).run_once()
    assert [_path("spc", "sp", "nm", "1.0.0", OLD), _path("spc", "sp", "nm", "1.0.0", OLD + 3 * HOUR)] == keys(store)
    assert (2, 6) == (report.objects, report.rows)
    assert sorted(rows) == archived_rows(store)
    import boto3

    client = boto3.client("s3", endpoint_url=s3_server.endpoint, region_name="us-east-1")
    listed = sorted(o["Key"] for o in client.list_objects_v2(Bucket=s3_server.bucket)["Contents"])
    assert ["scouter/" + k for k in keys(store)] == listed


class Crash(Exception):
    pass


async def test_failure_after_upload_before_marking_then_rerun(db: Database, tmp_path: Path) -> None:
    """The third upload succeeds and then the pass fails before marking: two groups are committed, the third object
    is an orphan and its rows stay unarchived; the re-run overwrites the orphan (same name), so every row is in
    exactly one object and every object is logged once."""
    rows = _spc(OLD, 3) + _spc(OLD + HOUR, 3) + _spc(OLD + 2 * HOUR, 3) + _spc(OLD + 3 * HOUR, 3)
    await insert(db, "spc_drift", rows)
    store = LocalStore(tmp_path, mkdir=True)
    uploads: list[str] = []

    def put_then_crash(store: Any, key: str, data: bytes) -> None:
        put_object(store, key, data)
        uploads.append(key)
        if len(uploads) == 3:
            raise Crash(key)

    failing = archiver(db, store, put=put_then_crash)
    with pytest.raises(Crash):
        await failing.run_once()
    assert 1 == failing.metrics.registry.get_sample_value("scouter_archive_passes_total", {"outcome": "failed"})
    assert uploads == keys(store)
    assert 6 == await fetch_count(db, "SELECT count(*) FROM scouter.spc_drift WHERE archived")
    assert 2 == await fetch_count(db, "SELECT count(*) FROM scouter.archive_log")

    # late rows for the orphan's hour arrive before the re-run: they join the overwritten part 0
    late = _spc(OLD + 2 * HOUR + timedelta(minutes=50), 2)
    await insert(db, "spc_drift", late)
    report = await archiver(db, store).run_once()
    assert (2, 8) == (report.objects, report.rows)
    assert [_path("spc", "sp", "nm", "1.0.0", OLD + h * HOUR) for h in range(4)] == keys(store)
    assert sorted(rows + late) == archived_rows(store)
    assert 0 == await fetch_count(db, "SELECT count(*) FROM scouter.spc_drift WHERE NOT archived")
    assert [3, 3, 5, 3] == [r["rows"] for r in await db.fetch("SELECT rows FROM scouter.archive_log ORDER BY hour")]


async def test_cancelled_mid_pass_then_rerun(db: Database, tmp_path: Path) -> None:
    """Cancelled while its second object is uploaded but not yet marked (a shutdown cutting the pass): the group's
    transaction rolls back, the connection goes back to the pool; the re-run loses and duplicates nothing."""
    rows = _spc(OLD, 2) + _spc(OLD + HOUR, 2) + _spc(OLD + 2 * HOUR, 2)
    await insert(db, "spc_drift", rows)
    store = LocalStore(tmp_path, mkdir=True)
    uploaded = threading.Event()
    release = threading.Event()
    calls = 0

    def put_then_stall(store: Any, key: str, data: bytes) -> None:
        nonlocal calls
        put_object(store, key, data)
        calls += 1
        if calls == 2:
            uploaded.set()
            release.wait(10)

    actor = archiver(db, store, put=put_then_stall)
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(actor.run_once)
            await trio.to_thread.run_sync(uploaded.wait, 10)
            nursery.cancel_scope.cancel(reason="test: shutdown mid-pass")
    release.set()
    assert 2 == len(keys(store))
    assert 2 == await fetch_count(db, "SELECT count(*) FROM scouter.spc_drift WHERE archived")
    assert 1 == await fetch_count(db, "SELECT count(*) FROM scouter.archive_log")
    assert db.pool.get_idle_size() == db.pool.get_size()  # nothing stranded
    report = await archiver(db, store).run_once()
    assert (2, 4) == (report.objects, report.rows)
    assert sorted(rows) == archived_rows(store)
    assert 3 == len(keys(store))
    assert 3 == await fetch_count(db, "SELECT count(*) FROM scouter.archive_log")


async def test_late_rows_for_an_archived_hour_become_the_next_part(db: Database) -> None:
    """Rows arriving for an hour already archived go to part 1 of that hour; part 0 is never rewritten."""
    first = _spc(OLD, 3)
    await insert(db, "spc_drift", first)
    store = MemoryStore()
    await archiver(db, store).run_once()
    part0 = _path("spc", "sp", "nm", "1.0.0", OLD)
    before = read(store, part0)
    late = _spc(OLD + timedelta(minutes=30), 2)
    await insert(db, "spc_drift", late)
    report = await archiver(db, store).run_once()
    assert (1, 2) == (report.objects, report.rows)
    assert [part0, _path("spc", "sp", "nm", "1.0.0", OLD, part=1)] == keys(store)
    assert before.equals(read(store, part0))
    assert sorted(first + late) == archived_rows(store)
    assert [0, 1] == [r["part"] for r in await db.fetch("SELECT part FROM scouter.archive_log ORDER BY part")]


#: Names upstream accepts that a naive layout would turn into other folders, or none.
HOSTILE = [
    "org/model",
    "..",
    ".",
    "a\\b",
    "%2e%2e",
    "%2E%2E",
    "/etc",
    "../../escape",
    "c\\..\\d",
    "x\x01y",
    "tab\there",
    "\x7f",
    "名前",
    "Model",
    "model",
    "é" * 200,
]


def _hostile_rows() -> list[tuple]:
    rows = []
    for i, bad in enumerate(HOSTILE):
        for entity in ((bad, "nm", "1"), ("sp", bad, "1"), ("sp", "nm", bad)):
            rows.append((OLD + timedelta(minutes=i), *entity, "f", float(i)))
    return rows


async def _read_back(db: Database, store: Any, entity: tuple[str, str, str]) -> list[tuple]:
    """(feature, count, mean) of `entity` as the read-back computes it from the objects archive_log lists."""
    manifest = await db.fetch(
        "SELECT object_path, rows, bytes FROM scouter.archive_log WHERE kind = 'spc' AND space = $1 AND name = $2"
        " AND version = $3", *entity,
    )  # fmt: skip
    reader = ArchiveReader(StoreHandle.of(store), 30)
    query = parse_drift_query(
        {"space": entity[0], "name": entity[1], "version": entity[2], "time_interval": "TwentyFourHours",
         "max_data_points": "1", "drift_type": "Spc",
         "begin_custom_datetime": (OLD - HOUR).strftime("%Y-%m-%dT%H:%M:%SZ"),
         "end_custom_datetime": (OLD + HOUR).strftime("%Y-%m-%dT%H:%M:%SZ")},
        datetime.now(UTC),
    )  # fmt: skip
    entries = [ManifestEntry(r["object_path"], r["rows"], r["bytes"]) for r in manifest]
    return [(feature, count, mean) for feature, _, count, mean in await reader.aggregates(SPC, entries, query)]


async def _check_hostile_names_archived(db: Database, store: Any) -> list[str]:
    rows = _hostile_rows()
    good = _spc(OLD, 2)
    await insert(db, "spc_drift", rows + good)
    report = await archiver(db, store).run_once()
    assert (len(rows) + len(good), 0) == (report.rows, report.quarantined_rows)
    assert 0 == await fetch_count(db, "SELECT count(*) FROM scouter.spc_drift WHERE NOT archived")
    assert sorted(rows + good) == archived_rows(store)
    for i, bad in enumerate(HOSTILE):
        for entity in ((bad, "nm", "1"), ("sp", bad, "1"), ("sp", "nm", bad)):
            assert [("f", 1, float(i))] == await _read_back(db, store, entity), entity
    stored = keys(store)
    logged = sorted(r["object_path"] for r in await db.fetch("SELECT object_path FROM scouter.archive_log"))
    assert logged == stored
    for key in stored:
        parts = key.split("/")
        assert 9 == len(parts), key
        assert all(part not in ("", ".", "..") for part in parts), key
        assert all(part.isprintable() for part in parts), key
    return stored


async def test_names_upstream_accepts_are_archived_inside_the_local_root_and_read_back(
    db: Database, tmp_path: Path
) -> None:
    """Spaces, names and versions with '/', '\\', dot names, escapes, control characters, names differing only in
    case and over-long names are archived, each entity in its own encoded folders; nothing lands outside the storage
    root and the read-back finds every row."""
    root = tmp_path / "inner" / "root"
    stored = await _check_hostile_names_archived(db, LocalStore(root, mkdir=True))
    everything = await trio.to_thread.run_sync(_tree, tmp_path)
    assert all(p == "inner" or p.startswith("inner/root") for p in everything), everything
    files = [p for p in everything if p.endswith(".parquet")]
    assert sorted(f"inner/root/{key}" for key in stored) == sorted(files)


async def test_names_upstream_accepts_are_archived_inside_the_s3_prefix_and_read_back(
    db: Database, s3_server: S3Server
) -> None:
    """The same names on the S3-compatible store: every object of the bucket under the prefix, one encoded segment
    per name."""
    import boto3

    client = boto3.client("s3", endpoint_url=s3_server.endpoint, region_name="us-east-1")
    bucket = f"names-{secrets.token_hex(4)}"  # a bucket of its own: moto keeps buckets across its servers
    client.create_bucket(Bucket=bucket)
    store = open_store(StorageSettings(uri=f"s3://{bucket}/scouter"))
    stored = await _check_hostile_names_archived(db, store)
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
    listed = sorted(o["Key"] for page in pages for o in page.get("Contents", []))
    assert ["scouter/" + k for k in stored] == listed


async def test_empty_entity_names_are_quarantined_never_written(db: Database, tmp_path: Path) -> None:
    """Rows with an empty space, name or version (inserted in SQL, past the codec) cannot become a folder: they are
    copied to scouter.quarantine and deleted; the good rows of the same pass are archived."""
    hostile = [(OLD, "", "nm", "1", "f", 1.0), (OLD, "sp", "", "1", "f", 1.0), (OLD, "sp", "nm", "", "f", 1.0)]
    good = _spc(OLD, 2)
    await insert(db, "spc_drift", hostile + good)
    root = tmp_path / "root"
    m = metrics()
    report = await archiver(db, LocalStore(root, mkdir=True), metrics=m).run_once()
    assert [_path("spc", "sp", "nm", "1.0.0", OLD)] == keys(LocalStore(root))
    assert (1, 2, len(hostile)) == (report.objects, report.rows, report.quarantined_rows)
    assert 2 == await fetch_count(db, "SELECT count(*) FROM scouter.spc_drift")
    quarantined = await db.fetch("SELECT source, reason, raw FROM scouter.quarantine")
    assert {"archiver"} == {r["source"] for r in quarantined}
    assert len(hostile) == sum(len(orjson.loads(r["raw"])["rows"]) for r in quarantined)
    assert len(hostile) == m.registry.get_sample_value("scouter_archive_quarantined_rows_total", {"kind": "spc"})


async def test_negative_psi_bins_are_quarantined(db: Database) -> None:
    """A negative bin id or count does not fit the uint64 columns: that group is quarantined, the others archived."""
    await insert(db, "psi_drift", [(OLD, "sp", "nm", "1", "f", -1, 5), (OLD + HOUR, "sp", "nm", "1", "f", 1, 5)])
    store = MemoryStore()
    report = await archiver(db, store).run_once()
    assert (1, 1, 1) == (report.objects, report.rows, report.quarantined_rows)
    assert [_path("psi", "sp", "nm", "1", OLD + HOUR)] == keys(store)
    reasons = [r["reason"] for r in await db.fetch("SELECT reason FROM scouter.quarantine")]
    assert ["archiver: bin_id must not be negative"] == reasons


async def test_one_replica_at_a_time(db: Database) -> None:
    """While one pass holds the lock, a second replica's pass is skipped; once it is released the next pass runs."""
    await insert(db, "spc_drift", _spc(OLD, 2) + _spc(OLD + HOUR, 2))
    store = MemoryStore()
    inside = threading.Event()
    release = threading.Event()

    def slow_put(store: Any, key: str, data: bytes) -> None:
        inside.set()
        release.wait(10)
        put_object(store, key, data)

    first = archiver(db, store, put=slow_put)
    second = archiver(db, store)
    reports = []
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:

            async def run_first() -> None:
                reports.append(await first.run_once())

            nursery.start_soon(run_first)
            await trio.to_thread.run_sync(inside.wait, 10)
            skipped = await second.run_once()
            release.set()
    assert skipped.skipped
    assert 1 == second.metrics.registry.get_sample_value("scouter_archive_passes_total", {"outcome": "skipped"})
    assert (2, 4) == (reports[0].objects, reports[0].rows)
    assert 2 == len(keys(store))
    assert not (await second.run_once()).skipped


async def test_archived_partitions_past_retention_are_dropped(db: Database) -> None:
    """The whole flow: partitions of 70 days ago hold unarchived rows and are kept; the archiver writes them; the
    next maintenance round drops them, and the archive still has every row."""
    today = datetime.now(UTC).date()
    old_day = today - timedelta(days=70)
    start = datetime(old_day.year, old_day.month, old_day.day, tzinfo=UTC)
    await MaintenanceActor(DatabaseHandle(db), today=lambda: old_day, days_ahead=1).run_once()
    rows = _spc(start + 5 * HOUR, 3) + _spc(start + 26 * HOUR, 2)  # that day and the next
    await insert(db, "spc_drift", rows)
    maintenance = MaintenanceActor(DatabaseHandle(db), days_ahead=1)
    before = await maintenance.run_once()
    assert {f"spc_drift_p{old_day:%Y%m%d}", f"spc_drift_p{old_day + timedelta(days=1):%Y%m%d}"} <= set(
        before.kept_unarchived
    )
    store = MemoryStore()
    await archiver(db, store).run_once()
    after = await maintenance.run_once()
    assert {f"spc_drift_p{old_day:%Y%m%d}", f"spc_drift_p{old_day + timedelta(days=1):%Y%m%d}"} <= set(after.dropped)
    assert not after.kept_unarchived
    assert 0 == await fetch_count(db, "SELECT count(*) FROM scouter.spc_drift")
    assert sorted(rows) == archived_rows(store)


async def test_progress_is_reported_per_group(db: Database) -> None:
    """The callback sees the plan (0 of N) and then every group, with rows counted."""
    await insert(db, "spc_drift", _spc(OLD, 3) + _spc(OLD + HOUR, 1))
    seen: list[ArchiveProgress] = []
    await archiver(db, MemoryStore()).run_once(progress=seen.append)
    assert [(0, 2, 0, 4), (1, 2, 3, 4), (2, 2, 4, 4)] == [
        (p.groups_done, p.groups_total, p.rows_done, p.rows_total) for p in seen
    ]


async def test_actor_archives_at_start_and_then_every_interval(db: Database) -> None:
    """The actor reports ready at once, archives at start-up, then again after its interval; it stops promptly."""
    await insert(db, "spc_drift", _spc(OLD, 2))
    store = MemoryStore()
    actor = archiver(db, store, interval=0.3, compact=False)  # counting hourly objects (compaction: its own tests)
    stop = trio.Event()
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            await nursery.start(actor.run, stop)
            while len(keys(store)) < 1:
                await trio.sleep(0.02)
            await insert(db, "spc_drift", _spc(OLD + HOUR, 2))
            while len(keys(store)) < 2:
                await trio.sleep(0.02)
            stop.set()
    assert 0 == await fetch_count(db, "SELECT count(*) FROM scouter.spc_drift WHERE NOT archived")


def test_open_store_local_path_is_created_and_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A relative local path becomes an absolute folder, created when missing; file:// and memory:// work too."""
    monkeypatch.chdir(tmp_path)
    store = open_store(StorageSettings(uri="./archive/root"))
    put_object(store, "a/b.parquet", b"x")
    assert (tmp_path / "archive" / "root" / "a" / "b.parquet").read_bytes() == b"x"
    file_store = open_store(StorageSettings(uri=f"file://{tmp_path}/other"))
    put_object(file_store, "c.parquet", b"y")
    assert (tmp_path / "other" / "c.parquet").read_bytes() == b"y"
    assert isinstance(open_store(StorageSettings(uri="memory:///")), MemoryStore)


def test_store_handle_opens_once() -> None:
    """The archiver and the read-back share one store through the handle (one memory store per process)."""
    handle = StoreHandle(StorageSettings(uri="memory:///"))
    assert handle.get() is handle.get()


def test_schemas_match_the_spec() -> None:
    """The schemas the archiver writes are server.md §8.1's, every column non-nullable."""
    for kind, fields in EXPECTED_SCHEMAS.items():
        assert fields == [(f.name, str(f.type)) for f in SCHEMAS[kind]]
        assert not any(f.nullable for f in SCHEMAS[kind])


async def test_killed_mid_pass_then_rerun(db: Database, fresh_database_dsn: str, tmp_path: Path) -> None:
    """A process SIGKILLed right after an upload, before marking: PostgreSQL rolls its transaction back and frees the
    lock; the re-run overwrites the orphan, and the archive holds every row exactly once."""
    rows = _spc(OLD, 2) + _spc(OLD + HOUR, 2) + _spc(OLD + 2 * HOUR, 2)
    await insert(db, "spc_drift", rows)
    root = tmp_path / "root"
    argv = script("tests.actors.archiver_script", fresh_database_dsn, str(root))
    seen = await kill_midway(argv, lambda output: output.count(b"UPLOADED") >= 2)
    assert b"DONE" not in seen
    store = LocalStore(root)
    assert 2 == len(keys(store))
    await advisory_locks_released(db)
    assert 2 == await fetch_count(db, "SELECT count(*) FROM scouter.spc_drift WHERE archived")
    report = await archiver(db, store).run_once()
    assert (2, 4) == (report.objects, report.rows)
    assert sorted(rows) == archived_rows(store)
    assert 3 == len(keys(store))
    assert 3 == await fetch_count(db, "SELECT count(*) FROM scouter.archive_log")


def test_google_key_from_base64_reaches_the_store() -> None:
    """GOOGLE_ACCOUNT_JSON_BASE64 is decoded and handed to the GCS store (which checks it): base64 of a JSON that is
    not a service-account key, and text that is not base64, are both a StorageError saying why."""
    not_a_key = base64.b64encode(b'{"not": "a key"}').decode()
    with pytest.raises(StorageError, match="private_key"):
        open_store(StorageSettings(uri="gs://bucket/prefix", google_account_json_base64=not_a_key))
    with pytest.raises(StorageError, match="GOOGLE_ACCOUNT_JSON_BASE64"):
        open_store(StorageSettings(uri="gs://bucket", google_account_json_base64="not base64!"))
