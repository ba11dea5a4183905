"""Daily compaction of the archive against a real PostgreSQL and real stores (a local folder, memory, moto's S3)."""

from __future__ import annotations

import shutil
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import trio
import trio_asyncio
from obstore.store import LocalStore, MemoryStore, S3Store

from actors.archive_compactor import ArchiveCompactor
from actors.archive_reader import ArchiveReader
from actors.archive_store import StoreHandle
from actors.database import Database, DatabaseHandle
from scouter.archive import entity_tag, floor_day
from scouter.sql import ARCHIVE_LOCK_KEY, SPC_BUCKETS, SPC_UNARCHIVED_BUCKETS

from .archive_support import (
    OLD,
    S3Server,
    advisory_locks_released,
    archived_rows,
    archiver,
    bucket_args,
    fetch_count,
    insert,
    keys,
    kill_midway,
    read,
    s3_server,
    script,
    spc_query,
)

pytestmark = pytest.mark.postgres

__all__ = ["s3_server"]  # the fixture, imported for the tests below

ROOT = Path(__file__).resolve().parents[2]
HOUR = timedelta(hours=1)
DAY0 = floor_day(OLD)
#: The pass's clock: 35 days and a half after DAY0, so days DAY0 … DAY0 + 4 are complete and DAY0 + 5 is not (its
#: rows before 12:00 are archived, in hourly objects that stay hourly).
NOW = DAY0 + timedelta(days=35, hours=12, minutes=30)
ENTITY = ("sp", "nm", "1.0.0")


def _spc(hour: datetime, count: int, version: str = "1.0.0") -> list[tuple]:
    return [(hour + timedelta(seconds=7 * i, microseconds=i), "sp", "nm", version, f"f{i % 2}", i / 4) for i in
            range(count)]  # fmt: skip


def _day_key(kind: str, day: datetime, part: int, version: str = "1.0.0") -> str:
    folder = f"sp/nm/{version}/{kind}/year={day.year}/month={day.month}/day={day.day}"
    return f"{folder}/{kind}-{day:%Y%m%d}-{part:04d}-{entity_tag('sp', 'nm', version)}.parquet"


async def _log(db: Database) -> list[tuple]:
    rows = await db.fetch(
        "SELECT kind, version, hour, span, object_path, rows FROM scouter.archive_log ORDER BY 1, 2, 3, 4"
    )
    return [tuple(r) for r in rows]


async def _seed(db: Database) -> tuple[list[tuple], list[tuple], list[tuple]]:
    """SPC rows over 3 hours of DAY0 and one of DAY0 + 1 for two versions, PSI rows in DAY0, and SPC rows of the
    incomplete day DAY0 + 5."""
    spc = _spc(DAY0 + HOUR, 5) + _spc(DAY0 + 2 * HOUR, 3) + _spc(DAY0 + 23 * HOUR, 4) + _spc(DAY0 + 27 * HOUR, 2)
    spc += _spc(DAY0 + 5 * HOUR, 3, version="2.0.0")
    psi = [
        (DAY0 + timedelta(hours=h, minutes=1), "sp", "nm", "1.0.0", "f", b, 10 * b + h) for h in (3, 4) for b in (1, 2)
    ]
    recent = _spc(DAY0 + timedelta(days=5, hours=10), 3)
    await insert(db, "spc_drift", spc + recent)
    await insert(db, "psi_drift", psi)
    return spc, psi, recent


