"""Rollups: per-grain aggregates of the record tables, kept exact (pure: no I/O).

A statement trigger on each record table (`scouter.sql._rollups`) stores, in the transaction that stores the rows,
one aggregate per (entity, feature, grain) in a mergeable form: SPC and custom values as ``(count, mean, M2)`` (M2:
the sum of squared deviations from the mean, as `scouter.binned` merges them: Chan's pairwise update, numerically
stable where a plain sum of squares would cancel), PSI as the summed ``bin_count`` per bin. Reads then take whole
grains from the rollups and only the rows of partial grains from the record tables, which gives the raw-row answer
(to float rounding) at a cost that grows with the number of grains, not of rows.

**The grain is one minute.** It is upstream's own bucket (its binned SQL always used one minute), it divides every
``time_interval`` and every bucket width of a long window that is a whole number of minutes, and it keeps both
sides small: a 30-day chart reads 43,200 rollup rows per feature instead of every record, while the raw rows read
at a window's two edges are at most two minutes' worth. A coarser grain (an hour) would make the edges and the
grains straddling a bucket boundary up to 60 times larger; a finer one (a second) would make rollups as large as
the raw rows for a busy model.

`plan` splits a window into the whole grains that rollups answer and the raw ranges (the edges, the grains a bucket
boundary cuts, and everything before `since`, the time from which rollups are complete) that the rows answer.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Final

import attrs

__all__ = ["GRAIN", "RollupPlan", "ceil_grain", "floor_grain", "plan"]

GRAIN: Final = timedelta(minutes=1)
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_US: Final = timedelta(microseconds=1)


def floor_grain(moment: datetime, grain: timedelta = GRAIN) -> datetime:
    """The start of the (epoch-aligned) grain holding `moment`."""
    return _EPOCH + (moment - _EPOCH) // grain * grain


def ceil_grain(moment: datetime, grain: timedelta = GRAIN) -> datetime:
    start = floor_grain(moment, grain)
    return start if start == moment else start + grain


@attrs.frozen
class RollupPlan:
    """Rollups answer the grains ``[lo, hi)`` that no bucket boundary cuts; the rows answer `raw` (half-open ranges,
    disjoint, in order), which with them covers the window exactly once."""

    lo: datetime | None
    hi: datetime | None
    raw: tuple[tuple[datetime, datetime], ...]

    @property
    def raw_starts(self) -> list[datetime]:
        return [start for start, _ in self.raw]

    @property
    def raw_stops(self) -> list[datetime]:
        return [stop for _, stop in self.raw]


def plan(
    begin: datetime,
    end: datetime,
    width: timedelta | None,
    since: datetime | None,
    *,
    end_inclusive: bool = True,
    grain: timedelta = GRAIN,
) -> RollupPlan:
    """Split the window ``[begin, end]`` (``[begin, end)`` when not `end_inclusive`) for buckets of `width`
    (epoch-aligned; None: one bucket, as a drift check reads) given rollups complete from `since` (None: no
    rollups at all)."""
    stop = end + _US if end_inclusive else end
    whole_window = RollupPlan(None, None, ((begin, stop),) if begin < stop else ())
    if since is None or (width is not None and width < grain):
        return whole_window  # a bucket narrower than a grain: every grain is cut, rollups cannot help
    lo, hi = max(ceil_grain(begin, grain), ceil_grain(since, grain)), floor_grain(stop, grain)
    if lo >= hi:
        return whole_window
    raw: list[tuple[datetime, datetime]] = [(begin, lo)]
    if width is not None and width % grain:
        # grains cut by a bucket boundary: their rows fall in two buckets, only the rows can tell which
        boundary = _EPOCH + ((lo - _EPOCH) // width + 1) * width
        while boundary < hi:
            cut = floor_grain(boundary, grain)
            if cut != boundary:
                raw.append((cut, cut + grain))
            boundary += width
    raw.append((hi, stop))
    merged: list[tuple[datetime, datetime]] = []
    for start, finish in raw:
        if start >= finish:
            continue
        if merged and merged[-1][1] >= start:
            merged[-1] = (merged[-1][0], max(merged[-1][1], finish))
        else:
            merged.append((start, finish))
    return RollupPlan(lo, hi, tuple(merged))
