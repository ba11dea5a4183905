"""Binned drift aggregates through the rollups (`scouter.rollups`): whole hours from the hourly rollups, the whole
minutes left (at the window's edges and in hours a bucket boundary cuts) from the minute rollups, the rest of the
window (its two partial minutes, minutes a bucket boundary cuts, anything before the rollups' coverage) from the
rows, and, for a window reaching the archive, those raw ranges' archived rows from Parquet. Every part has the
mergeable form of `scouter.binned`, so the merged answer is the raw-row answer (to float rounding).

The rollup rows outlive the record partitions (they are never dropped), so a long chart reads the archive only for
its raw ranges: at most a few minutes per bucket boundary.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import attrs

from scouter.queries import DriftQuery
from scouter.rollups import HOUR, RollupPlan, ceil_grain, floor_grain, minutes_pay_off, plan
from scouter.sql import (
    CUSTOM_BUCKETS,
    CUSTOM_RANGE_BUCKETS,
    CUSTOM_RANGE_UNARCHIVED_BUCKETS,
    CUSTOM_ROLLUP_BUCKETS,
    CUSTOM_UNARCHIVED_BUCKETS,
    PSI_BUCKETS,
    PSI_RANGE_BUCKETS,
    PSI_RANGE_UNARCHIVED_BUCKETS,
    PSI_ROLLUP_BUCKETS,
    PSI_UNARCHIVED_BUCKETS,
    ROLLUP_SINCE,
    SPC_BUCKETS,
    SPC_RANGE_BUCKETS,
    SPC_RANGE_UNARCHIVED_BUCKETS,
    SPC_ROLLUP_BUCKETS,
    SPC_UNARCHIVED_BUCKETS,
    rollup_density,
)

from .archive_reader import ArchiveReader
from .database import Database

__all__ = ["CUSTOM", "PSI", "SPC", "BinnedSource", "binned_parts", "raw_parts"]


@attrs.frozen
class BinnedSource:
    """One record kind's statements: its archive folder, the raw ones (whole window, or the raw ranges of a plan;
    each also over the unarchived rows only) and the rollup one of each grain."""

    kind: str
    everything: str
    unarchived: str
    ranges: str
    ranges_unarchived: str
    rollups: Mapping[timedelta, str]
    density: str | None = None  # records and minute rollup rows per window (None: unknown, always read minutes)


SPC = BinnedSource(
    "spc",
    SPC_BUCKETS,
    SPC_UNARCHIVED_BUCKETS,
    SPC_RANGE_BUCKETS,
    SPC_RANGE_UNARCHIVED_BUCKETS,
    SPC_ROLLUP_BUCKETS,
    rollup_density("spc"),
)
CUSTOM = BinnedSource(
    "custom",
    CUSTOM_BUCKETS,
    CUSTOM_UNARCHIVED_BUCKETS,
    CUSTOM_RANGE_BUCKETS,
    CUSTOM_RANGE_UNARCHIVED_BUCKETS,
    CUSTOM_ROLLUP_BUCKETS,
    rollup_density("custom"),
)
PSI = BinnedSource(
    "psi", PSI_BUCKETS, PSI_UNARCHIVED_BUCKETS, PSI_RANGE_BUCKETS, PSI_RANGE_UNARCHIVED_BUCKETS, PSI_ROLLUP_BUCKETS
)


async def raw_parts(
    db: Database, archive: ArchiveReader | None, source: BinnedSource, query: DriftQuery, now: datetime, *extra: Any
) -> list[Sequence[Any]]:
    """Today's path, from the rows alone: PostgreSQL, plus the archive when the window reaches it."""
    window = query.window
    args = (query.space, query.name, query.version, query.bucket, window.begin, window.end, *extra)
    if archive is not None and archive.reaches_archive(query, now):
        return await archive.parts(db, source.kind, query, source.unarchived, args)
    return [await db.fetch(source.everything, *args)]


async def _minutes_pay_off(db: Database, source: BinnedSource, query: DriftQuery, split: RollupPlan) -> bool:
    """A plan without hours (buckets narrower than an hour) reads minutes: worth it only for dense records, which
    the hourly rollups tell (`scouter.rollups.minutes_pay_off`). Not asked of a window reaching the archive: there
    minutes spare reading Parquet."""
    if split.ranges(HOUR) or source.density is None:
        return True
    window = query.window
    hours = (floor_grain(window.begin, HOUR), ceil_grain(window.end, HOUR))
    row = await db.fetchrow(source.density, query.space, query.name, query.version, *hours)
    return minutes_pay_off(row["rows"], row["minute_rows"])


async def binned_parts(
    db: Database, archive: ArchiveReader | None, source: BinnedSource, query: DriftQuery, now: datetime, *extra: Any
) -> list[Sequence[Any]]:
    """The window's per-bucket aggregates as parts to merge: whole grains from the rollups (a part per grain), the
    rest from rows; everything from the rows when the plan reads only minutes of sparse records."""
    window = query.window
    split = plan(window.begin, window.end, query.bucket, await db.fetchval(ROLLUP_SINCE))
    archived = archive is not None and archive.reaches_archive(query, now)
    if not split.uses_rollups or (not archived and not await _minutes_pay_off(db, source, query, split)):
        return await raw_parts(db, archive, source, query, now, *extra)
    entity = (query.space, query.name, query.version, query.bucket)
    parts: list[Sequence[Any]] = [
        await db.fetch(source.rollups[grain], *entity, split.starts(grain), split.stops(grain), *extra)
        for grain, ranges in split.grains
        if ranges
    ]
    if not split.raw:
        return parts
    args = (*entity, window.begin, window.end, *extra, split.raw_starts, split.raw_stops)
    if archived:
        parts += await archive.parts(db, source.kind, query, source.ranges_unarchived, args, ranges=split.raw)
    else:
        parts.append(await db.fetch(source.ranges, *args))
    return parts
