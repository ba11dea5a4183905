"""The archiver skips (and counts) a group it cannot write, and carries on with the rest of the pass."""

from __future__ import annotations

from datetime import timedelta

import pytest
from obstore.store import MemoryStore

from actors.database import Database

from .archive_support import OLD, archived_rows, archiver, insert, metrics

pytestmark = pytest.mark.postgres


async def test_unwritable_groups_are_skipped_counted_and_the_pass_carries_on(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    """Rows stored before the decoder bounded created_at: -infinity (asyncpg's form of 0001-01-01T00:00:00Z) and
    year 1 and 1600 (before what nanosecond timestamps hold). The pass completes: each such group is skipped, logged
    and counted, and the good groups planned after them are archived."""
    await db.execute(
        "INSERT INTO scouter.spc_drift (created_at, space, name, version, feature, value)"
        " SELECT s::timestamptz, 'aa', 'nm', '1', 'f', 1.0"
        " FROM unnest(ARRAY['-infinity', '0001-01-01T00:00:00Z', '1600-06-01T10:00:00Z']) AS s"
    )
    good = [(OLD + timedelta(minutes=m), "zz", "nm", "1", "f", float(m)) for m in range(3)]
    await insert(db, "spc_drift", good)
    registry = metrics()
    report = await archiver(db, store := MemoryStore(), metrics=registry).run_once()
    assert (1, 3) == (report.objects, report.rows)
    assert sorted(good) == archived_rows(store)
    assert 3 == report.failed_groups
    assert 3 == registry.registry.get_sample_value("scouter_archive_groups_failed_total", {"kind": "spc"})
    assert 1 == registry.registry.get_sample_value("scouter_archive_passes_total", {"outcome": "ok"})
    assert 3 == await db.fetchval("SELECT count(*) FROM scouter.spc_drift WHERE space = 'aa' AND NOT archived")
    assert 3 == sum("cannot be archived, skipped" in r.getMessage() for r in caplog.records)
    again = await archiver(db, store, metrics=registry).run_once()  # the next pass too
    assert (0, 3) == (again.objects, again.failed_groups)
