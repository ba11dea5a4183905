"""Binned responses from per-bucket aggregates: merging parts, ordering, PSI arithmetic, finite numbers only."""

from __future__ import annotations

import math
import statistics
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from scouter import binned
from scouter.binned import merge_custom, merge_psi, merge_spc, rfc3339
from scouter.wire.common import encode

T0 = datetime(2026, 11, 22, 17, 6, 0, tzinfo=UTC)
T1 = T0 + timedelta(minutes=1)


# The responses as the client reads them: each builder's struct, encoded, parsed back.
def spc_response(rows: Any) -> Any:
    return orjson.loads(encode(binned.spc_response(rows)))


def custom_response(rows: Any) -> Any:
    return orjson.loads(encode(binned.custom_response(rows)))


def psi_response(rows: Any, profile: Any) -> Any:
    return orjson.loads(encode(binned.psi_response(rows, profile)))


def observability_response(rows: Any) -> Any:
    return orjson.loads(encode(binned.observability_response(rows)))


def test_rfc3339_is_utc_with_microseconds_and_z() -> None:
    """Bucket starts are written like the captures: microseconds and Z."""
    assert "2026-11-22T17:06:00.000000Z" == rfc3339(T0)
    assert "0001-01-01T00:00:00.000001Z" == rfc3339(datetime(1, 1, 1, 0, 0, 0, 1, tzinfo=UTC))


def test_spc_response_is_newest_first_per_feature() -> None:
    """Each feature gets parallel arrays of bucket starts and means, newest first."""
    rows = [("f1", T0, 2, 1.5), ("f0", T0, 1, 0.5), ("f0", T1, 3, -2.0)]
    expected = {
        "features": {
            "f0": {"created_at": [rfc3339(T1), rfc3339(T0)], "values": [-2.0, 0.5]},
            "f1": {"created_at": [rfc3339(T0)], "values": [1.5]},
        }
    }
    assert expected == spc_response(merge_spc([rows]))


def test_spc_response_drops_non_finite_points() -> None:
    """A mean that overflowed to inf (or NaN) is left out with its timestamp; the feature stays."""
    rows = [("f0", T0, 2, math.inf), ("f0", T1, 1, 1.0), ("f1", T0, 1, math.nan)]
    assert {
        "features": {"f0": {"created_at": [rfc3339(T1)], "values": [1.0]}, "f1": {"created_at": [], "values": []}}
    } == spc_response(rows)


def test_merge_spc_weights_means_by_count() -> None:
    """A bucket present in two parts gets the mean of all its values."""
    values_a, values_b = [1.0, 2.0, 3.0], [10.0]
    part_a = [("f0", T0, 3, statistics.fmean(values_a))]
    part_b = [("f0", T0, 1, statistics.fmean(values_b)), ("f0", T1, 1, 7.0)]
    merged = sorted(merge_spc([part_a, part_b]), key=lambda r: r[1])
    assert [("f0", T0, 4, statistics.fmean(values_a + values_b)), ("f0", T1, 1, 7.0)] == merged


def test_merge_spc_takes_a_biggest_part_with_repeated_keys_row_by_row() -> None:
    """The biggest part goes in at once only when its keys are distinct; a part repeating a key (and a generator) is
    still merged row by row, whichever order the parts come in."""
    repeated = [("f0", T0, 1, 1.0), ("f0", T0, 1, 3.0), ("f0", T1, 2, 5.0)]
    for parts in ([repeated, [("f0", T0, 2, 4.0)]], [[("f0", T0, 2, 4.0)], iter(repeated)]):
        merged = sorted(merge_spc(parts), key=lambda r: r[1])  # type: ignore[arg-type]
        assert [("f0", T0, 4, 3.0), ("f0", T1, 2, 5.0)] == merged


def test_custom_response_bounds_are_mean_plus_minus_sample_stddev() -> None:
    """avg ∓ stddev_samp per bucket; a single value has zero spread."""
    values = [10.0, 11.0, 13.5]
    mean, sd = statistics.fmean(values), statistics.stdev(values)
    rows = [("mae", T0, 3, mean, statistics.variance(values)), ("mae", T1, 1, 4.5, 0.0)]
    assert {
        "metrics": {
            "mae": {
                "metric": "mae",
                "created_at": [rfc3339(T1), rfc3339(T0)],
                "stats": [
                    {"avg": 4.5, "lower_bound": 4.5, "upper_bound": 4.5},
                    {"avg": mean, "lower_bound": mean - sd, "upper_bound": mean + sd},
                ],
            }
        }
    } == custom_response(rows)


