"""One scheduled drift check, minus the I/O (spec §6.2-§6.5): what a check reads, how its aggregates become alert
maps, and when it runs next.

The poller (``actors/poller.py``) claims a profile, reads the aggregates the functions below ask for, calls them, and
stores what they return. Everything here is pure.

Retry policy (spec §12 #10): a failed check is rescheduled, never left ``processing``. The n-th failure in a row is
retried ``min(10 s · 2^(n-1), 1 h)`` later, but never later than the schedule's own next firing, so a frequently
scheduled profile keeps its cadence and a daily one is retried within the hour. ``previous_run`` does not move on a
failure: the retry covers the same data.

Windows: successive checks of a profile tile time (`CheckWindow`; the SQL and why it is commit-aware are in
``scouter/sql/_poller.py``). ``previous_run`` is the bound the last successful check read up to.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping

import attrs
import numpy as np
import numpy.typing as npt

from scouter.drift import (
    ChiSquareThreshold,
    CustomCondition,
    FixedThreshold,
    NormalThreshold,
    ObservedDistribution,
    PsiThreshold,
    custom_alert_maps,
    custom_alerts,
    evaluate_spc,
    psi_alert_maps,
    psi_alerts,
    spc_alert_maps,
)
from scouter.profiles import CustomDriftProfile, DriftProfile, PsiDriftProfile, SpcDriftProfile
from scouter.profiles import PsiThreshold as ProfileThreshold
from scouter.schedule import ScheduleError, next_fire
from scouter.spc_summaries import profile_limits

__all__ = [
    "RETRY_BASE",
    "RETRY_MAX",
    "CheckWindow",
    "Findings",
    "check_features",
    "custom_findings",
    "cut_columns",
    "next_after_failure",
    "next_after_success",
    "psi_distributions",
    "psi_findings",
    "psi_threshold_of",
    "retry_delay",
    "spc_findings",
]

RETRY_BASE = dt.timedelta(seconds=10)
RETRY_MAX = dt.timedelta(hours=1)


@attrs.frozen
class CheckWindow:
    """What one check judges: the records with ``created_at`` in ``[start, end)`` (``start`` None: everything
    before ``end``, a profile never checked and never registered through the routes), plus the records before
    ``start`` committed after the previous check read (those its snapshot, ``after``, did not show; None: none).

    ``end`` and ``snapshot`` (the one this check reads in, as PostgreSQL's text form) are stored with the reschedule
    and become the next window's ``start`` and ``after``."""

    start: dt.datetime | None
    end: dt.datetime
    snapshot: str
    after: str | None = None


@attrs.frozen
class Findings:
    """What one check found: the `drift_alert` maps to store, in order (empty: no drift)."""

    drift_type: str
    alerts: tuple[dict[str, str], ...] = ()
    #: Points, bins or metrics the check looked at (for logs and metrics).
    observed: int = 0


def check_features(profile: DriftProfile) -> tuple[str, ...]:
    """The names the aggregate query is restricted to: SPC and PSI `features_to_monitor` (SPC: empty means every
    feature of the entity), custom: the profile's metrics."""
    return tuple(profile.features_to_monitor)


# --------------------------------------------------------------------------------------------------- SPC


def cut_columns(columns: Mapping[str, npt.ArrayLike]) -> dict[str, npt.NDArray[np.float64]]:
    """`cut_to_shortest` for arrays: features alphabetical, each column (newest first) cut to the shortest length,
    keeping the newest values; no copies of the Python floats."""
    arrays = {feature: np.asarray(values, dtype=np.float64) for feature, values in columns.items()}
    if not arrays:
        return {}
    n = min(array.shape[0] for array in arrays.values())
    return {feature: arrays[feature][:n] for feature in sorted(arrays)}


def spc_findings(profile: SpcDriftProfile, columns: Mapping[str, npt.ArrayLike]) -> Findings:
    """SPC check (§6.3): `columns` maps feature → values since the previous run, newest first. Columns are cut to
    the shortest; a feature without limits in the profile has all-zero zone codes, so it never alerts. A bad rule
    string raises `SpcRuleError` (a failed check)."""
    matrix = cut_columns(columns)
    limits = profile_limits(profile)
    points = sum(column.shape[0] for column in matrix.values())
    if points == 0:
        evaluate_spc({}, limits, profile.rule, profile.zones_to_monitor)  # still reject a bad rule
        return Findings("Spc", (), 0)
    found = evaluate_spc(matrix, limits, profile.rule, profile.zones_to_monitor)
    return Findings("Spc", tuple(spc_alert_maps(found)), points)


# --------------------------------------------------------------------------------------------------- PSI


def psi_threshold_of(threshold: ProfileThreshold) -> PsiThreshold:
    """The drift maths' threshold value for a profile's ``{"ChiSquare"|"Normal": {alpha}}`` / ``{"Fixed": ...}``."""
    if threshold.kind == "ChiSquare":
        return ChiSquareThreshold(threshold.value)
    if threshold.kind == "Normal":
        return NormalThreshold(threshold.value)
    return FixedThreshold(threshold.value)


def psi_distributions(rows: Iterable[tuple[str, int, int, float | None]]) -> dict[str, ObservedDistribution]:
    """Observed distributions from ``(feature, bin_id, sample_size, proportion)`` rows (one per bin with data)."""
    sizes: dict[str, int] = {}
    proportions: dict[str, dict[int, float]] = {}
    for feature, bin_id, sample_size, proportion in rows:
        sizes[feature] = int(sample_size)
        proportions.setdefault(feature, {})[int(bin_id)] = 0.0 if proportion is None else float(proportion)
    return {feature: ObservedDistribution(sizes[feature], proportions[feature]) for feature in sizes}


def psi_findings(profile: PsiDriftProfile, distributions: Mapping[str, ObservedDistribution]) -> Findings:
    """PSI check (§6.4): monitored features with enough samples whose PSI exceeds the threshold."""
    bins = {feature: {b.id: b.proportion for b in f.bins} for feature, f in profile.features.items()}
    found = psi_alerts(bins, distributions, psi_threshold_of(profile.threshold), profile.features_to_monitor)
    observed = sum(d.sample_size for d in distributions.values())
    return Findings("Psi", tuple(psi_alert_maps(found)), observed)


# --------------------------------------------------------------------------------------------------- custom


def custom_findings(profile: CustomDriftProfile, observed: Mapping[str, float]) -> Findings:
    """Custom check (§6.5): `observed` maps metric → AVG(value) since the previous run. A profile without
    `alert_conditions` (upstream panics) or a metric without one never alerts."""
    conditions = {
        metric: CustomCondition(threshold, value) for metric, (threshold, value) in profile.alert_conditions.items()
    }
    found = custom_alerts(profile.baselines, observed, conditions)
    return Findings("Custom", tuple(custom_alert_maps(found)), len(observed))


# --------------------------------------------------------------------------------------------------- scheduling


def next_after_success(schedule: str, now: dt.datetime) -> tuple[dt.datetime, str | None]:
    """The next run after a completed check: the schedule's first firing after `now`.

    A schedule that is invalid or never fires again cannot be followed: the profile is then looked at again after
    `RETRY_MAX`, and the second value says why (recorded as the profile's ``last_error``).
    """
    try:
        return next_fire(schedule, now), None
    except ScheduleError as exc:
        return now + RETRY_MAX, str(exc)


def retry_delay(failures: int) -> dt.timedelta:
    """Back-off before retrying the `failures`-th failed check in a row (1, 2, ...): 10 s, 20 s, 40 s ... 1 h."""
    exponent = max(failures, 1) - 1
    if exponent >= 20:  # 2^20 · 10 s is far past the cap; avoid huge timedeltas
        return RETRY_MAX
    return min(RETRY_BASE * (2**exponent), RETRY_MAX)


def next_after_failure(schedule: str, now: dt.datetime, failures: int, base: dt.timedelta = RETRY_BASE) -> dt.datetime:
    """When to retry after the `failures`-th failure in a row: after the back-off, or at the schedule's next firing
    when that comes sooner. `base` scales the back-off (tests shorten it)."""
    delay = retry_delay(failures) * (base / RETRY_BASE)
    retry = now + min(delay, RETRY_MAX)
    try:
        return min(retry, next_fire(schedule, now))
    except ScheduleError:
        return retry
