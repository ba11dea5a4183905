"""SPC zone codes, rule parsing and the consecutive / alternating / trend rules (spec §6.3, §5.4)."""

import math
import random

import numpy as np
import pytest

from scouter.drift import (
    DEFAULT_SPC_RULE,
    AlertZone,
    SpcAlert,
    SpcAlertType,
    SpcLimits,
    SpcRule,
    SpcRuleError,
    cut_to_shortest,
    evaluate_spc,
    parse_spc_rule,
    spc_alert_maps,
    spc_column_alerts,
    zone_codes,
)

LIMITS = SpcLimits(center=0.0, one_ucl=1.0, one_lcl=-1.0, two_ucl=2.0, two_lcl=-2.0, three_ucl=3.0, three_lcl=-3.0)
ALL_ZONES = ("Zone1", "Zone2", "Zone3", "Zone4")
UPSTREAM_VECTOR = [0, 1, 1, 1, 1, 1, 2, 1, 1, 1, 1, -2, 2, 0, 0, 3, 3, 3, 4, 0, -4, 3, -3, 3, -3, 3, -3]
Z = AlertZone
K = SpcAlertType


def _reference_alerts(d: list[float], rule: str, zones: tuple[str, ...]) -> frozenset[SpcAlert]:
    """Literal port of upstream's `Alerter` loops (alert.rs at v0.6.4), the oracle for the vectorised version."""
    r = [int(x) for x in rule.split(" ")]
    out: set[SpcAlert] = set()
    monitored = {AlertZone(z) for z in zones}

    def add(k: int, kind: SpcAlertType) -> None:
        zone = AlertZone.for_level(k)
        if zone in monitored:
            out.add(SpcAlert(zone, K.OUT_OF_BOUNDS if k == 4 else kind))

    for idx, value in enumerate(d):
        for k in (1, 2, 3, 4):
            c, a = r[2 * (k - 1)], r[2 * (k - 1) + 1]
            if abs(value) == k and c > 0 and idx + 1 >= c:
                window = d[idx + 1 - c : idx + 1]
                if sum(x >= k for x in window) >= c or sum(x <= -k for x in window) >= c:
                    add(k, K.CONSECUTIVE)
            if abs(value) == k and a > 0 and idx + 1 >= a:
                last, count, fired = 0.0, 0, False
                for x in d[idx + 1 - a : idx + 1]:
                    if x == 0:
                        last, count = 0.0, 0
                        continue
                    if x != last and abs(x) >= k:
                        count += 1
                        if count >= a:
                            fired = True
                            break
                    else:
                        last, count = 0.0, 0
                        continue
                    last = x
                if fired:
                    add(k, K.ALTERNATING)
    for start in range(len(d) - 6):
        w = d[start : start + 7]
        inc = sum(w[i] > w[i - 1] for i in range(1, 7))
        dec = sum(w[i] < w[i - 1] for i in range(1, 7))
        if inc >= 6 or dec >= 6:
            out.add(SpcAlert(Z.NOT_APPLICABLE, K.TREND))
    return frozenset(out)


@pytest.mark.parametrize(
    ("value", "code"),
    [
        (3.5, 4), (3.0, 0), (2.5, 3), (2.0, 3), (1.5, 2), (1.0, 2), (0.5, 1), (0.0, 0),
        (-0.5, -1), (-1.0, -2), (-1.5, -2), (-2.0, -3), (-2.5, -3), (-3.0, 0), (-3.5, -4), (math.nan, 0),
    ],
)  # fmt: skip
def test_zone_code_table(value: float, code: int) -> None:
    """Each value maps to the zone code of the §6.3 table, including every boundary and NaN."""
    assert [code] == zone_codes([value], LIMITS).tolist()


def test_zone_codes_without_limits_are_zero() -> None:
    """A feature absent from the profile gets code 0 everywhere."""
    assert [0, 0, 0] == zone_codes([5.0, -5.0, 0.1], None).tolist()