async def test_compaction_merges_each_complete_day_into_one_object(db: Database) -> None:
    """After an archive pass and a compaction pass: one object per kind, entity and complete day, in the day's Hive
    folder, holding exactly that day's rows sorted by time; archive_log lists it alone with a span of one day; the
    hourly objects are deleted; the incomplete day's hourly objects stay as they were."""
    spc, psi, recent = await _seed(db)
    store = MemoryStore()
    actor = archiver(db, store, clock=lambda: NOW)
    archived = await actor.run_once()
    assert 8 == archived.objects
    hourly_recent = [k for k in keys(store) if f"day={(DAY0 + timedelta(days=5)).day}/" in k]

    report = await actor.compact_once()

    day1 = DAY0 + timedelta(days=1)
    expected = sorted([
        _day_key("spc", DAY0, 0), _day_key("spc", day1, 0), _day_key("spc", DAY0, 0, "2.0.0"), _day_key("psi", DAY0, 0)
    ])  # fmt: skip
    assert sorted(expected + hourly_recent) == keys(store)
    assert (4, 7, len(spc) + len(psi), 0) == (report.days, report.objects_retired, report.rows, report.failed_days)
    assert sorted(spc + recent) == sorted(
        archived_rows(store, "sp/nm/1.0.0/spc/") + archived_rows(store, "sp/nm/2.0.0/spc/")
    )
    created = read(store, _day_key("spc", DAY0, 0)).column("created_at").to_pylist()
    assert sorted(created) == created
    assert sorted(psi) == archived_rows(store, "sp/nm/1.0.0/psi/")
    log = await _log(db)
    days = [entry for entry in log if entry[3] == timedelta(days=1)]
    assert sorted(expected) == sorted(entry[4] for entry in days)
    assert len(spc) + len(psi) + len(recent) == sum(entry[5] for entry in log)
    assert [timedelta(hours=1)] == [entry[3] for entry in log if entry not in days]
    assert 0 == await fetch_count(db, "SELECT count(*) FROM scouter.archive_retired")


async def test_compaction_is_idempotent_and_folds_late_rows_in(db: Database) -> None:
    """A second pass changes nothing; rows archived late for a compacted day become an hourly part that the next pass
    merges with the day's object into a new one (the old one deleted): still one object per day, every row once."""
    spc, psi, recent = await _seed(db)
    store = MemoryStore()
    actor = archiver(db, store, clock=lambda: NOW)
    await actor.run_once()
    await actor.compact_once()
    before, log_before = keys(store), await _log(db)

    again = await actor.compact_once()

    assert (0, 0) == (again.days, again.deleted)
    assert (before, log_before) == (keys(store), await _log(db))
    late = _spc(DAY0 + 2 * HOUR + timedelta(minutes=30), 2)
    await insert(db, "spc_drift", late)
    assert 1 == (await actor.run_once()).objects
    folded = await actor.compact_once()
    assert (1, 2) == (folded.days, folded.objects_retired)
    day_keys = [k for k in keys(store) if f"/1.0.0/spc/year={DAY0.year}/month={DAY0.month}/day={DAY0.day}/" in k]
    assert [_day_key("spc", DAY0, 1)] == day_keys
    assert sorted(spc + recent + late) == sorted(
        archived_rows(store, "sp/nm/1.0.0/spc/") + archived_rows(store, "sp/nm/2.0.0/spc/")
    )
    assert len(spc) + len(psi) + len(recent) + len(late) == sum(entry[5] for entry in await _log(db))


