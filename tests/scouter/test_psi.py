"""PSI index, quantile routines, thresholds, minimum sample rule and alerting (spec §6.4, §5.4, §2.10)."""

import math

import numpy as np
import pytest
from scipy import stats

from scouter.drift import (
    ChiSquareThreshold,
    FixedThreshold,
    NormalThreshold,
    ObservedDistribution,
    PsiFeatureAlert,
    chi2_ppf,
    compute_psi,
    has_min_sample,
    normal_ppf,
    proportions_from_counts,
    psi_alert_maps,
    psi_alerts,
    psi_threshold,
    rust_float_str,
)

DECILES = {i: 0.1 for i in range(1, 11)}
ALPHAS = np.concatenate([np.geomspace(1e-6, 0.5, 25), [0.01, 0.05, 0.1, 0.25]])


def _psi_by_hand(p: list[float], q: list[float]) -> float:
    eps = 1e-10
    return sum(((a + eps) - (b + eps)) * math.log((a + eps) / (b + eps)) for a, b in zip(p, q, strict=True))


def test_identical_distributions_have_zero_psi() -> None:
    """PSI of the profile against itself is 0."""
    assert 0.0 == compute_psi(DECILES, dict(DECILES))


def test_psi_matches_formula() -> None:
    """PSI equals Σ ((p+ε) - (q+ε))·ln((p+ε)/(q+ε)) over the profile's bins."""
    expected_props = {1: 0.2, 2: 0.3, 3: 0.5}
    observed = {1: 0.1, 2: 0.4, 3: 0.5}
    assert _psi_by_hand([0.2, 0.3, 0.5], [0.1, 0.4, 0.5]) == pytest.approx(compute_psi(expected_props, observed))


def test_missing_bins_count_as_zero_and_extra_bins_are_ignored() -> None:
    """A profile bin absent from the data has proportion 0 (ε keeps the log finite); unknown bins are ignored."""
    expected_props = {1: 0.5, 2: 0.5}
    assert _psi_by_hand([0.5, 0.5], [1.0, 0.0]) == pytest.approx(compute_psi(expected_props, {1: 1.0, 99: 0.3}))


def test_psi_of_skewed_deciles() -> None:
    """All data in one decile gives a large, finite PSI."""
    psi = compute_psi(DECILES, {1: 1.0})
    assert _psi_by_hand([0.1] * 10, [1.0] + [0.0] * 9) == pytest.approx(psi, rel=1e-12)


def test_proportions_from_counts() -> None:
    """Counts become proportions of their total; no counts give an empty map."""
    assert ({1: 0.25, 2: 0.75}, {}) == (proportions_from_counts({1: 10, 2: 30}), proportions_from_counts({}))


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1.0, "1"), (0.5, "0.5"), (100.0, "100"), (-2.0, "-2"), (0.1 + 0.2, "0.30000000000000004"),
        (1e-10, "0.0000000001"), (2.5e-5, "0.000025"), (1e16, "10000000000000000"),
        (1e21, "1000000000000000000000"), (123456.789, "123456.789"), (-0.0, "-0"), (0.0, "0"),
        (math.nan, "NaN"), (math.inf, "inf"), (-math.inf, "-inf"), (0.04229744401155111, "0.04229744401155111"),
    ],
)  # fmt: skip
def test_rust_float_str(value: float, text: str) -> None:
    """Floats format like Rust's f64 Display: shortest digits, positional, no trailing `.0`."""
    assert text == rust_float_str(value)


def test_normal_ppf_matches_scipy() -> None:
    """normal_ppf agrees with scipy.stats.norm.ppf to 1e-12 relative across both tails and the centre."""
    ps = np.concatenate([np.geomspace(1e-300, 0.49, 400), [0.3, 0.4, 0.45, 0.499], 1.0 - ALPHAS[ALPHAS < 0.5]])
    worst = max(abs(normal_ppf(float(p)) - stats.norm.ppf(p)) / abs(stats.norm.ppf(p)) for p in ps)
    assert worst < 1e-12


def test_normal_ppf_edges() -> None:
    """The quantile is 0 at one half and ±inf at the ends; outside [0, 1] is an error."""
    assert (0.0, -math.inf, math.inf) == (normal_ppf(0.5), normal_ppf(0.0), normal_ppf(1.0))
    with pytest.raises(ValueError, match="probability"):
        normal_ppf(1.5)


def test_chi2_ppf_matches_scipy_grid() -> None:
    """chi2_ppf(1 - α, df) agrees with scipy to 1e-9 relative for df 1..1000 and α in [1e-6, 0.5]."""
    dfs = np.arange(1, 1001)
    reference = stats.chi2.ppf(1.0 - ALPHAS[:, None], dfs[None, :])
    ours = np.array([[chi2_ppf(float(1.0 - a), float(df)) for df in dfs] for a in ALPHAS])
    assert float(np.max(np.abs(ours - reference) / reference)) < 1e-9


def test_chi2_ppf_lower_tail() -> None:
    """The lower tail (q < 0.5) is accurate too, including tiny q with one degree of freedom."""
    cases = [(q, df) for q in (1e-6, 1e-3, 0.1, 0.4) for df in (1, 2, 9, 100, 1000)]
    worst = max(abs(chi2_ppf(q, df) - stats.chi2.ppf(q, df)) / stats.chi2.ppf(q, df) for q, df in cases)
    assert worst < 1e-9