def test_merge_custom_combines_variance_exactly() -> None:
    """Chan's update gives the variance of the union of both parts' values."""
    a, b = [1.0, 4.0, 9.0, 2.0], [3.0, 12.0]
    part_a = [("m", T0, len(a), statistics.fmean(a), statistics.variance(a))]
    part_b = [("m", T0, len(b), statistics.fmean(b), statistics.variance(b))]
    ((metric, bucket, count, mean, variance),) = merge_custom([part_a, part_b])
    assert ("m", T0, 6) == (metric, bucket, count)
    assert statistics.fmean(a + b) == pytest.approx(mean, rel=1e-15)
    assert statistics.variance(a + b) == pytest.approx(variance, rel=1e-14)


def test_merge_custom_of_single_values_has_sample_variance() -> None:
    """Two single-value parts in one bucket: the variance of the pair, not 0."""
    ((_, _, count, mean, variance),) = merge_custom([[("m", T0, 1, 2.0, 0.0)], [("m", T0, 1, 4.0, 0.0)]])
    assert (2, 3.0, 2.0) == (count, mean, variance)


def _psi(expected: dict[int, float], observed: dict[int, float]) -> float:
    """PSI written out independently of scouter.drift.psi."""
    eps = 1e-10
    return sum(
        ((p + eps) - (observed.get(b, 0.0) + eps)) * math.log((p + eps) / (observed.get(b, 0.0) + eps))
        for b, p in expected.items()
    )


def test_psi_response_per_bucket_and_true_overall() -> None:
    """Per-bucket PSI against the profile, buckets of <= 100 dropped, overall proportions over the whole window."""
    profile = {"f0": {1: 0.25, 2: 0.25, 3: 0.5}}
    bucket0 = {1: 30, 2: 30, 3: 60}  # 120 > 100: kept
    bucket1 = {1: 90, 2: 10, 3: 0}  # 100: dropped from the series, still in the overall counts
    t2 = T1 + timedelta(minutes=1)
    bucket2 = {1: 10, 2: 150}  # bin 3 missing entirely
    rows = [("f0", T0, b, c) for b, c in bucket0.items()]
    rows += [("f0", T1, b, c) for b, c in bucket1.items()]
    rows += [("f0", t2, b, c) for b, c in bucket2.items()]
    rows.append(("not_in_profile", T0, 1, 500))
    result = psi_response(merge_psi([rows]), profile)["features"]
    assert ["f0"] == list(result)
    f0 = result["f0"]
    assert [rfc3339(t2), rfc3339(T0)] == f0["created_at"]
    expected_psi = [
        _psi(profile["f0"], {b: c / 160 for b, c in bucket2.items()}),
        _psi(profile["f0"], {b: c / 120 for b, c in bucket0.items()}),
    ]
    assert expected_psi == pytest.approx(f0["psi"], rel=1e-12)
    totals = {1: 130, 2: 190, 3: 60}
    assert {str(b): c / 380 for b, c in totals.items()} == f0["bins"]
    assert _psi(profile["f0"], {b: c / 380 for b, c in totals.items()}) == pytest.approx(f0["overall_psi"], rel=1e-12)
    assert ["created_at", "psi", "overall_psi", "bins"] == list(f0)


def test_psi_feature_without_a_kept_bucket_is_left_out() -> None:
    """A feature whose buckets all hold <= 100 samples does not appear, as upstream."""
    rows = [("f0", T0, 1, 50), ("f0", T1, 1, 51)]
    assert {"features": {}} == psi_response(rows, {"f0": {1: 1.0}})


def test_merge_psi_adds_counts() -> None:
    """Counts of the same feature, bucket and bin from two parts add up."""
    merged = merge_psi([[("f0", T0, 1, 60), ("f0", T0, 2, 5)], [("f0", T0, 1, 41)]])
    assert {("f0", T0, 1, 101), ("f0", T0, 2, 5)} == set(merged)


def test_observability_response_shape() -> None:
    """Per route: parallel arrays newest first, status counts as objects, status success."""
    rows = [
        ("/home", T0, 1.0, 2.0, 3.0, 9.0, 10.0, 3, 1, 5.0, '{"200": 2, "500": 1}'),
        ("/home", T1, 1.5, 2.5, 3.5, 9.5, 10.5, 4, 0, 0.0, "{}"),
        ("/a", T0, 0.1, 0.2, 0.3, 0.4, 0.5, 1, 0, 0.0, {"200": 1}),
    ]
    result = observability_response(rows)
    assert "success" == result["status"]
    assert ["/a", "/home"] == [route["route_name"] for route in result["data"]]
    home = result["data"][1]
    assert {
        "route_name": "/home",
        "created_at": [rfc3339(T1), rfc3339(T0)],
        "p5": [1.5, 1.0],
        "p25": [2.5, 2.0],
        "p50": [3.5, 3.0],
        "p95": [9.5, 9.0],
        "p99": [10.5, 10.0],
        "total_request_count": [4, 3],
        "total_error_count": [0, 1],
        "error_latency": [0.0, 5.0],
        "status_counts": [{}, {"200": 2, "500": 1}],
    } == home