async def test_late_rows_written_under_a_retired_name_are_not_deleted_as_its_leftover(db: Database) -> None:
    """A compaction commits, then cannot delete the hourly objects it retired (the store fails, or the process is
    killed): they stay listed in archive_retired for the next pass. Late rows for one of those hours, archived before
    that pass, get the hour's next free part number, which is the retired object's (its entry left the log): the
    upload overwrites the garbage and the log lists it again. The compaction's clean-up must not then delete it as
    a leftover: every listed object stays readable and every row is archived once."""
    spc, _, recent = await _seed(db)
    store = MemoryStore()
    actor = archiver(db, store, clock=lambda: NOW)
    await actor.run_once()
    await actor.compact_once()
    first_late = _spc(DAY0 + 2 * HOUR + timedelta(minutes=30), 2)
    await insert(db, "spc_drift", first_late)
    await actor.run_once()

    def store_down(*_: Any) -> None:
        raise OSError("the store is down")

    failing = ArchiveCompactor(DatabaseHandle(db), StoreHandle.of(store), 30, lambda: NOW, delete=store_down)
    with pytest.raises(OSError, match="store is down"):
        await failing.run_once()
    retired = {r["object_path"] for r in await db.fetch("SELECT object_path FROM scouter.archive_retired")}
    second_late = _spc(DAY0 + 2 * HOUR + timedelta(minutes=40), 3)
    await insert(db, "spc_drift", second_late)
    await actor.run_once()
    listed = {entry[4] for entry in await _log(db)}
    assert retired & listed, "the late rows' object did not reuse a retired name: the case is not exercised"

    await actor.compact_once()

    listed = {entry[4] for entry in await _log(db)}
    assert listed <= set(keys(store)), "listed objects deleted from the store"
    assert sorted(spc + recent + first_late + second_late) == sorted(
        archived_rows(store, "sp/nm/1.0.0/spc/") + archived_rows(store, "sp/nm/2.0.0/spc/")
    )
    assert 0 == await fetch_count(db, "SELECT count(*) FROM scouter.archive_retired")


async def test_compaction_skips_while_another_replica_holds_the_lock(db: Database, fresh_database_dsn: str) -> None:
    """The archiver's advisory lock held elsewhere (another replica's archive or compaction pass): nothing is done."""
    await _seed(db)
    store = MemoryStore()
    actor = archiver(db, store, clock=lambda: NOW)
    await actor.run_once()
    before = keys(store)
    other = await trio_asyncio.aio_as_trio(asyncpg.connect)(fresh_database_dsn)
    try:
        await trio_asyncio.aio_as_trio(other.fetchval)("SELECT pg_advisory_lock($1)", ARCHIVE_LOCK_KEY)
        report = await actor.compact_once()
    finally:
        await trio_asyncio.aio_as_trio(other.close)()
    assert report.skipped
    assert before == keys(store)
    assert 4 == (await actor.compact_once()).days


async def _archived_answer(db: Database, reader: ArchiveReader, query: Any) -> list[tuple]:
    parts = await reader.parts(db, "spc", query, SPC_UNARCHIVED_BUCKETS, bucket_args(query))
    return sorted((f, b, n) for part in parts for f, b, n, _ in part)


async def test_read_back_during_and_after_compaction_counts_each_row_once(db: Database) -> None:
    """A query that listed the hourly objects just before the compaction committed (and deleted them) reads the
    manifest again and answers from the daily object; after it, a window starting mid-day still finds the day's
    object; both equal PostgreSQL's answer before archiving, never a row twice or missing."""
    await _seed(db)
    query = spc_query(ENTITY, DAY0 + 90 * timedelta(minutes=1), DAY0 + timedelta(days=2))
    expected = sorted((f, b, n) for f, b, n, _ in await db.fetch(SPC_BUCKETS, *bucket_args(query)))
    store = MemoryStore()
    actor = archiver(db, store, clock=lambda: NOW)
    await actor.run_once()
    compactions = []

    async def compact_meanwhile() -> None:
        if not compactions:
            compactions.append(await actor.compact_once())

    during = ArchiveReader(StoreHandle.of(store), 30, manifest_read=compact_meanwhile)
    assert expected == await _archived_answer(db, during, query)
    assert 4 == compactions[0].days
    assert expected == await _archived_answer(db, ArchiveReader(StoreHandle.of(store), 30), query)


