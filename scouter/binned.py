"""Binned drift and observability responses (server.md §2.10, §2.12) from per-bucket aggregates.

The database does the aggregation (one row per bucket and feature, or per bucket, feature and bin); this module
merges the aggregates of several *parts* of a window (today PostgreSQL only; archived Parquet later) and shapes the
JSON the client parses strictly (client.md §3.1 #6-8). Aggregates are kept in a mergeable form, so a bucket that
straddles the archive boundary combines exactly:

* SPC: ``(feature, bucket, count, mean)``: a count-weighted mean;
* custom: ``(metric, bucket, count, mean, variance)`` with the sample variance (0 for a single value): Chan's
  pairwise update;
* PSI: ``(feature, bucket, bin_id, count)``: counts add.

Rows may be tuples or anything indexable the same way (asyncpg records). Output rules:

* arrays newest first; datetimes RFC 3339 UTC with ``Z`` and microseconds;
* never NaN or ±inf (the client cannot parse serde's ``null``; §12 #28): a point whose numbers are not finite is
  left out, with its timestamp;
* PSI: a bucket is kept when its feature total exceeds `PSI_MIN_BUCKET_TOTAL`; features absent from the profile,
  or without any kept bucket, are left out; ``bins``/``overall_psi`` come from the true proportions over the whole
  window (upstream used one arbitrary bucket, §12 #3).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final, TypeAlias

import orjson

from scouter.drift.psi import compute_psi
from scouter.wire.v064 import (
    BinnedCustomMetrics,
    BinnedPsiFeatureMetrics,
    CustomMetricSeries,
    CustomStats,
    ObservabilityMetrics,
    PsiFeatureSeries,
    RouteSeries,
    SpcDriftFeatures,
    SpcFeatureSeries,
)

__all__ = [
    "PSI_MIN_BUCKET_TOTAL",
    "CustomAggregate",
    "ObservabilityAggregate",
    "PsiAggregate",
    "SpcAggregate",
    "custom_response",
    "merge_custom",
    "merge_psi",
    "merge_spc",
    "observability_response",
    "psi_response",
    "rfc3339",
    "spc_response",
]

PSI_MIN_BUCKET_TOTAL: Final = 100

SpcAggregate: TypeAlias = tuple[str, datetime, int, float]  # feature, bucket, count, mean
CustomAggregate: TypeAlias = tuple[str, datetime, int, float, float]  # metric, bucket, count, mean, variance
PsiAggregate: TypeAlias = tuple[str, datetime, int, int]  # feature, bucket, bin_id, count
# route_name, bucket, p5, p25, p50, p95, p99, total_request_count, total_error_count, error_latency,
# status_counts (a JSON object as text, or a dict)
ObservabilityAggregate: TypeAlias = tuple[
    str, datetime, float, float, float, float, float, int, int, float, "str | Mapping[str, int]"
]


def rfc3339(moment: datetime) -> str:
    """``2026-11-22T17:06:39.000000Z``: UTC, microseconds, ``Z``."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")[:-6] + "Z"


class _Stamps(dict[datetime, str]):
    """`rfc3339` of each bucket, formatted once per response: every feature of a response shares the same buckets,
    and formatting was most of the time a response of a few thousand points took."""

    def __missing__(self, moment: datetime) -> str:
        text = self[moment] = rfc3339(moment)
        return text


# --- merging parts -------------------------------------------------------------------------------------------------