def test_zone_codes_degenerate_limits_follow_upstream_order() -> None:
    """With zero sigma (all limits equal) the first matching condition wins: above → 4, below → -4, equal → 0."""
    flat = SpcLimits(1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0)
    assert [4, 0, -4] == zone_codes([1.5, 1.0, 0.5], flat).tolist()


def test_parse_default_rule() -> None:
    """The default rule parses to consecutive (8, 4, 2, 1) and alternating (16, 8, 4, 1)."""
    assert SpcRule(consecutive=(8, 4, 2, 1), alternating=(16, 8, 4, 1)) == parse_spc_rule(DEFAULT_SPC_RULE)


@pytest.mark.parametrize(
    "rule", ["8 16 4 8 2 4 1", "8 16 4 8 2 4 1 1 1", "8  16 4 8 2 4 1 1", " 8 16 4 8 2 4 1", "8 16 4 8 2 4 1 x",
             "8 16 4 8 2 4 1 1.5", "", "8,16,4,8,2,4,1,1", "8 16 4 8 2 4 1 99999999999"],
)  # fmt: skip
def test_parse_rule_rejects_malformed(rule: str) -> None:
    """Anything but 8 integers separated by single spaces is a SpcRuleError."""
    with pytest.raises(SpcRuleError):
        parse_spc_rule(rule)


def test_rule_error_message_is_clear() -> None:
    """The error names the expected shape and the count found."""
    with pytest.raises(SpcRuleError, match=r"8 integers separated by single spaces, got 7"):
        parse_spc_rule("8 16 4 8 2 4 1")


def test_upstream_vector_default_rule() -> None:
    """Upstream's 27-value vector gives Zone 1 Consecutive, Zone 3 Consecutive, Zone 3 Alternating, Zone 4 OOB."""
    expected = {
        SpcAlert(Z.ZONE1, K.CONSECUTIVE),
        SpcAlert(Z.ZONE3, K.CONSECUTIVE),
        SpcAlert(Z.ZONE3, K.ALTERNATING),
        SpcAlert(Z.ZONE4, K.OUT_OF_BOUNDS),
    }
    assert expected == spc_column_alerts(UPSTREAM_VECTOR)


def test_upstream_vector_zones_to_monitor() -> None:
    """With zones_to_monitor [Zone1, Zone4] the same vector gives 2 alerts."""
    expected = {SpcAlert(Z.ZONE1, K.CONSECUTIVE), SpcAlert(Z.ZONE4, K.OUT_OF_BOUNDS)}
    assert expected == spc_column_alerts(UPSTREAM_VECTOR, DEFAULT_SPC_RULE, [Z.ZONE1, "Zone4"])


def test_upstream_generate_alerts_matrix() -> None:
    """Upstream's 14x4 matrix test: alert counts per feature column are 0, 0, 2, 2."""
    m = np.array(
        [
            [0.0, 0.0, 4.0, 4.0], [0.0, 1.0, 1.0, 1.0], [1.0, 0.0, -1.0, -1.0], [0.0, 1.1, 2.0, 2.0],
            [2.0, 0.0, -2.0, -2.0], [0.0, 0.0, 1.0, 1.0], [0.0, 2.1, 1.0, 1.0], [0.0, 0.0, 1.0, 1.0],
            [2.0, 1.0, 1.0, 1.0], [0.0, 1.0, 1.0, 1.0], [0.0, 0.0, 1.0, 1.0], [0.0, 2.1, 1.0, 1.0],
            [0.0, 0.0, 1.0, 1.0], [1.0, 0.0, 1.0, 1.0],
        ]
    )  # fmt: skip
    assert [0, 0, 2, 2] == [len(spc_column_alerts(m[:, j])) for j in range(4)]


def test_upstream_trend_vector() -> None:
    """Upstream's trend test: a rising run of 7 raw values gives (NotApplicable, Trend)."""
    values = [0.0, 0.0, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7]
    assert {SpcAlert(Z.NOT_APPLICABLE, K.TREND)} == spc_column_alerts(values, "0 0 0 0 0 0 0 0", ALL_ZONES)


