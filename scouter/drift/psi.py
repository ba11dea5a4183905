"""PSI drift: the index, its alert thresholds and the scheduled alert rule (spec §6.4, §5.4, §2.10).

scipy is not a runtime dependency, so the two quantiles the thresholds need are computed here:

* `normal_ppf`: Acklam's rational approximation (relative error < 1.2e-9) polished by one Halley step on
  `math.erf`/`math.erfc`, which brings it to a few ulp.
* `chi2_ppf`: Wilson-Hilferty start, then Newton steps on the log of the regularized incomplete gamma function
  (series below a + 1, Lentz continued fraction above), safeguarded by a bracket. Working on the tail that is
  being solved for (Q for q >= 0.5) keeps full relative precision for small alpha.

Both agree with scipy.stats to better than 1e-12 relative over df 1..1000, alpha 1e-6..0.5 (see the tests).
"""

from __future__ import annotations

import decimal
import math
from collections.abc import Iterable, Mapping

import attrs

__all__ = [
    "EPSILON",
    "MIN_SAMPLES_PER_BIN",
    "ChiSquareThreshold",
    "FixedThreshold",
    "NormalThreshold",
    "ObservedDistribution",
    "PsiFeatureAlert",
    "PsiThreshold",
    "chi2_ppf",
    "compute_psi",
    "has_min_sample",
    "normal_ppf",
    "proportions_from_counts",
    "psi_alert_maps",
    "psi_alerts",
    "psi_threshold",
    "rust_float_str",
]

EPSILON = 1e-10
MIN_SAMPLES_PER_BIN = 10  # Yurdakul (2018): keep a feature only if sample_size > 10 x bins


# --------------------------------------------------------------------------------------------------- formatting


