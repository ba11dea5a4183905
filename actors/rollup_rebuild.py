"""``scouter rollup rebuild``: the rollups of rows stored before the rollups existed, built once, while the server
keeps serving.

Migration 300 creates the rollup tables empty from the current minute on (`scouter.sql._rollups`); reads take
the grains before ``rollup_coverage.since`` from the rows, as before. The rebuild walks back from ``since`` one UTC
day at a time, newest first. Each day is one transaction: lock the rollup tables (in the writer's order, so no
deadlock; writers adding to them wait for that one day, reads go on), replace the day's minute rollups by the
aggregate of its rows and its hourly rollups by the merge of those minutes (`scouter.sql.derive_hours`: exact, and
cheaper than the rows again), and lower ``since`` to the day's start. So an interrupted rebuild keeps what it
finished and a rerun carries on; a running one never shows a half-built day.

It stops at a day whose rows were archived and then dropped with their partition (``archive_log`` counts more rows
than PostgreSQL still holds as archived): those days keep being read from the rows and the archive.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import asyncpg
import attrs

from scouter.rollups import HOUR, ceil_grain
from scouter.sql import (
    LOWER_SINCE,
    OLDEST_UNCOVERED,
    RAW_SINCE,
    ROLLUP_KINDS,
    clear_rollup,
    derive_hours,
    lock_rollup,
    rebuild_rollup,
    rows_gone,
)

from .database import Database

__all__ = ["RebuildProgress", "RebuildReport", "rebuild_rollups"]

DAY = timedelta(days=1)


@attrs.frozen
class RebuildProgress:
    days_done: int
    days_total: int
    day: datetime


@attrs.frozen
class RebuildReport:
    days: int
    since: datetime | None  # the coverage start afterwards (None: rollups cover everything that can be rebuilt)
    stopped_at: datetime | None = None  # a day whose rows are gone from PostgreSQL: where the rebuild stopped


async def _bounds(conn: asyncpg.Connection) -> tuple[datetime, datetime | None]:
    return await conn.fetchval(RAW_SINCE), await conn.fetchval(OLDEST_UNCOVERED)


async def _rebuild_day(conn: asyncpg.Connection, lo: datetime, hi: datetime) -> bool:
    """One day's rollups from its rows, and the coverage lowered to its start; False (nothing done) when rows of the
    day are gone from PostgreSQL."""
    async with conn.transaction():
        for kind in ROLLUP_KINDS:
            if await conn.fetchval(rows_gone(kind), lo, hi):
                return False
        for kind in ROLLUP_KINDS:
            await conn.execute(lock_rollup(kind))
        # the hours from the day's minutes, up to the end of the hour holding `hi` (the coverage start, perhaps
        # within an hour): the minutes after `hi` are complete already, so every hour derived is whole
        hours_end = ceil_grain(hi, HOUR)
        for kind in ROLLUP_KINDS:
            await conn.execute(clear_rollup(kind), lo, hi)
            await conn.execute(rebuild_rollup(kind), lo, hi)
            await conn.execute(clear_rollup(kind, HOUR), lo, hours_end)
            await conn.execute(derive_hours(kind), lo, hours_end)
        await conn.execute(LOWER_SINCE, lo)
    return True


async def rebuild_rollups(db: Database, progress: Callable[[RebuildProgress], None] | None = None) -> RebuildReport:
    """Build the rollups of the rows before the coverage, a day at a time, newest first (see the module)."""
    since, oldest = await db.run(_bounds)
    if oldest is None:
        return RebuildReport(0, since)
    # the first step ends at `since` (a minute), every later one at a UTC midnight
    midnight = datetime(since.year, since.month, since.day, tzinfo=UTC)
    first = midnight if midnight < since else midnight - DAY
    steps = []
    lo = first
    while lo + DAY > oldest:
        steps.append((lo, since if not steps else lo + DAY))
        lo -= DAY
    for done, (lo, hi) in enumerate(steps, start=1):
        if not await db.run(_rebuild_day, lo, hi):
            return RebuildReport(done - 1, hi, stopped_at=lo)
        if progress is not None:
            progress(RebuildProgress(done, len(steps), lo))
    return RebuildReport(len(steps), steps[-1][0] if steps else since)
