"""One drift check without I/O: aggregates to alert maps, and when a profile runs next (scouter.checks)."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pytest
from scipy import stats

from scouter.checks import (
    RETRY_MAX,
    custom_findings,
    cut_columns,
    next_after_failure,
    next_after_success,
    psi_distributions,
    psi_findings,
    psi_threshold_of,
    retry_delay,
    spc_findings,
)
from scouter.drift import (
    ChiSquareThreshold,
    FixedThreshold,
    NormalThreshold,
    ObservedDistribution,
    SpcRuleError,
    cut_to_shortest,
)
from scouter.profiles import CustomDriftProfile, PsiDriftProfile, PsiThreshold, SpcDriftProfile, profile_from_data
from tests.drift_profiles import custom_profile, psi_profile, spc_profile

NOW = dt.datetime(2026, 11, 22, 17, 6, 41, 250_000, tzinfo=dt.UTC)


def _spc(**kwargs: object) -> SpcDriftProfile:
    profile = profile_from_data("Spc", spc_profile({"a": (0.0, 1.0), "b": (10.0, 2.0)}, **kwargs))  # type: ignore[arg-type]
    assert isinstance(profile, SpcDriftProfile)
    return profile


def _psi(**kwargs: object) -> PsiDriftProfile:
    profile = profile_from_data("Psi", psi_profile({"f": [0.1] * 10, "g": [0.25] * 4}, **kwargs))  # type: ignore[arg-type]
    assert isinstance(profile, PsiDriftProfile)
    return profile


# --- SPC --------------------------------------------------------------------------------------------------------


def test_cut_columns_matches_cut_to_shortest() -> None:
    """Columns come back alphabetical, cut to the shortest, newest (first) values kept, like cut_to_shortest."""
    columns = {"b": [5.0, 4.0, 3.0], "a": [1.0, 2.0], "c": [9.0, 8.0, 7.0, 6.0]}
    cut = cut_columns(columns)
    assert cut_to_shortest(columns) == {feature: column.tolist() for feature, column in cut.items()}
    assert ["a", "b", "c"] == list(cut)


def test_cut_columns_empty() -> None:
    """No features, no matrix; one empty column empties them all."""
    assert {} == cut_columns({})
    assert {"a": [], "b": []} == {f: c.tolist() for f, c in cut_columns({"a": [], "b": [1.0]}).items()}


def test_spc_zone_four_point_is_out_of_bounds() -> None:
    """One point past a's three-sigma limit (newest) gives exactly one Zone 4 'Out of bounds' alert for a."""
    findings = spc_findings(_spc(), {"a": [3.5, 0.0, 0.0, 0.0], "b": [10.0, 10.0, 10.0, 10.0]})
    assert ({"entity_name": "a", "kind": "Out of bounds", "zone": "Zone 4"},) == findings.alerts
    assert ("Spc", 8) == (findings.drift_type, findings.observed)


def test_spc_shortest_column_hides_older_points() -> None:
    """The matrix keeps only as many newest points as the shortest feature has: an older excursion is cut."""
    findings = spc_findings(_spc(), {"a": [0.0, 0.0, 9.0], "b": [10.0, 10.0]})
    assert () == findings.alerts


def test_spc_values_at_center_and_no_data_raise_nothing() -> None:
    """Values exactly at the center (zone code 0) and empty windows give no alerts."""
    assert () == spc_findings(_spc(), {"a": [0.0] * 20, "b": [10.0] * 20}).alerts
    assert () == spc_findings(_spc(), {}).alerts
    assert () == spc_findings(_spc(), {"a": [], "b": []}).alerts


def test_spc_feature_without_limits_never_alerts() -> None:
    """Data for a feature the profile has no limits for is all zone 0."""
    assert () == spc_findings(_spc(), {"zzz": [1e9, -1e9, 1e9]}).alerts


