"""Custom-metric comparisons and alert maps (spec §6.5)."""

import pytest

from scouter.drift import (
    AlertThreshold,
    CustomCondition,
    CustomMetricAlert,
    custom_alert_maps,
    custom_alerts,
    is_out_of_bounds,
)


@pytest.mark.parametrize(
    ("training", "observed", "condition", "boundary", "fires"),
    [
        (12.0, 14.5, "Above", 2.0, True),  # spec example
        (0.76, 0.67, "Below", None, True),  # spec example
        (12.0, 14.0, "Above", 2.0, False),  # exactly T + b: strict
        (12.0, 10.0, "Below", 2.0, False),  # exactly T - b: strict
        (12.0, 9.9, "Below", 2.0, True),
        (12.0, 14.5, "Below", 2.0, False),
        (12.0, 9.0, "Above", 2.0, False),
        (12.0, 14.5, "Outside", 2.0, True),
        (12.0, 9.5, "Outside", 2.0, True),
        (12.0, 13.0, "Outside", 2.0, False),
        (12.0, 12.0, "Outside", None, False),  # O == T never alerts
        (12.0, 12.0, "Below", -1.0, False),  # even when a negative margin would make O < T - b true
        (12.0, 12.5, "Outside", None, True),
        (12.0, 11.5, "Above", None, False),
    ],
)
def test_is_out_of_bounds(
    training: float, observed: float, condition: str, boundary: float | None, fires: bool
) -> None:
    """Below/Above/Outside with or without a margin, strict comparisons, and O == T never firing."""
    assert fires == is_out_of_bounds(training, observed, condition, boundary)


def test_custom_alerts_and_maps() -> None:
    """Alerting metrics become alphabetical alerts whose maps are all strings, "None" for a missing margin."""
    training = {"mae": 12.0, "acc": 0.76, "f1": 0.5}
    observed = {"mae": 14.5, "acc": 0.67, "f1": 0.5}
    conditions = {
        "mae": CustomCondition(AlertThreshold.ABOVE, 2.0),
        "acc": CustomCondition("Below", None),
        "f1": CustomCondition(AlertThreshold.OUTSIDE, None),
    }
    alerts = custom_alerts(training, observed, conditions)
    expected_maps = [
        {"entity_name": "acc", "training_metric_value": "0.76", "observed_metric_value": "0.67",
         "alert_threshold_value": "None", "alert_threshold": "Below"},
        {"entity_name": "mae", "training_metric_value": "12", "observed_metric_value": "14.5",
         "alert_threshold_value": "2", "alert_threshold": "Above"},
    ]  # fmt: skip
    assert expected_maps == custom_alert_maps(alerts)


def test_custom_alerts_skip_incomplete_metrics() -> None:
    """A metric missing its training value or its condition is skipped instead of failing the task."""
    alerts = custom_alerts({"a": 1.0}, {"a": 5.0, "b": 5.0}, {"b": CustomCondition("Above")})
    assert [] == alerts


def test_custom_alert_value() -> None:
    """The alert keeps the metric, both values and the condition."""
    alerts = custom_alerts({"mae": 1.0}, {"mae": 3.0}, {"mae": CustomCondition("Outside", 1.5)})
    assert [CustomMetricAlert("mae", 1.0, 3.0, AlertThreshold.OUTSIDE, 1.5)] == alerts
