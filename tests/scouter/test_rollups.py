"""The rollup plan: a window split, coarsest grain first, into whole hours, whole minutes and raw ranges that cover
it exactly once, with no grain a bucket boundary cuts, and the finer parts kept to the window's edges."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from scouter.rollups import GRAIN, HOUR, Range, RollupPlan, ceil_grain, floor_grain, minutes_pay_off, plan

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
T0 = datetime(2026, 12, 1, tzinfo=UTC)
US = timedelta(microseconds=1)
MINUTES_3_DAYS = 3 * 24 * 60 * 60_000_000

moments = st.integers(0, MINUTES_3_DAYS).map(lambda us: T0 + timedelta(microseconds=us))
widths = st.one_of(
    st.none(),
    st.sampled_from([timedelta(minutes=m) for m in (1, 5, 43, 60, 90, 120, 24 * 60)]),
    st.integers(1, 12 * 60 * 60_000_000).map(lambda us: timedelta(microseconds=us)),
)
sinces = st.one_of(st.none(), st.just(datetime(1, 1, 1, tzinfo=UTC)), moments)


def _all_ranges(split: RollupPlan) -> list[Range]:
    return sorted([r for _, ranges in split.grains for r in ranges] + list(split.raw))


def _cut(start: datetime, stop: datetime, width: timedelta, grain: timedelta) -> bool:
    """Does a bucket boundary fall strictly inside one of the grains of [start, stop)?"""
    boundary = EPOCH + ((start - EPOCH) // width + 1) * width
    while boundary < stop:
        if floor_grain(boundary, grain) != boundary:
            return True
        boundary += width
    return False


@settings(max_examples=300, deadline=None)
@given(moments, moments, widths, sinces, st.booleans())
def test_the_plan_covers_the_window_once_with_whole_uncut_grains(
    a: datetime, b: datetime, width: timedelta | None, since: datetime | None, end_inclusive: bool
) -> None:
    """Every moment of the window is in exactly one range; each grain's ranges hold whole grains from the rollups'
    coverage on, none cut by a bucket boundary; a bucket narrower than a grain uses no such grain."""
    begin, end = min(a, b), max(a, b)
    split = plan(begin, end, width, since, end_inclusive=end_inclusive)
    stop = end + US if end_inclusive else end
    ranges = _all_ranges(split)
    position = begin
    for start, finish in ranges:
        assert start == position
        assert start < finish
        position = finish
    assert position == (stop if begin < stop else begin)
    for grain, grain_ranges in split.grains:
        for start, finish in grain_ranges:
            assert since is not None
            assert floor_grain(start, grain) == start
            assert floor_grain(finish, grain) == finish
            assert start >= ceil_grain(since, grain)
            assert width is None or (width >= grain and not _cut(start, finish, width, grain))
    assert [grain for grain, _ in split.grains] == [HOUR, GRAIN]


@settings(max_examples=200, deadline=None)
@given(moments, moments, st.sampled_from([None, timedelta(hours=1), timedelta(days=1), timedelta(minutes=90)]))
def test_long_windows_read_hours_and_only_the_edges_finer(a: datetime, b: datetime, width: timedelta | None) -> None:
    """With rollups complete and buckets of whole hours (or one bucket), minutes are read only at the window's two
    edges (under two hours) and rows only in its two partial minutes; with hour-and-a-half buckets, also the
    minutes of the hours their boundaries cut."""
    begin, end = min(a, b), max(a, b)
    split = plan(begin, end, width, EPOCH, end_inclusive=False)
    raw = sum((finish - start for start, finish in split.raw), timedelta())
    minutes = sum((finish - start for start, finish in split.ranges(GRAIN)), timedelta())
    assert raw < 2 * GRAIN
    cut_hours = 0 if width is None or not width % HOUR else (end - begin) // width + 2
    assert minutes < (2 + cut_hours) * HOUR
    if end - begin >= 3 * HOUR and (width is None or not width % HOUR):
        assert split.ranges(HOUR)


def test_hours_start_at_the_first_whole_hour_of_the_coverage() -> None:
    """Rollups complete from 10:30 (the migration's minute): the hour 10:00 is not whole in them, 11:00 is; minutes
    from 10:30 are."""
    since = T0.replace(hour=10, minute=30)
    split = plan(T0.replace(hour=9), T0.replace(hour=13), None, since, end_inclusive=False)
    assert split.ranges(HOUR) == ((T0.replace(hour=11), T0.replace(hour=13)),)
    assert split.ranges(GRAIN) == ((since, T0.replace(hour=11)),)
    assert split.raw == ((T0.replace(hour=9), since),)


def test_without_rollups_everything_is_raw() -> None:
    split = plan(T0, T0 + timedelta(days=1), timedelta(hours=1), None)
    assert not split.uses_rollups
    assert split.raw == ((T0, T0 + timedelta(days=1) + US),)


def test_minutes_pay_off_only_for_dense_records() -> None:
    """Minutes are read instead of rows only when each minute rollup row stands for several records."""
    assert minutes_pay_off(rows=30 * 60, minute_rows=60)
    assert not minutes_pay_off(rows=90, minute_rows=60)
    assert minutes_pay_off(rows=0, minute_rows=0)  # nothing stored: either way reads nothing
