"""Rollups: per-grain aggregates of the record tables, kept exact (pure: no I/O).

Statement triggers on each record table (`scouter.sql._rollups`) store, in the transaction that stores the rows,
one aggregate per (entity, feature, grain) for each of two grains, in a mergeable form: SPC and custom values as
``(count, mean, M2)`` (M2: the sum of squared deviations from the mean, as `scouter.binned` merges them: Chan's
pairwise update, numerically stable where a plain sum of squares would cancel), PSI as the summed ``bin_count`` per
bin. Reads then take whole grains from the rollups and only the rows of partial grains from the record tables, which
gives the raw-row answer (to float rounding) at a cost that grows with the number of grains, not of rows.

**The grains are an hour and a minute.** A minute is upstream's own bucket (its binned SQL always used one minute):
it divides every ``time_interval`` and every bucket width that is a whole number of minutes, and keeps the raw rows
read at a window's two edges to at most two minutes' worth. But a long window through minutes alone costs as many
rollup rows as minutes (43,200 per feature over 30 days: as many as the rows themselves for a model sending a record
every minute or two), so whole hours come from an hourly grain (720 per feature over 30 days), the minutes left at
the window's edges and in the hours a bucket boundary cuts from the minute grain, and only the partial minutes from
the rows. Both grains are kept by the same triggers (measured: the writer's transactions barely notice the second,
see tests/bench/bench_writer.py), so they are as exact and as crash-safe as the minutes.

Buckets narrower than an hour can only be read from minutes, which pay off where records are dense (`minutes_pay_off`);
where a feature gets a record or two a minute the rows are as cheap, so such a read goes to the rows then.

`plan` splits a window, coarsest grain first, into the whole grains each grain answers and the raw ranges (the
partial minutes at the edges, minutes a bucket boundary cuts, and everything before `since`, the time from which
rollups are complete) that the rows answer.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Final

import attrs

__all__ = [
    "GRAIN",
    "GRAINS",
    "HOUR",
    "MINUTE_ROW_COST",
    "Range",
    "RollupPlan",
    "ceil_grain",
    "floor_grain",
    "minutes_pay_off",
    "plan",
]

GRAIN: Final = timedelta(minutes=1)  # the finest grain
HOUR: Final = timedelta(hours=1)
#: Every grain kept, coarsest first (each divides the one before it).
GRAINS: Final = (HOUR, GRAIN)
#: What reading one minute rollup row costs, in raw rows read: a rollup row comes through the primary key, range by
#: range, a heap page per row; raw rows come in sequence from their partitions (tests/bench/bench_rollups.py: 424,000
#: minute rows in about 0.75 s against 1,000,000 raw rows in 0.45 s).
MINUTE_ROW_COST: Final = 4
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_US: Final = timedelta(microseconds=1)

Range = tuple[datetime, datetime]


def minutes_pay_off(rows: int, minute_rows: int) -> bool:
    """Is reading `minute_rows` minute rollup rows cheaper than reading the `rows` records they aggregate? Only when
    records are dense: a few a minute per feature and minutes cost as much as the rows (hours always pay off: at most
    one rollup row per feature and hour)."""
    return rows >= MINUTE_ROW_COST * minute_rows


def floor_grain(moment: datetime, grain: timedelta = GRAIN) -> datetime:
    """The start of the (epoch-aligned) grain holding `moment`."""
    return _EPOCH + (moment - _EPOCH) // grain * grain


def ceil_grain(moment: datetime, grain: timedelta = GRAIN) -> datetime:
    start = floor_grain(moment, grain)
    return start if start == moment else start + grain


@attrs.frozen
class RollupPlan:
    """Per grain (coarsest first), the ranges of whole grains its rollups answer; `raw` the ranges the rows answer.
    All ranges are half-open, disjoint and in order within their list, and together cover the window exactly once."""

    grains: tuple[tuple[timedelta, tuple[Range, ...]], ...]
    raw: tuple[Range, ...]

    @property
    def uses_rollups(self) -> bool:
        return any(ranges for _, ranges in self.grains)

    def ranges(self, grain: timedelta) -> tuple[Range, ...]:
        """The ranges `grain` answers (none for a grain not in the plan)."""
        return next((ranges for g, ranges in self.grains if g == grain), ())

    def starts(self, grain: timedelta | None) -> list[datetime]:
        """The starts of the ranges of `grain` (None: of the raw ranges), as a statement's array parameter."""
        return [start for start, _ in (self.raw if grain is None else self.ranges(grain))]

    def stops(self, grain: timedelta | None) -> list[datetime]:
        return [stop for _, stop in (self.raw if grain is None else self.ranges(grain))]

    @property
    def raw_starts(self) -> list[datetime]:
        return self.starts(None)

    @property
    def raw_stops(self) -> list[datetime]:
        return self.stops(None)


def _merged(ranges: Iterable[Range]) -> list[Range]:
    """Ordered ranges with the empty ones dropped and the touching ones joined."""
    merged: list[Range] = []
    for start, finish in ranges:
        if start >= finish:
            continue
        if merged and merged[-1][1] >= start:
            merged[-1] = (merged[-1][0], max(merged[-1][1], finish))
        else:
            merged.append((start, finish))
    return merged


def _split(
    start: datetime, stop: datetime, width: timedelta | None, since: datetime, grain: timedelta
) -> tuple[list[Range], list[Range]]:
    """``(whole, rest)``: the grains of [start, stop) from `since` on that no bucket boundary cuts, and the rest."""
    lo, hi = max(ceil_grain(start, grain), ceil_grain(since, grain)), floor_grain(stop, grain)
    if lo >= hi:
        return [], [(start, stop)]
    whole: list[Range] = []
    rest: list[Range] = [(start, lo)]
    first = lo
    if width is not None and width % grain:
        # grains cut by a bucket boundary: their rows fall in two buckets, a finer grain (or the rows) must tell
        boundary = _EPOCH + ((lo - _EPOCH) // width + 1) * width
        while boundary < hi:
            cut = floor_grain(boundary, grain)
            if cut != boundary:
                whole.append((first, cut))
                rest.append((cut, cut + grain))
                first = cut + grain
            boundary += width
    whole.append((first, hi))
    rest.append((hi, stop))
    return _merged(whole), _merged(rest)


def plan(
    begin: datetime,
    end: datetime,
    width: timedelta | None,
    since: datetime | None,
    *,
    end_inclusive: bool = True,
    grains: tuple[timedelta, ...] = GRAINS,
) -> RollupPlan:
    """Split the window ``[begin, end]`` (``[begin, end)`` when not `end_inclusive`) for buckets of `width`
    (epoch-aligned; None: one bucket, as a drift check reads) given rollups complete from `since` (None: no
    rollups at all), over `grains` (coarsest first, each a multiple of the next)."""
    stop = end + _US if end_inclusive else end
    todo = _merged([(begin, stop)])
    levels: list[tuple[timedelta, tuple[Range, ...]]] = []
    for grain in grains:
        if since is None or (width is not None and width < grain):
            # a bucket narrower than the grain: it cuts every grain, this grain cannot help
            levels.append((grain, ()))
            continue
        whole: list[Range] = []
        rest: list[Range] = []
        for start, finish in todo:
            answered, left = _split(start, finish, width, since, grain)
            whole += answered
            rest += left
        levels.append((grain, tuple(_merged(whole))))
        todo = _merged(rest)
    return RollupPlan(tuple(levels), tuple(todo))