def rust_float_str(x: float) -> str:
    """Format like Rust's `f64` `Display` (`to_string`), which upstream uses for alert-map values.

    Shortest round-trip digits (the same digits as Python's `repr`), but always positional, never an exponent, and
    no `.0` on integral values: `1.0` → `"1"`, `0.5` → `"0.5"`, `1e-10` → `"0.0000000001"`, `1e21` →
    `"1000000000000000000000"`, `-0.0` → `"-0"`, NaN → `"NaN"`, infinities → `"inf"` / `"-inf"`.
    """
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    text = format(decimal.Decimal(repr(float(x))), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


# --------------------------------------------------------------------------------------------------- PSI itself


def compute_psi(expected: Mapping[int, float], observed: Mapping[int, float]) -> float:
    """PSI of observed proportions against the profile's, over the profile's bins (in the profile's order).

    `expected` maps bin id → profile proportion; a bin missing from `observed` counts as 0 and observed bins the
    profile lacks are ignored. ε = 1e-10 is added to both sides: it cancels in the difference, not in the log.
    Summed left to right like upstream's iterator `sum` (Python's `sum` of floats is compensated in 3.12+).
    """
    total = 0.0
    for bin_id, p in expected.items():
        p_adj = p + EPSILON
        q_adj = observed.get(bin_id, 0.0) + EPSILON
        total += (p_adj - q_adj) * math.log(p_adj / q_adj)
    return total


def proportions_from_counts(counts: Mapping[int, float]) -> dict[int, float]:
    """Bin proportions `count / total` (used for per-bucket and true overall proportions, §2.10); {} if empty."""
    total = 0.0
    for count in counts.values():
        total += count
    if total <= 0:
        return {}
    return {bin_id: count / total for bin_id, count in counts.items()}


def has_min_sample(sample_size: int, bin_count: int) -> bool:
    """Minimum sample rule of §5.4: a feature qualifies only if sample_size > 10 x bins."""
    return sample_size > MIN_SAMPLES_PER_BIN * bin_count


# --------------------------------------------------------------------------------------------------- quantiles

_SQRT2 = math.sqrt(2.0)
_SQRT2PI = math.sqrt(2.0 * math.pi)

# Acklam's coefficients (https://web.archive.org/web/2015/home.online.no/~pjacklam/notes/invnorm/)
_A = (-3.969683028665376e01, 2.209460984245205e02, -2.759285104469687e02,
      1.383577518672690e02, -3.066479806614716e01, 2.506628277459239e00)  # fmt: skip
_B = (-5.447609879822406e01, 1.615858368580409e02, -1.556989798598866e02,
      6.680131188771972e01, -1.328068155288572e01)  # fmt: skip
_C = (-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e00,
      -2.549671667518730e00, 4.374664141464968e00, 2.938163982698783e00)  # fmt: skip
_D = (7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e00, 3.754408661907416e00)
_P_LOW = 0.02425


def _normal_ppf_lower(p: float) -> float:
    """Quantile for 0 < p <= 0.5 (so the result is <= 0)."""
    if p < _P_LOW:
        t = math.sqrt(-2.0 * math.log(p))
        x = (((((_C[0] * t + _C[1]) * t + _C[2]) * t + _C[3]) * t + _C[4]) * t + _C[5]) / (
            (((_D[0] * t + _D[1]) * t + _D[2]) * t + _D[3]) * t + 1.0
        )
        # residual on the tail itself: erfc keeps full relative precision for tiny p
        err = 0.5 * math.erfc(-x / _SQRT2) - p
    else:
        u = p - 0.5  # exact (Sterbenz)
        r = u * u
        x = (
            (((((_A[0] * r + _A[1]) * r + _A[2]) * r + _A[3]) * r + _A[4]) * r + _A[5])
            * u
            / (((((_B[0] * r + _B[1]) * r + _B[2]) * r + _B[3]) * r + _B[4]) * r + 1.0)
        )
        # residual relative to the centre: Φ(x) - 1/2 = erf(x/√2)/2, compared with p - 1/2, keeps precision near 0
        err = 0.5 * math.erf(x / _SQRT2) - u
    # one Halley step: the approximation is already within 1.2e-9, Halley is cubic
    step = err * _SQRT2PI * math.exp(0.5 * x * x)
    return x - step / (1.0 + 0.5 * x * step)


def normal_ppf(p: float) -> float:
    """Standard normal quantile Φ⁻¹(p); -inf at 0, inf at 1, ValueError outside [0, 1]."""
    if not 0.0 <= p <= 1.0:  # also rejects NaN
        raise ValueError(f"probability must be in [0, 1], got {p!r}")
    if p == 0.0:
        return -math.inf
    if p == 1.0:
        return math.inf
    if p <= 0.5:
        return _normal_ppf_lower(p)
    return -_normal_ppf_lower(1.0 - p)  # 1 - p is exact for p in [0.5, 1]


def _gamma_tails(a: float, y: float) -> tuple[float, float, float]:
    """(ln P(a, y), ln Q(a, y), ln of the gamma(a) density at y) for y > 0, regularized incomplete gamma.

    Series for y < a + 1 (where P is the small-ish side), Lentz continued fraction for Q otherwise; the other tail
    is 1 - that one, which never loses precision there because it is >= ~0.3.
    """
    log_y = math.log(y)
    log_pdf = (a - 1.0) * log_y - y - math.lgamma(a)
    log_prefactor = log_pdf + log_y  # a·ln y - y - lnΓ(a)
    if y < a + 1.0:
        term = total = 1.0 / a
        n = a
        for _ in range(10_000):
            n += 1.0
            term *= y / n
            total += term
            if term < total * 1e-17:
                break
        log_p = log_prefactor + math.log(total)
        return log_p, math.log1p(-math.exp(log_p)), log_pdf
    tiny = 1e-300
    b = y + 1.0 - a
    c = 1.0 / tiny
    d = 1.0 / b
    h = d
    for i in range(1, 10_000):
        an = -i * (i - a)
        b += 2.0
        d = an * d + b
        if abs(d) < tiny:
            d = tiny
        c = b + an / c
        if abs(c) < tiny:
            c = tiny
        d = 1.0 / d
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-16:
            break
    log_q = log_prefactor + math.log(h)
    return math.log1p(-math.exp(log_q)), log_q, log_pdf


def chi2_ppf(q: float, df: float) -> float:
    """Chi-square quantile: the x with P(χ²_df <= x) = q. 0 at q = 0, inf at q = 1; ValueError otherwise invalid."""
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"probability must be in [0, 1], got {q!r}")
    if not df > 0.0 or math.isinf(df):
        raise ValueError(f"degrees of freedom must be positive and finite, got {df!r}")
    if q == 0.0:
        return 0.0
    if q == 1.0:
        return math.inf
    a = 0.5 * df
    upper = q >= 0.5
    target = math.log(1.0 - q) if upper else math.log(q)  # 1 - q is exact for q in [0.5, 1]

    # Wilson-Hilferty start; fall back to the small-y expansion P ≈ y^a / Γ(a + 1) when it is not positive
    z = normal_ppf(q)
    v = 2.0 / (9.0 * df)
    x0 = df * (1.0 - v + z * math.sqrt(v)) ** 3
    y = 0.5 * x0 if x0 > 0.0 else math.exp((math.log(q) + math.lgamma(a + 1.0)) / a)

    lo, hi = 0.0, math.inf
    prev_step = math.inf
    for _ in range(200):
        log_p, log_q, log_pdf = _gamma_tails(a, y)
        if upper:
            g = log_q - target  # decreasing in y
            too_low = g > 0.0
            # Newton on ln Q: d ln Q / dy = -pdf / Q
            new_y = y + g * math.exp(log_q - log_pdf)
        else:
            g = log_p - target  # increasing in y
            too_low = g < 0.0
            new_y = y - g * math.exp(log_p - log_pdf)
        step = abs(new_y - y)
        # converged, or stalled on the rounding noise of ln Q (≈1e-13 relative for large a): stop
        if g == 0.0 or step <= 4e-16 * y or (step <= 1e-11 * y and step >= 0.5 * prev_step):
            return 2.0 * new_y
        prev_step = step
        if too_low:
            lo = max(lo, y)
        else:
            hi = min(hi, y)
        if not lo < new_y < hi:  # Newton left the bracket: bisect (or expand when unbounded above)
            new_y = 0.5 * (lo + hi) if math.isfinite(hi) else 2.0 * max(y, lo)
        y = new_y
    return 2.0 * y