def test_spc_unmonitored_zone_is_filtered_but_trend_is_not() -> None:
    """zones_to_monitor=[Zone1] drops the zone 3 and 4 alerts; a 7-point trend is kept regardless."""
    rising = [3.5, 2.5, 1.5, 0.5, -0.5, -1.5, -2.5]  # codes 4 3 2 1 -1 -2 -3: six strict decreases
    findings = spc_findings(_spc(zones=("Zone1",)), {"a": rising, "b": [10.0] * 7})
    assert ({"entity_name": "a", "kind": "Trend", "zone": "NA"},) == findings.alerts
    everything = spc_findings(_spc(), {"a": rising, "b": [10.0] * 7})
    expected = [("Consecutive", "Zone 3"), ("Out of bounds", "Zone 4"), ("Trend", "NA")]  # zone 3: rule "2" (4, 3)
    assert expected == [(a["kind"], a["zone"]) for a in everything.alerts]


def test_spc_bad_rule_fails_even_without_data() -> None:
    """A rule string that is not 8 integers fails the check (recorded and retried), data or not."""
    with pytest.raises(SpcRuleError):
        spc_findings(_spc(rule="8 16 4"), {})


# --- PSI --------------------------------------------------------------------------------------------------------


def test_psi_distributions_from_rows() -> None:
    """SQL rows (feature, bin, sample size, proportion) become one observed distribution per feature."""
    rows = [("f", 1, 400, 0.75), ("f", 2, 400, 0.25), ("g", 3, 0, None)]
    assert {
        "f": ObservedDistribution(400, {1: 0.75, 2: 0.25}),
        "g": ObservedDistribution(0, {3: 0.0}),
    } == psi_distributions(rows)


def test_psi_threshold_of_profile_kinds() -> None:
    """The profile's threshold kinds map onto the drift maths' threshold values."""
    assert ChiSquareThreshold(0.05) == psi_threshold_of(PsiThreshold("ChiSquare", 0.05))
    assert NormalThreshold(0.01) == psi_threshold_of(PsiThreshold("Normal", 0.01))
    assert FixedThreshold(0.2) == psi_threshold_of(PsiThreshold("Fixed", 0.2))


def test_psi_skewed_bins_alert_with_independent_numbers() -> None:
    """All samples in bin 1 of a uniform 10-bin feature: PSI and chi-square threshold match numpy/scipy."""
    observed = {1: 1.0}
    findings = psi_findings(_psi(), {"f": ObservedDistribution(400, observed)})
    p = np.full(10, 0.1) + 1e-10
    q = np.array([1.0] + [0.0] * 9) + 1e-10
    expected_psi = float(np.sum((p - q) * np.log(p / q)))
    expected_threshold = stats.chi2.ppf(0.95, 9) / 400
    (alert,) = findings.alerts
    assert "f" == alert["entity_name"]
    assert math.isclose(expected_psi, float(alert["psi"]), rel_tol=1e-12)
    assert math.isclose(expected_threshold, float(alert["threshold"]), rel_tol=1e-9)


def test_psi_matching_distribution_and_small_samples_do_not_alert() -> None:
    """The profile's own distribution does not alert; nor does a skewed one with sample size <= 10 x bins."""
    uniform = {b: 0.1 for b in range(1, 11)}
    assert () == psi_findings(_psi(), {"f": ObservedDistribution(400, uniform)}).alerts
    assert () == psi_findings(_psi(), {"f": ObservedDistribution(100, {1: 1.0})}).alerts
    assert 1 == len(psi_findings(_psi(), {"f": ObservedDistribution(101, {1: 1.0})}).alerts)


def test_psi_zero_count_bins_and_unmonitored_features() -> None:
    """Missing bins count as 0; an unmonitored feature and an empty monitor list never alert."""
    skewed = {"f": ObservedDistribution(400, {1: 0.5, 2: 0.5}), "g": ObservedDistribution(400, {1: 1.0})}
    assert ["f"] == [a["entity_name"] for a in psi_findings(_psi(features_to_monitor=["f"]), skewed).alerts]
    assert () == psi_findings(_psi(features_to_monitor=[]), skewed).alerts


