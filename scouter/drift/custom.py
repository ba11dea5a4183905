"""Custom-metric drift: compare each metric's observed mean with its training value (spec §6.5)."""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping

import attrs

from scouter.drift.psi import rust_float_str

__all__ = [
    "AlertThreshold",
    "CustomCondition",
    "CustomMetricAlert",
    "custom_alert_maps",
    "custom_alerts",
    "is_out_of_bounds",
]


class AlertThreshold(enum.Enum):
    """`AlertThreshold`; the value is both the JSON encoding and the display form."""

    BELOW = "Below"
    ABOVE = "Above"
    OUTSIDE = "Outside"


@attrs.frozen
class CustomCondition:
    """A metric's `alert_conditions` entry: the comparison and the optional margin b."""

    alert_threshold: AlertThreshold = attrs.field(converter=AlertThreshold)
    alert_threshold_value: float | None = None


def is_out_of_bounds(training: float, observed: float, condition: AlertThreshold | str, boundary: float | None) -> bool:
    """Whether observed O drifted from training T: never when O == T; Below: O < T - b (O < T without b);
    Above: O > T + b (O > T); Outside: either. All comparisons strict."""
    cond = AlertThreshold(condition)
    if observed == training:
        return False
    below = observed < (training if boundary is None else training - boundary)
    above = observed > (training if boundary is None else training + boundary)
    if cond is AlertThreshold.BELOW:
        return below
    if cond is AlertThreshold.ABOVE:
        return above
    return below or above


@attrs.frozen
class CustomMetricAlert:
    """One alerting metric (upstream's `ComparisonMetricAlert`)."""

    metric: str
    training_value: float
    observed_value: float
    alert_threshold: AlertThreshold
    alert_threshold_value: float | None = None

    def as_map(self) -> dict[str, str]:
        """The `drift_alert.alert` map, all values strings, numbers in Rust `Display` form; b null → "None"."""
        b = self.alert_threshold_value
        return {
            "entity_name": self.metric,
            "training_metric_value": rust_float_str(self.training_value),
            "observed_metric_value": rust_float_str(self.observed_value),
            "alert_threshold_value": "None" if b is None else rust_float_str(b),
            "alert_threshold": self.alert_threshold.value,
        }


def custom_alerts(
    training: Mapping[str, float],
    observed: Mapping[str, float],
    conditions: Mapping[str, CustomCondition],
) -> list[CustomMetricAlert]:
    """Alerts for every metric with a training value, an observed mean and a condition, metrics alphabetical.

    Upstream indexes the profile and the conditions blindly and panics on a missing key; a metric missing from any
    of the three is skipped instead.
    """
    alerts: list[CustomMetricAlert] = []
    for metric in sorted(observed):
        if metric not in training or metric not in conditions:
            continue
        cond = conditions[metric]
        t, o = training[metric], observed[metric]
        if is_out_of_bounds(t, o, cond.alert_threshold, cond.alert_threshold_value):
            alerts.append(CustomMetricAlert(metric, t, o, cond.alert_threshold, cond.alert_threshold_value))
    return alerts


def custom_alert_maps(alerts: Iterable[CustomMetricAlert]) -> list[dict[str, str]]:
    """One `drift_alert` map per alerting metric."""
    return [alert.as_map() for alert in alerts]