def test_newest_first_order_decides_consecutive() -> None:
    """The point closing the window must be exactly ±k: [3,3,2] fires zone 2 with C=3, [2,3,3] does not."""
    rule = "0 0 3 0 0 0 0 0"
    assert ({SpcAlert(Z.ZONE2, K.CONSECUTIVE)}, set()) == (
        spc_column_alerts([3, 3, 2], rule, ALL_ZONES),
        spc_column_alerts([2, 3, 3], rule, ALL_ZONES),
    )


def test_consecutive_needs_one_side() -> None:
    """A window mixing +k and -k is not consecutive."""
    assert set() == spc_column_alerts([2, -2, 2], "0 0 3 0 0 0 0 0", ALL_ZONES)


def test_alternating_counts_any_change() -> None:
    """ "Alternating" means differing from the previous value: 3,2,3,2 counts for zone 2; 2,2,3,2 does not."""
    rule = "0 0 0 4 0 0 0 0"
    assert ({SpcAlert(Z.ZONE2, K.ALTERNATING)}, set()) == (
        spc_column_alerts([3, 2, 3, 2], rule, ALL_ZONES),
        spc_column_alerts([2, 2, 3, 2], rule, ALL_ZONES),
    )


def test_alternating_broken_by_zero() -> None:
    """A zero inside the window resets the alternating scan."""
    assert set() == spc_column_alerts([1, -1, 0, 1, -1], "0 5 0 0 0 0 0 0", ALL_ZONES)


def test_zone4_always_out_of_bounds() -> None:
    """Zone 4 alerts are kind OutOfBounds whether the consecutive or the alternating rule fired."""
    assert ({SpcAlert(Z.ZONE4, K.OUT_OF_BOUNDS)}, {SpcAlert(Z.ZONE4, K.OUT_OF_BOUNDS)}) == (
        spc_column_alerts([4, 4], "0 0 0 0 0 0 2 0", ALL_ZONES),
        spc_column_alerts([4, -4], "0 0 0 0 0 0 0 2", ALL_ZONES),
    )


def test_zone_filter_drops_zone4() -> None:
    """An unmonitored zone 4 records nothing, even for an out-of-bounds point."""
    assert set() == spc_column_alerts([-4], DEFAULT_SPC_RULE, ["Zone1"])


def test_zero_and_negative_counts_disable() -> None:
    """A rule count of 0 or a negative count never fires (upstream casts i32 → usize)."""
    assert set() == spc_column_alerts([4, 4, 4], "0 0 0 0 0 0 -1 0", ALL_ZONES)


def test_trend_ignores_zone_filter() -> None:
    """Six strict decreases in a window of 7 zone codes add a Trend even with no zone monitored."""
    assert {SpcAlert(Z.NOT_APPLICABLE, K.TREND)} == spc_column_alerts([3, 2, 1, 0, -1, -2, -3], DEFAULT_SPC_RULE, [])


def test_trend_needs_six_strict_steps() -> None:
    """A flat step inside the window of 7 prevents a trend."""
    assert set() == spc_column_alerts([-3, -2, -1, -1, 1, 2, 3], DEFAULT_SPC_RULE, [])


def test_short_column_has_no_alerts() -> None:
    """Windows longer than the data never fire; an empty column gives no alerts."""
    assert (set(), set()) == (spc_column_alerts([1] * 7, DEFAULT_SPC_RULE), spc_column_alerts([], DEFAULT_SPC_RULE))