# --- custom -----------------------------------------------------------------------------------------------------


def _custom(conditions: dict[str, tuple[str, float | None]] | None) -> CustomDriftProfile:
    profile = profile_from_data("Custom", custom_profile({"mae": 12.0, "accuracy": 0.76}, conditions))
    assert isinstance(profile, CustomDriftProfile)
    return profile


def test_custom_above_with_margin_alerts() -> None:
    """mae 12 → 14.5 with Above 2 alerts (spec example); accuracy within its Below margin does not."""
    profile = _custom({"mae": ("Above", 2.0), "accuracy": ("Below", 0.1)})
    findings = custom_findings(profile, {"mae": 14.5, "accuracy": 0.7})
    assert (
        {
            "entity_name": "mae",
            "training_metric_value": "12",
            "observed_metric_value": "14.5",
            "alert_threshold_value": "2",
            "alert_threshold": "Above",
        },
    ) == findings.alerts


def test_custom_below_without_margin_and_missing_conditions() -> None:
    """accuracy 0.76 → 0.67 Below without margin alerts (spec example); no alert_conditions: no alerts."""
    findings = custom_findings(_custom({"accuracy": ("Below", None)}), {"accuracy": 0.67, "mae": 99.0})
    assert [("accuracy", "None")] == [(a["entity_name"], a["alert_threshold_value"]) for a in findings.alerts]
    assert () == custom_findings(_custom(None), {"accuracy": 0.1}).alerts
    assert () == custom_findings(_custom({"mae": ("Above", 2.0)}), {}).alerts


# --- scheduling -------------------------------------------------------------------------------------------------


def test_next_after_success_follows_seconds_first_cron() -> None:
    """'*/5 * * * * *' fires at the next multiple of 5 s; '0 0 0 * * *' at the next 00:00:00 UTC."""
    assert (dt.datetime(2026, 11, 22, 17, 6, 45, tzinfo=dt.UTC), None) == next_after_success("*/5 * * * * *", NOW)
    assert (dt.datetime(2026, 11, 23, tzinfo=dt.UTC), None) == next_after_success("0 0 0 * * *", NOW)


def test_next_after_success_with_a_broken_schedule_parks_an_hour() -> None:
    """A schedule that cannot be followed reschedules an hour later and says why."""
    next_run, note = next_after_success("every day", NOW)
    assert NOW + RETRY_MAX == next_run
    assert note is not None
    assert "every day" in note


def test_retry_delay_doubles_up_to_an_hour() -> None:
    """10 s, 20 s, 40 s ... capped at 1 h, also for absurd failure counts."""
    assert [10, 20, 40, 80, 160] == [retry_delay(n).total_seconds() for n in range(1, 6)]
    assert 3600 == retry_delay(10).total_seconds()
    assert 3600 == retry_delay(10_000).total_seconds()


def test_next_after_failure_is_capped_by_the_schedule() -> None:
    """A daily profile retries after the back-off; a 5-second one at its next firing, whichever comes first."""
    assert NOW + dt.timedelta(seconds=40) == next_after_failure("0 0 0 * * *", NOW, 3)
    assert dt.datetime(2026, 11, 22, 17, 6, 45, tzinfo=dt.UTC) == next_after_failure("*/5 * * * * *", NOW, 3)
    late = dt.datetime(2026, 11, 22, 23, 59, 50, tzinfo=dt.UTC)
    assert dt.datetime(2026, 11, 23, tzinfo=dt.UTC) == next_after_failure("0 0 0 * * *", late, 5)


def test_next_after_failure_with_a_broken_schedule_and_a_short_base() -> None:
    """Without a usable schedule the back-off alone decides; `base` scales it."""
    assert NOW + dt.timedelta(seconds=80) == next_after_failure("nope", NOW, 4)
    assert NOW + dt.timedelta(seconds=0.8) == next_after_failure("nope", NOW, 4, dt.timedelta(seconds=0.1))
