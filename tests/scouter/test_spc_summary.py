"""The SPC summary monoid (`scouter.drift.spc_summary`) against the whole-sequence evaluator
(`scouter.drift.spc.spc_column_alerts`): random sequences, random splits, random rules (disabled and negative counts
included), random zone filters."""

from __future__ import annotations

import functools
import itertools

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from scouter.drift.spc import AlertZone, SpcLimits, SpcRule, alerts_of, fired_by_group, spc_column_alerts
from scouter.drift.spc_summary import (
    EMPTY,
    SpcSegment,
    concat,
    feature_stamp,
    fold_fired,
    segment_of,
    span_of,
)

ALL_ZONES = (AlertZone.ZONE1, AlertZone.ZONE2, AlertZone.ZONE3, AlertZone.ZONE4)

rules = st.builds(
    lambda c, a: SpcRule(tuple(c), tuple(a)),  # type: ignore[arg-type]
    st.lists(st.integers(-3, 12), min_size=4, max_size=4),
    st.lists(st.integers(-3, 12), min_size=4, max_size=4),
)
# codes biased to runs and alternations so that rules actually fire
codes = st.lists(st.sampled_from([-4, -3, -2, -1, 0, 1, 2, 3, 4, 1, 1, 2, -2]), max_size=80).map(
    lambda xs: np.array(xs, dtype=np.int8)
)
zones = st.sets(st.sampled_from([*ALL_ZONES, AlertZone.NOT_APPLICABLE]))


def _splits(data: st.DataObject, n: int) -> list[int]:
    cuts = sorted(data.draw(st.sets(st.integers(0, n), max_size=8)))
    return [0, *cuts, n]


def _parts(d: np.ndarray, bounds: list[int]) -> list[np.ndarray]:
    return [d[a:b] for a, b in itertools.pairwise(bounds)]


@settings(max_examples=600, deadline=None)
@given(codes, rules, zones, st.data())
def test_concatenated_segments_give_the_whole_sequences_alerts(d, rule, monitored, data):
    parts = _parts(d, _splits(data, d.shape[0]))
    folded = functools.reduce(lambda x, y: concat(x, y, rule), (segment_of(p, rule) for p in parts), EMPTY)
    whole = segment_of(d, rule)
    assert folded.n == d.shape[0]
    assert folded.fired == whole.fired
    assert np.array_equal(folded.newest, whole.newest)
    assert np.array_equal(folded.oldest, whole.oldest)
    assert alerts_of(folded.fired, monitored) == spc_column_alerts(d, rule, monitored)


@settings(max_examples=600, deadline=None)
@given(codes, rules, zones, st.data())
def test_folding_summaries_and_raw_runs_gives_the_whole_sequences_alerts(d, rule, monitored, data):
    """`fold_fired` as the check uses it: some parts summaries (whole or not), the others raw codes."""
    parts = _parts(d, _splits(data, d.shape[0]))
    mixed = [segment_of(p, rule) if data.draw(st.booleans()) else p for p in parts]
    fired = fold_fired(mixed, rule)
    assert alerts_of(fired, monitored) == spc_column_alerts(d, rule, monitored)


@settings(max_examples=300, deadline=None)
@given(st.lists(codes, max_size=6), rules)
def test_fired_by_group_judges_each_group_alone(columns, rule):
    group = np.concatenate([np.full(c.shape[0], i, np.int64) for i, c in enumerate(columns)] or [np.zeros(0, np.int64)])
    joined = np.concatenate(columns or [np.zeros(0, np.int8)])
    fired = fired_by_group(joined, group, len(columns), rule)
    for column, mask in zip(columns, fired, strict=True):
        assert alerts_of(int(mask), ALL_ZONES) == spc_column_alerts(column, rule, ALL_ZONES)


def test_long_segments_keep_span_codes_each_side():
    rule = SpcRule((8, 4, 2, 1), (16, 8, 4, 1))
    assert span_of(rule) == 15
    s = segment_of(np.arange(100, dtype=np.int8) % 5, rule)
    assert (s.n, s.newest.shape[0], s.oldest.shape[0], s.whole) == (100, 15, 15, False)
    assert isinstance(s, SpcSegment)
    assert span_of(SpcRule((-1, 0, 0, 0), (0, 0, 0, 0))) == 6  # the trend's 7 points


def test_stamps_tell_limits_and_rules_apart():
    rule = SpcRule((8, 4, 2, 1), (16, 8, 4, 1))
    limits = SpcLimits(0.0, 1.0, -1.0, 2.0, -2.0, 3.0, -3.0)
    shifted = SpcLimits(0.0, 1.0, -1.0, 2.0, -2.0, 3.0, -3.0000001)
    other_rule = SpcRule((8, 4, 2, 1), (16, 8, 4, 2))
    stamps = {feature_stamp(limits, rule), feature_stamp(shifted, rule), feature_stamp(limits, other_rule)}
    assert len(stamps | {feature_stamp(None, rule)}) == 4
    assert feature_stamp(limits, rule) == feature_stamp(SpcLimits(0.0, 1.0, -1.0, 2.0, -2.0, 3.0, -3.0), rule)