def test_vectorised_rule_matches_upstream_loops() -> None:
    """Random code columns and rules give the same alert sets as a literal port of upstream's loops."""
    rng = random.Random(1234)
    mismatches, kinds_seen = [], set()
    for _ in range(600):
        n = rng.randint(0, 40)
        column = [float(rng.choice([-4, -3, -2, -1, 0, 1, 2, 3, 4, 1, 1, 2, -1])) for _ in range(n)]
        if rng.random() < 0.1:  # plant a strictly monotone run of 7 so trends occur too
            run = sorted(rng.sample(range(-4, 5), 7), reverse=rng.random() < 0.5)
            at = rng.randint(0, n)
            column[at:at] = [float(x) for x in run]
        rule = " ".join(str(rng.randint(0, 6)) for _ in range(8))
        zones = tuple(z for z in ALL_ZONES if rng.random() < 0.75)
        expected = _reference_alerts(column, rule, zones)
        kinds_seen |= expected
        if expected != spc_column_alerts(column, rule, zones):
            mismatches.append((column, rule, zones))
    # the random cases exercise every (zone, kind) the rule can produce
    every_alert = {SpcAlert(AlertZone.for_level(k), kind) for k in (1, 2, 3) for kind in (K.CONSECUTIVE, K.ALTERNATING)}
    every_alert |= {SpcAlert(Z.ZONE4, K.OUT_OF_BOUNDS), SpcAlert(Z.NOT_APPLICABLE, K.TREND)}
    assert ([], every_alert) == (mismatches, kinds_seen)


def test_evaluate_spc_per_feature() -> None:
    """Raw values are coded against each feature's limits; a feature without limits has no alerts."""
    values = {"a": [3.5, 0.5, 0.5], "b": [3.5, 3.5]}
    expected = {"a": frozenset({SpcAlert(Z.ZONE4, K.OUT_OF_BOUNDS)}), "b": frozenset()}
    assert expected == evaluate_spc(values, {"a": LIMITS}, DEFAULT_SPC_RULE, ALL_ZONES)


def test_evaluate_spc_rejects_bad_rule_without_data() -> None:
    """A malformed rule is reported even when there is nothing to evaluate."""
    with pytest.raises(SpcRuleError):
        evaluate_spc({}, {}, "1 2 3")


def test_cut_to_shortest_keeps_newest() -> None:
    """Every column is cut to the shortest length, keeping the first (newest) points, features alphabetical."""
    columns = {"b": [5, 4, 3, 2], "a": [9, 8]}
    assert ({"a": [9, 8], "b": [5, 4]}, ["a", "b"]) == (cut_to_shortest(columns), list(cut_to_shortest(columns)))


def test_display_forms() -> None:
    """Zones and kinds display as upstream's Rust Display strings."""
    zones = ["Zone 1", "Zone 2", "Zone 3", "Zone 4", "NA"]
    kinds = ["Out of bounds", "Consecutive", "Alternating", "All good", "Trend"]
    assert (zones, kinds) == ([z.display for z in AlertZone], [k.display for k in SpcAlertType])


def test_alert_maps() -> None:
    """One all-string map per (feature, alert), features alphabetical and alerts in zone order."""
    alerts = {
        "f1": frozenset({SpcAlert(Z.ZONE4, K.OUT_OF_BOUNDS), SpcAlert(Z.ZONE1, K.CONSECUTIVE)}),
        "f0": frozenset({SpcAlert(Z.NOT_APPLICABLE, K.TREND)}),
        "f2": frozenset(),
    }
    expected = [
        {"entity_name": "f0", "kind": "Trend", "zone": "NA"},
        {"entity_name": "f1", "kind": "Consecutive", "zone": "Zone 1"},
        {"entity_name": "f1", "kind": "Out of bounds", "zone": "Zone 4"},
    ]
    assert expected == spc_alert_maps(alerts)


def test_large_column_runs_vectorised() -> None:
    """A 1M-point column is evaluated (codes and rules) and finds a planted out-of-bounds point."""
    values = np.zeros(1_000_000)
    values[500_000] = 10.0
    codes = zone_codes(values, LIMITS)
    assert {SpcAlert(Z.ZONE4, K.OUT_OF_BOUNDS)} == spc_column_alerts(codes)
