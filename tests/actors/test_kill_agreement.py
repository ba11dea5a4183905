"""Kill -9 during ingest and during archiving or compaction: rows, rollups and archive agree afterwards (issue #18).

One process runs the real writer (senders acknowledged after COMMIT) and, meanwhile, the real archiver and
compactor over the very days being written (`tests.actors.ingest_archive_script`); it is SIGKILLed mid-ingest, at
each stage of the passes. Then, and again after the passes that finish the job:

* every acknowledged batch is stored, and every batch is stored whole or not at all, counting each row where the
  server counts it: in PostgreSQL while not archived, in the objects ``archive_log`` lists once archived (an
  orphan object, or a retired one still in the store, is never counted: a daily object and the hourly objects it
  replaced are never both listed);
* the rows marked archived in PostgreSQL are rows of the listed objects (maintenance deletes them from PostgreSQL
  once archived, while the process writes more of their days);
* the minute and hourly rollups equal a recomputation from those rows;
* the read-back (`ArchiveReader`, the drift query's archived and live parts) counts every row once.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest
from obstore.store import LocalStore

from actors.archive_reader import ArchiveReader
from actors.archive_store import StoreHandle
from actors.database import Database, DatabaseHandle
from actors.maintenance import MaintenanceActor
from scouter.binned import merge_spc
from scouter.sql import SPC_UNARCHIVED_BUCKETS

from .archive_support import (
    advisory_locks_released,
    archiver,
    bucket_args,
    keys,
    kill_midway,
    read,
    script,
    spc_query,
)
from .ingest_archive_script import BATCH, DAY0, ENTITY, RETENTION_DAYS

pytestmark = pytest.mark.postgres

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MINUTE_US = 60_000_000
HOUR_US = 60 * MINUTE_US
#: A row as both sides can state it exactly: (feature, created_at in epoch microseconds, value).
Row = tuple[str, int, float]

#: What each stage waits for before the kill: its word, then this many more acknowledgements (ingest carries on).
STAGES = ("archiving", "archived", "compacting", "uploaded", "committed")
MARKERS = {stage: stage.upper().encode() + b"\n" for stage in STAGES}
ACKS_AFTER_MARKER = 30


def _epoch_us(moment: datetime) -> int:
    return (moment - EPOCH) // timedelta(microseconds=1)


def _reached(stage: str, output: bytes) -> bool:
    if stage == "ingest":  # passes running, two done: the kill lands wherever they and the writer are
        return b"PASS 2\n" in output and output.count(b"ACK ") >= 300
    marker = MARKERS[stage]
    return marker in output and output.split(marker, 1)[1].count(b"ACK ") >= ACKS_AFTER_MARKER


def _acknowledged(output: bytes) -> set[str]:
    lines = output.split(b"\n")[:-1]  # the last one may be cut short by the kill
    return {line.split()[1].decode() for line in lines if line.startswith(b"ACK ")}


async def _live_rows(db: Database) -> list[Row]:
    rows = await db.fetch(
        "SELECT feature, created_at, value FROM scouter.spc_drift WHERE space = $1 AND NOT archived", ENTITY[0]
    )
    return [(r["feature"], _epoch_us(r["created_at"]), r["value"]) for r in rows]


async def _marked_rows(db: Database) -> list[Row]:
    rows = await db.fetch(
        "SELECT feature, created_at, value FROM scouter.spc_drift WHERE space = $1 AND archived", ENTITY[0]
    )
    return [(r["feature"], _epoch_us(r["created_at"]), r["value"]) for r in rows]


async def _listed(db: Database) -> list[str]:
    rows = await db.fetch("SELECT object_path FROM scouter.archive_log WHERE kind = 'spc' ORDER BY object_path")
    return [r["object_path"] for r in rows]


def _archive_rows(store: LocalStore, paths: Iterable[str]) -> tuple[list[Row], list[str]]:
    """The rows of the objects `paths`, read back from the store, and the paths it does not have."""
    rows: list[Row] = []
    missing: list[str] = []
    for path in paths:
        try:
            table = read(store, path)
        except FileNotFoundError:
            missing.append(path)
            continue
        stamps = table.column("created_at").cast(pa.int64()).to_pylist()  # naive ns holding UTC
        for feature, ns, value in zip(
            table.column("feature").to_pylist(), stamps, table.column("value").to_pylist(), strict=True
        ):
            assert ns % 1000 == 0, ns
            rows.append((feature, ns // 1000, value))
    return rows, missing


def _count_and_sum(rows: list[Row], width_us: int) -> dict[tuple[str, int], list[float]]:
    """(feature, epoch-aligned bucket start) -> [count, sum] of `rows` in buckets of `width_us` microseconds."""
    cells: dict[tuple[str, int], list[float]] = defaultdict(lambda: [0, 0.0])
    for feature, us, value in rows:
        cell = cells[(feature, us - us % width_us)]
        cell[0] += 1
        cell[1] += value
    return cells


def _rollup_problems(rows: list[Row], stored: dict[tuple[str, int], tuple[int, float]], grain_us: int) -> list[str]:
    """Where the rollup `stored` ((feature, grain start) -> (count, sum)) differs from a recomputation from `rows`."""
    computed = _count_and_sum(rows, grain_us)
    problems = []
    for key in sorted(set(computed) | set(stored)):
        count, total = computed.get(key, (0, 0.0))
        rolled = stored.get(key, (0, 0.0))
        if count != rolled[0] or not math.isclose(total, rolled[1], rel_tol=1e-9, abs_tol=1e-9):
            problems.append(f"{key}: rows {count}, {total}; rollup {rolled[0]}, {rolled[1]}")
    return problems


async def _rollup(db: Database, table: str) -> dict[tuple[str, int], tuple[int, float]]:
    rows = await db.fetch(
        f"SELECT feature, grain, count, count * mean AS total FROM scouter.{table} WHERE space = $1", ENTITY[0]
    )
    return {(r["feature"], _epoch_us(r["grain"])): (r["count"], r["total"]) for r in rows}


async def _read_back_problems(db: Database, store: LocalStore, rows: list[Row]) -> list[str]:
    """The drift query's parts (live rows, then the archive through `ArchiveReader`) over DAY0's two days against
    the rows: the same count and mean in every (feature, bucket)."""
    query = spc_query(ENTITY, DAY0, DAY0 + timedelta(days=2), points=48)
    reader = ArchiveReader(StoreHandle.of(store), RETENTION_DAYS)
    parts = await reader.parts(db, "spc", query, SPC_UNARCHIVED_BUCKETS, bucket_args(query))
    answer = {(f, _epoch_us(b)): (n, mean) for f, b, n, mean in merge_spc(parts)}
    width = query.bucket // timedelta(microseconds=1)
    begin, end = _epoch_us(query.window.begin), _epoch_us(query.window.end)
    expected = _count_and_sum([row for row in rows if begin <= row[1] <= end], width)
    problems = []
    for key in sorted(set(expected) | set(answer)):
        count, total = expected.get(key, (0, 0.0))
        got = answer.get(key, (0, 0.0))
        if count != got[0] or (count and not math.isclose(total / count, got[1], rel_tol=1e-9, abs_tol=1e-9)):
            problems.append(f"{key}: rows {count}, sum {total}; answered {got[0]}, mean {got[1]}")
    return problems


async def _disagreements(db: Database, store: LocalStore, acknowledged: set[str]) -> dict[str, list[str]]:
    """Everything that does not agree, by check (empty lists when all agree)."""
    live = await _live_rows(db)
    archived, missing = _archive_rows(store, await _listed(db))
    rows = live + archived
    per_batch = Counter(feature for feature, _, _ in rows)
    doubled = [row for row, n in Counter(rows).items() if n > 1]
    return {
        "listed object missing from the store": missing,
        "acknowledged batch missing or incomplete": sorted(f for f in acknowledged if per_batch[f] != BATCH),
        "batch stored partly or twice": sorted(f for f, n in per_batch.items() if n != BATCH),
        "row counted twice": [repr(row) for row in doubled[:20]],
        "marked archived but not in a listed object": [
            repr(row) for row in sorted(set(await _marked_rows(db)) - set(archived))[:20]
        ],
        "minute rollups": _rollup_problems(rows, await _rollup(db, "spc_rollup"), MINUTE_US)[:20],
        "hourly rollups": _rollup_problems(rows, await _rollup(db, "spc_rollup_hour"), HOUR_US)[:20],
        "read-back": (await _read_back_problems(db, store, rows))[:20],
    }


def _none(problems: dict[str, list[str]]) -> dict[str, list[str]]:
    return {check: [] for check in problems}


@pytest.mark.parametrize("stage", ["ingest", *STAGES])
async def test_rows_rollups_and_archive_agree_after_kill_9(
    db: Database, fresh_database_dsn: str, tmp_path: Path, stage: str
) -> None:
    """SIGKILL mid-ingest, with archive and compaction passes running over the days being written (`ingest`), or
    stopped just before or after an hourly upload (`archiving`, `archived`), just before or after a daily object's
    upload (`compacting`, `uploaded`) or after a day's compaction committed (`committed`): everything agrees at
    once, and again after the next passes finish the job, which leave the store holding exactly the objects
    archive_log lists (no orphan of the killed pass either)."""
    root = tmp_path / "root"
    argv = script("tests.actors.ingest_archive_script", fresh_database_dsn, str(root), stage)
    output = await kill_midway(argv, lambda seen: _reached(stage, seen))
    acknowledged = _acknowledged(output)
    assert len(acknowledged) >= 100
    await advisory_locks_released(db)
    store = LocalStore(root)
    assert await _listed(db), "the passes archived nothing before the kill"

    problems = await _disagreements(db, store, acknowledged)
    assert _none(problems) == problems

    in_the_archive = len(_archive_rows(store, await _listed(db))[0])
    assert len(await _marked_rows(db)) < in_the_archive, "no rows deleted once archived: that case is not exercised"

    actor = archiver(db, store)
    await actor.run_once()
    await actor.compact_once()
    await MaintenanceActor(DatabaseHandle(db), days_ahead=1).run_once()
    problems = await _disagreements(db, store, acknowledged)
    assert _none(problems) == problems
    assert sorted(await _listed(db)) == keys(store), "objects archive_log does not list left in the store"
    assert 0 == await db.fetchval("SELECT count(*) FROM scouter.archive_retired")
    assert 0 == await db.fetchval(
        "SELECT count(*) FROM scouter.archive_log WHERE span = interval '1 hour' AND hour < $1", DAY0 + timedelta(2)
    ), "complete days left hourly after the passes"
    assert 0 == await db.fetchval(
        "SELECT count(*) FROM scouter.spc_drift WHERE created_at < $1", DAY0 + timedelta(2)
    ), "rows past retention left in PostgreSQL once archived"