@pytest.mark.parametrize("stage", ["uploaded", "committed"])
async def test_killed_during_compaction_then_rerun(
    db: Database, fresh_database_dsn: str, tmp_path: Path, stage: str
) -> None:
    """SIGKILL after the daily object is written but before its transaction commits, or after the commit but before
    the hourly objects are deleted: either way archive_log still lists every archived row exactly once and the
    read-back agrees with PostgreSQL; the re-run finishes the job (deleting the orphan daily object, listed for
    deletion before its upload, or the retired objects), leaving one object per day."""
    spc, psi, recent = await _seed(db)
    query = spc_query(ENTITY, DAY0, DAY0 + timedelta(days=2))
    expected = sorted((f, b, n) for f, b, n, _ in await db.fetch(SPC_BUCKETS, *bucket_args(query)))
    root = tmp_path / "root"
    store = LocalStore(root, mkdir=True)
    actor = archiver(db, store, clock=lambda: NOW)
    await actor.run_once()
    archived_total = await fetch_count(db, "SELECT count(*) FROM scouter.spc_drift WHERE archived")
    archived_total += await fetch_count(db, "SELECT count(*) FROM scouter.psi_drift WHERE archived")
    marker = {"uploaded": b"UPLOADED", "committed": b"COMMITTED"}[stage]
    argv = script("tests.actors.compaction_script", fresh_database_dsn, str(root), NOW.isoformat(), stage)
    seen = await kill_midway(argv, lambda output: marker in output)
    assert b"DONE" not in seen
    await advisory_locks_released(db)

    logged = sum(entry[5] for entry in await _log(db))
    assert archived_total == logged
    assert expected == await _archived_answer(db, ArchiveReader(StoreHandle.of(LocalStore(root)), 30), query)
    retired = {r["object_path"] for r in await db.fetch("SELECT object_path FROM scouter.archive_retired")}
    listed = {entry[4] for entry in await _log(db)}
    if stage == "uploaded":  # the daily object written, listed for deletion until its day commits
        assert retired == set(keys(store)) - listed
        assert 1 == len(retired)
    else:  # the day's hourly objects, retired, still in the store
        assert retired
        assert not retired & listed
        assert retired <= set(keys(store))

    report = await actor.compact_once()
    assert 0 == await fetch_count(db, "SELECT count(*) FROM scouter.archive_retired")
    assert archived_total == sum(entry[5] for entry in await _log(db))
    assert sorted(entry[4] for entry in await _log(db)) == keys(store)
    assert expected == await _archived_answer(db, ArchiveReader(StoreHandle.of(LocalStore(root)), 30), query)
    assert sorted(spc + recent) == sorted(
        archived_rows(store, "sp/nm/1.0.0/spc/") + archived_rows(store, "sp/nm/2.0.0/spc/")
    )
    assert sorted(psi) == archived_rows(store, "sp/nm/1.0.0/psi/")
    assert report.days == (4 if stage == "uploaded" else 3)


async def test_compaction_on_s3(db: Database, s3_server: S3Server) -> None:
    """The same pass against an S3-compatible server: daily objects written, hourly ones deleted, rows intact."""
    spc, psi, recent = await _seed(db)
    store = S3Store.from_url(f"s3://{s3_server.bucket}", region="us-east-1")
    actor = archiver(db, store, clock=lambda: NOW)
    await actor.run_once()
    report = await actor.compact_once()
    assert 4 == report.days
    assert sorted(entry[4] for entry in await _log(db)) == keys(store)
    assert sorted(spc + recent) == sorted(
        archived_rows(store, "sp/nm/1.0.0/spc/") + archived_rows(store, "sp/nm/2.0.0/spc/")
    )
    assert sorted(psi) == archived_rows(store, "sp/nm/1.0.0/psi/")


async def test_the_actor_compacts_after_each_archive_pass(db: Database) -> None:
    """The running archiver compacts what its pass made complete, without being asked; it stops promptly."""
    await _seed(db)
    store = MemoryStore()
    actor = archiver(db, store, clock=lambda: NOW, interval=3600)
    stop = trio.Event()
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            await nursery.start(actor.run, stop)
            while await fetch_count(db, "SELECT count(*) FROM scouter.archive_log WHERE span = interval '1 day'") < 4:
                await trio.sleep(0.02)
            stop.set()
    assert 4 == len([k for k in keys(store) if "/hour=" not in k])