# --------------------------------------------------------------------------------------------------- thresholds


@attrs.frozen
class ChiSquareThreshold:
    """`{"ChiSquare": {"alpha": ...}}`: chi2.ppf(1 - α, B - 1) / M (the default, α = 0.05)."""

    alpha: float = 0.05


@attrs.frozen
class NormalThreshold:
    """`{"Normal": {"alpha": ...}}`: (B - 1)/M + z(1 - α)·√(2(B - 1))/M."""

    alpha: float = 0.05


@attrs.frozen
class FixedThreshold:
    """`{"Fixed": {"threshold": ...}}`: a constant."""

    threshold: float = 0.25


PsiThreshold = ChiSquareThreshold | NormalThreshold | FixedThreshold


def psi_threshold(threshold: PsiThreshold, sample_size: int, bin_count: int) -> float:
    """The PSI alert threshold for a feature with `sample_size` (M) target samples over `bin_count` (B) bins.

    ChiSquare and Normal need B >= 2 and M > 0 (upstream panics on B = 1); ValueError otherwise.
    """
    if isinstance(threshold, FixedThreshold):
        return threshold.threshold
    if bin_count < 2 or sample_size <= 0:
        raise ValueError(f"{type(threshold).__name__} needs >= 2 bins and samples, got B={bin_count} M={sample_size}")
    m = float(sample_size)
    dof = float(bin_count - 1)
    if isinstance(threshold, ChiSquareThreshold):
        return chi2_ppf(1.0 - threshold.alpha, dof) / m
    z = normal_ppf(1.0 - threshold.alpha)
    return dof / m + z * math.sqrt(2.0 * dof) / m


# --------------------------------------------------------------------------------------------------- alerting


@attrs.frozen
class ObservedDistribution:
    """A monitored feature's target data since the previous run: total count and `{bin_id: proportion}`."""

    sample_size: int
    proportions: Mapping[int, float]


@attrs.frozen
class PsiFeatureAlert:
    """A feature whose PSI exceeded its threshold; sample size and bin count are kept for "why" lines."""

    feature: str
    psi: float
    threshold: float
    sample_size: int | None = None
    bin_count: int | None = None

    def as_map(self) -> dict[str, str]:
        """The `drift_alert.alert` map `{"entity_name", "psi", "threshold"}`, numbers in Rust `Display` form."""
        return {
            "entity_name": self.feature,
            "psi": rust_float_str(self.psi),
            "threshold": rust_float_str(self.threshold),
        }


def psi_alerts(
    profile_bins: Mapping[str, Mapping[int, float]],
    distributions: Mapping[str, ObservedDistribution],
    threshold: PsiThreshold,
    features_to_monitor: Iterable[str],
) -> list[PsiFeatureAlert]:
    """Scheduled PSI alerting (§6.4), features in alphabetical order.

    `profile_bins` maps feature → `{bin_id: profile proportion}` in profile order. No monitored features: no
    alerts. A monitored feature is skipped (upstream would panic or fail the task) when it is missing from the
    profile or from the data, fails the minimum-sample rule, or has too few bins for a statistical threshold.
    Alerts when psi > threshold, strictly.
    """
    alerts: list[PsiFeatureAlert] = []
    for feature in sorted(set(features_to_monitor)):
        bins = profile_bins.get(feature)
        observed = distributions.get(feature)
        if bins is None or observed is None:
            continue
        bin_count = len(bins)
        if not has_min_sample(observed.sample_size, bin_count):
            continue
        if bin_count < 2 and not isinstance(threshold, FixedThreshold):
            continue
        psi = compute_psi(bins, observed.proportions)
        limit = psi_threshold(threshold, observed.sample_size, bin_count)
        if psi > limit:
            alerts.append(PsiFeatureAlert(feature, psi, limit, observed.sample_size, bin_count))
    return alerts


def psi_alert_maps(alerts: Iterable[PsiFeatureAlert]) -> list[dict[str, str]]:
    """One `drift_alert` map per alerting feature."""
    return [alert.as_map() for alert in alerts]
