"""Planning an SPC window through summaries (`scouter.spc_plan`): which segments are used as summaries, which time
ranges are read raw, and where the cut to the shortest column forces a summary to be read raw."""

from __future__ import annotations

import datetime as dt

import numpy as np

from scouter.drift.spc import SpcRule
from scouter.drift.spc_summary import segment_of
from scouter.spc_plan import (
    MIN_POINTS_PER_SEGMENT,
    RawRange,
    StoredSegment,
    SummaryPart,
    as_raw,
    plan_parts,
    spans_of,
    straddling,
    worth_summaries,
)

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
S = dt.timedelta(seconds=1)
TICK = dt.timedelta(microseconds=1)
RULE = SpcRule((8, 4, 2, 1), (16, 8, 4, 1))
STAMP = 42


def seg(feature: str, first: int, last: int, n: int = 3, stamp: int | None = STAMP, pairs: int = 1) -> StoredSegment:
    summary = segment_of(np.zeros(n, np.int8), RULE) if stamp is not None else None
    return StoredSegment(
        feature, T0 + first * S, T0 + last * S, n, pairs, stamp, summary, T0 + first * S, T0 + last * S
    )


def kinds(parts: list[object]) -> list[tuple[str, dt.datetime, dt.datetime]]:
    return [
        ("summary", p.first, p.last) if isinstance(p, SummaryPart) else ("raw", p.lo, p.hi)  # type: ignore[union-attr]
        for p in parts
    ]


def test_lone_segments_inside_the_window_are_summaries_newest_first():
    plans = plan_parts([seg("a", 10, 20), seg("a", 30, 40)], T0, T0 + 100 * S, {"a": STAMP}, 7)
    assert kinds(plans["a"]) == [("summary", T0 + 30 * S, T0 + 40 * S), ("summary", T0 + 10 * S, T0 + 20 * S)]


def test_overlaps_edges_stamps_and_shared_timestamps_are_read_raw():
    segments = [
        seg("a", -5, 5),  # crosses the window start
        seg("a", 10, 20),
        seg("a", 20, 25),  # shares 20 with the one before: order unknown, both raw
        seg("a", 30, 40, stamp=STAMP + 1),  # judged with other limits
        seg("a", 50, 60, stamp=None),  # another path: no summary
        seg("a", 70, 80, pairs=2),  # two statements in its transaction
        seg("a", 85, 86),
        seg("a", 95, 105),  # crosses the window end
    ]
    plans = plan_parts(segments, T0, T0 + 100 * S, {"a": STAMP}, 7)
    # neighbouring raw clusters merge into one range: nothing of the feature lies between them
    assert kinds(plans["a"]) == [
        ("raw", T0 + 95 * S, T0 + 100 * S),
        ("summary", T0 + 85 * S, T0 + 86 * S),
        ("raw", T0, T0 + 80 * S + TICK),
    ]


def test_a_feature_without_limits_uses_the_no_limits_stamp():
    plans = plan_parts([seg("z", 1, 2, stamp=7)], T0, T0 + 10 * S, {"a": STAMP}, 7)
    assert kinds(plans["z"]) == [("summary", T0 + S, T0 + 2 * S)]


def test_the_cut_to_the_shortest_column_inside_a_summary_reads_it_raw():
    plans = plan_parts([seg("a", 10, 20, n=5), seg("a", 30, 40, n=5), seg("b", 30, 40, n=7)], T0, T0 + 99 * S,
                       {"a": STAMP, "b": STAMP}, 7)  # fmt: skip
    assert straddling(plans, {}, {}) == [plans["a"][1]]  # a keeps 5 + 2 of its 10: the cut is inside the older one
    assert as_raw(plans["a"][1]) == RawRange("a", T0 + 10 * S, T0 + 20 * S + TICK)


def test_raw_ranges_are_read_in_disjoint_spans():
    ranges = [
        RawRange("a", T0, T0 + 5 * S),
        RawRange("b", T0 + 3 * S, T0 + 8 * S),
        RawRange("a", T0 + 9 * S, T0 + 10 * S),
    ]
    spans, span_of_range = spans_of(ranges)
    assert spans == [(T0, T0 + 8 * S), (T0 + 9 * S, T0 + 10 * S)]
    assert span_of_range == [0, 0, 1]


def test_windows_of_tiny_transactions_are_read_raw():
    assert worth_summaries(10, 10 * MIN_POINTS_PER_SEGMENT)
    assert not worth_summaries(10, 10 * MIN_POINTS_PER_SEGMENT - 1)
    assert not worth_summaries(0, 0)  # nothing summarised (e.g. late rows only): one raw read