async def test_duckdb_reads_the_archive_in_place_as_the_readme_says(db: Database, tmp_path: Path) -> None:
    """The README's one-line DuckDB query over a local archive (compacted days beside the incomplete day's hourly
    objects) counts every archived row once; the compacted days alone read with Hive partitioning, pruned by day."""
    import duckdb  # imported late: a test-only dependency

    spc, _, recent = await _seed(db)
    root = tmp_path / "scouter_storage"
    actor = archiver(db, LocalStore(root, mkdir=True), clock=lambda: NOW)
    await actor.run_once()
    await actor.compact_once()
    readme = (ROOT / "README.md").read_text()
    one_liner = next(line for line in readme.splitlines() if "read_parquet('scouter_storage/" in line).strip(" `")
    expected: dict[str, list[float]] = {}
    for row in spc + recent:
        expected.setdefault(row[4], []).append(row[5])
    con = duckdb.connect()
    try:
        sql = one_liner.replace("scouter_storage/", f"{root}/").replace("2026-07-01", f"{DAY0:%Y-%m-%d}")
        got = {
            feature: (n, mean) for feature, n, mean in await trio.to_thread.run_sync(lambda: con.sql(sql).fetchall())
        }
        days_sql = (
            f"SELECT day, count(*) FROM read_parquet('{root}/*/*/*/spc/year=*/month=*/day=*/*.parquet', "
            f"hive_partitioning = true) WHERE year = {DAY0.year} AND month = {DAY0.month} AND day = {DAY0.day} "
            "GROUP BY day"
        )
        per_day = await trio.to_thread.run_sync(lambda: con.sql(days_sql).fetchall())
    finally:
        con.close()
    assert {f: (len(v), pytest.approx(sum(v) / len(v))) for f, v in expected.items()} == got
    assert [(DAY0.day, len([r for r in spc if floor_day(r[0]) == DAY0]))] == per_day


async def test_names_needing_encoding_and_objects_of_the_old_layout_compact(db: Database, tmp_path: Path) -> None:
    """An entity whose names are percent-encoded (``org/team``, ``..``) compacts into its own encoded day folder;
    hourly objects written in the layout before the encoding (their paths recorded in archive_log) are read through
    the log, compacted into the current layout, and deleted; the read-back and the rows agree."""
    odd = [(DAY0 + timedelta(hours=2, minutes=m), "org/team", "..", "1", "f", float(m)) for m in range(3)]
    plain = _spc(DAY0 + HOUR, 3) + _spc(DAY0 + 4 * HOUR, 2)
    await insert(db, "spc_drift", odd + plain)
    root = tmp_path / "root"
    store = LocalStore(root, mkdir=True)
    actor = archiver(db, store, clock=lambda: NOW)
    await actor.run_once()
    # make the plain entity's objects look as the previous layout wrote them: no entity tag in the file name
    for row in await db.fetch("SELECT object_path FROM scouter.archive_log WHERE space = 'sp'"):
        new = row["object_path"]
        old = new.rsplit("-", 1)[0] + ".parquet"
        await trio.to_thread.run_sync(shutil.move, root / new, root / old)
        await db.execute("UPDATE scouter.archive_log SET object_path = $1 WHERE object_path = $2", old, new)

    report = await actor.compact_once()

    assert 2 == report.days
    odd_key = (
        f"org%2Fteam/%2E%2E/1/spc/year={DAY0.year}/month={DAY0.month}/day={DAY0.day}/"
        f"spc-{DAY0:%Y%m%d}-0000-{entity_tag('org/team', '..', '1')}.parquet"
    )
    assert sorted([odd_key, _day_key("spc", DAY0, 0)]) == keys(store)
    assert sorted(odd) == archived_rows(store, "org%2Fteam/")
    assert sorted(plain) == archived_rows(store, "sp/")
    query = spc_query(ENTITY, DAY0, DAY0 + timedelta(days=1))
    assert sorted((f, b, n) for f, b, n, _ in await db.fetch(SPC_BUCKETS, *bucket_args(query))) == [
        (f, b, n) for f, b, n in await _archived_answer(db, ArchiveReader(StoreHandle.of(store), 30), query)
    ]