def merge_spc(parts: Sequence[Iterable[Sequence[Any]]]) -> list[SpcAggregate]:
    """One aggregate per (feature, bucket): means weighted by their counts."""
    if len(parts) == 1:
        return [(r[0], r[1], r[2], r[3]) for r in parts[0]]
    # The biggest part (the whole grains of a rollup read) goes in at once, when its keys are distinct (every
    # statement groups by them); the others are merged into it row by row.
    first, *rest = sorted((p if isinstance(p, Sequence) else list(p) for p in parts), key=len, reverse=True)
    merged: dict[tuple[str, datetime], tuple[int, float]] = {(r[0], r[1]): (r[2], r[3]) for r in first}
    if len(merged) != len(first):
        merged, rest = {}, [first, *rest]
    for part in rest:
        for feature, bucket, count, mean in part:
            key = (feature, bucket)
            seen = merged.get(key)
            if seen is None:
                merged[key] = (count, mean)
            else:
                total = seen[0] + count
                merged[key] = (total, seen[1] + (mean - seen[1]) * count / total)
    return [(feature, bucket, count, mean) for (feature, bucket), (count, mean) in merged.items()]


def merge_custom(parts: Sequence[Iterable[Sequence[Any]]]) -> list[CustomAggregate]:
    """One aggregate per (metric, bucket): counts, means and sample variances combined (Chan et al.)."""
    if len(parts) == 1:
        return [(r[0], r[1], r[2], r[3], r[4]) for r in parts[0]]
    merged: dict[tuple[str, datetime], tuple[int, float, float]] = {}  # count, mean, M2 (sum of squared deviations)
    for part in parts:
        for metric, bucket, count, mean, variance in part:
            key = (metric, bucket)
            m2 = variance * (count - 1)
            seen = merged.get(key)
            if seen is None:
                merged[key] = (count, mean, m2)
                continue
            n_a, mean_a, m2_a = seen
            total = n_a + count
            delta = mean - mean_a
            merged[key] = (total, mean_a + delta * count / total, m2_a + m2 + delta * delta * n_a * count / total)
    return [
        (metric, bucket, n, mean, m2 / (n - 1) if n > 1 else 0.0) for (metric, bucket), (n, mean, m2) in merged.items()
    ]


def merge_psi(parts: Sequence[Iterable[Sequence[Any]]]) -> list[PsiAggregate]:
    """One aggregate per (feature, bucket, bin): counts added."""
    if len(parts) == 1:
        return [(r[0], r[1], r[2], r[3]) for r in parts[0]]
    merged: dict[tuple[str, datetime, int], int] = {}
    for part in parts:
        for feature, bucket, bin_id, count in part:
            key = (feature, bucket, bin_id)
            merged[key] = merged.get(key, 0) + count
    return [(feature, bucket, bin_id, count) for (feature, bucket, bin_id), count in merged.items()]


# --- shaping -------------------------------------------------------------------------------------------------------


def _newest_first(rows: Iterable[Sequence[Any]]) -> list[Sequence[Any]]:
    # by name, then bucket descending; the sort is stable, so two passes do it
    ordered = sorted(rows, key=lambda row: row[1], reverse=True)
    ordered.sort(key=lambda row: row[0])
    return ordered


def spc_response(aggregates: Iterable[SpcAggregate]) -> SpcDriftFeatures:
    """``{"features": {feature: {"created_at": [...], "values": [...]}}}``: bucket means, newest first."""
    stamps = _Stamps()
    features: dict[str, SpcFeatureSeries] = {}
    for feature, bucket, _count, mean in _newest_first(aggregates):
        series = features.get(feature)
        if series is None:
            series = features[feature] = SpcFeatureSeries(created_at=[], values=[])
        if math.isfinite(mean):
            series.created_at.append(stamps[bucket])
            series.values.append(mean)
    return SpcDriftFeatures(features=features)


def custom_response(aggregates: Iterable[CustomAggregate]) -> BinnedCustomMetrics:
    """``{"metrics": {m: {"metric", "created_at", "stats": [{"avg", "lower_bound", "upper_bound"}]}}}``.

    Bounds are ``avg ∓`` the sample standard deviation of the bucket (0 for a single value).
    """
    stamps = _Stamps()
    metrics: dict[str, CustomMetricSeries] = {}
    for metric, bucket, _count, mean, variance in _newest_first(aggregates):
        series = metrics.get(metric)
        if series is None:
            series = metrics[metric] = CustomMetricSeries(metric=metric, created_at=[], stats=[])
        spread = math.sqrt(variance) if variance > 0.0 else 0.0
        lower, upper = mean - spread, mean + spread
        if math.isfinite(lower) and math.isfinite(upper):
            series.created_at.append(stamps[bucket])
            series.stats.append(CustomStats(avg=mean, lower_bound=lower, upper_bound=upper))
    return BinnedCustomMetrics(metrics=metrics)