def test_chi2_ppf_edges() -> None:
    """q = 0 gives 0, q = 1 gives inf; invalid q or df is an error."""
    assert (0.0, math.inf) == (chi2_ppf(0.0, 3), chi2_ppf(1.0, 3))
    with pytest.raises(ValueError, match="degrees of freedom"):
        chi2_ppf(0.5, 0)
    with pytest.raises(ValueError, match="probability"):
        chi2_ppf(-0.1, 3)


def test_reference_thresholds() -> None:
    """§6.4 reference values: ChiSquare B=10 M=400 ≈ 0.0423, B=20 M=1000 ≈ 0.0301; Normal B=10 M=400 ≈ 0.0400."""
    actual = (
        psi_threshold(ChiSquareThreshold(0.05), 400, 10),
        psi_threshold(ChiSquareThreshold(0.05), 1000, 20),
        psi_threshold(NormalThreshold(0.05), 400, 10),
    )
    assert pytest.approx((0.0423, 0.0301, 0.0400), abs=6e-5) == actual


def test_thresholds_match_scipy_formulas() -> None:
    """ChiSquare and Normal thresholds equal their scipy-computed formulas."""
    m, b, alpha = 1234, 7, 0.01
    expected = (
        stats.chi2.ppf(1 - alpha, b - 1) / m,
        (b - 1) / m + stats.norm.ppf(1 - alpha) * math.sqrt(2 * (b - 1)) / m,
        0.3,
    )
    actual = (
        psi_threshold(ChiSquareThreshold(alpha), m, b),
        psi_threshold(NormalThreshold(alpha), m, b),
        psi_threshold(FixedThreshold(0.3), m, b),
    )
    assert expected == pytest.approx(actual, rel=1e-12)


def test_statistical_threshold_needs_two_bins() -> None:
    """A chi-square threshold over a single bin (df = 0) is an error rather than a panic."""
    with pytest.raises(ValueError, match="2 bins"):
        psi_threshold(ChiSquareThreshold(), 500, 1)


def test_minimum_sample_rule() -> None:
    """A feature qualifies only with more than 10 samples per bin: 100 over 10 bins no, 101 yes."""
    assert (False, True) == (has_min_sample(100, 10), has_min_sample(101, 10))


def test_psi_alerts_fire_strictly_above_threshold() -> None:
    """psi == threshold does not alert; psi > threshold does."""
    observed = ObservedDistribution(sample_size=500, proportions={1: 0.5, 2: 0.0, 3: 0.2, 4: 0.3})
    profile = {"f": {1: 0.25, 2: 0.25, 3: 0.25, 4: 0.25}}
    psi = compute_psi(profile["f"], observed.proportions)
    at = psi_alerts(profile, {"f": observed}, FixedThreshold(psi), ["f"])
    below = psi_alerts(profile, {"f": observed}, FixedThreshold(math.nextafter(psi, 0.0)), ["f"])
    assert ([], [PsiFeatureAlert("f", psi, math.nextafter(psi, 0.0), 500, 4)]) == (at, below)


def test_psi_alerts_skewed_feature_with_chi_square() -> None:
    """A skewed feature alerts under the default chi-square threshold; an unchanged one does not."""
    distributions = {
        "skewed": ObservedDistribution(1000, {1: 0.5, 2: 0.5}),
        "steady": ObservedDistribution(1000, dict(DECILES)),
    }
    alerts = psi_alerts(
        {"skewed": DECILES, "steady": DECILES}, distributions, ChiSquareThreshold(), ["steady", "skewed"]
    )
    expected_threshold = stats.chi2.ppf(0.95, 9) / 1000
    assert (["skewed"], pytest.approx(expected_threshold, rel=1e-12)) == (
        [a.feature for a in alerts],
        alerts[0].threshold,
    )


def test_psi_alerts_skip_unusable_features() -> None:
    """Too few samples, a feature missing from profile or data, and an empty monitor list give no alerts."""
    skewed = ObservedDistribution(100, {1: 1.0})  # 100 is not > 10 x 10
    profile = {"few": DECILES, "nodata": DECILES}
    alerts = psi_alerts(
        profile, {"few": skewed, "noprofile": skewed}, FixedThreshold(0.0), ["few", "nodata", "noprofile"]
    )
    none_monitored = psi_alerts(profile, {"few": ObservedDistribution(1000, {1: 1.0})}, FixedThreshold(0.0), [])
    assert ([], []) == (alerts, none_monitored)


def test_psi_alert_maps_use_rust_float_strings() -> None:
    """Alert maps hold entity_name, psi and threshold as strings in Rust Display form."""
    maps = psi_alert_maps([PsiFeatureAlert("feature_0", 1.0, 0.0423), PsiFeatureAlert("feature_1", 0.51, 1e-5)])
    expected = [
        {"entity_name": "feature_0", "psi": "1", "threshold": "0.0423"},
        {"entity_name": "feature_1", "psi": "0.51", "threshold": "0.00001"},
    ]
    assert expected == maps