def psi_response(
    aggregates: Iterable[PsiAggregate],
    profile_bins: Mapping[str, Mapping[int, float]],
    min_bucket_total: int = PSI_MIN_BUCKET_TOTAL,
) -> BinnedPsiFeatureMetrics:
    """``{"features": {f: {"created_at", "psi", "overall_psi", "bins": {"<bin id>": proportion}}}}``.

    `profile_bins` maps each profile feature to ``{bin_id: proportion}`` in the profile's bin order.
    """
    stamps = _Stamps()
    # feature -> bucket -> bin -> count, and feature -> bin -> count over the whole window
    per_bucket: dict[str, dict[datetime, dict[int, int]]] = {}
    overall: dict[str, dict[int, int]] = {}
    for feature, bucket, bin_id, count in aggregates:
        if feature not in profile_bins:
            continue
        bins = per_bucket.setdefault(feature, {}).setdefault(bucket, {})
        bins[bin_id] = bins.get(bin_id, 0) + count
        totals = overall.setdefault(feature, {})
        totals[bin_id] = totals.get(bin_id, 0) + count

    features: dict[str, PsiFeatureSeries] = {}
    for feature in sorted(per_bucket):
        expected = profile_bins[feature]
        created_at: list[str] = []
        psi: list[float] = []
        for bucket in sorted(per_bucket[feature], reverse=True):
            counts = per_bucket[feature][bucket]
            total = sum(counts.values())
            if total <= min_bucket_total:
                continue
            value = compute_psi(expected, {bin_id: count / total for bin_id, count in counts.items()})
            if math.isfinite(value):
                created_at.append(stamps[bucket])
                psi.append(value)
        if not psi:
            continue
        window_counts = overall[feature]
        window_total = sum(window_counts.values())
        proportions = {bin_id: count / window_total for bin_id, count in sorted(window_counts.items())}
        overall_psi = compute_psi(expected, proportions)
        if not math.isfinite(overall_psi):  # pragma: no cover - finite proportions give a finite PSI
            continue
        features[feature] = PsiFeatureSeries(
            created_at=created_at,
            psi=psi,
            overall_psi=overall_psi,
            bins={str(bin_id): proportion for bin_id, proportion in proportions.items()},
        )
    return BinnedPsiFeatureMetrics(features=features)


def observability_response(aggregates: Iterable[ObservabilityAggregate]) -> ObservabilityMetrics:
    """``{"status": "success", "data": [{"route_name", "created_at", "p5" ... "status_counts"}]}``, newest first.

    Per route and bucket: mean percentiles and error latency, summed request and error counts, status-code counts
    summed per code.
    """
    stamps = _Stamps()
    routes: dict[str, RouteSeries] = {}
    for row in _newest_first(aggregates):
        route, bucket, p5, p25, p50, p95, p99, requests, errors, latency, codes = row
        if not all(math.isfinite(x) for x in (p5, p25, p50, p95, p99, latency)):
            continue
        series = routes.get(route)
        if series is None:
            series = routes[route] = RouteSeries(route, [], [], [], [], [], [], [], [], [], [])
        series.created_at.append(stamps[bucket])
        series.p5.append(p5)
        series.p25.append(p25)
        series.p50.append(p50)
        series.p95.append(p95)
        series.p99.append(p99)
        series.total_request_count.append(requests)
        series.total_error_count.append(errors)
        series.error_latency.append(latency)
        series.status_counts.append(orjson.loads(codes) if isinstance(codes, str) else dict(codes))
    return ObservabilityMetrics(status="success", data=list(routes.values()))
