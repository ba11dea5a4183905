"""The PromQL name extraction and the exported-name listing that the dashboard test relies on."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from .promql import exported_names, metric_names


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ("up", {"up"}),
        ('up{job="scouter", instance=~"a.+"}', {"up"}),
        ("sum by (transport) (rate(scouter_records_received_total[$__rate_interval]))",
         {"scouter_records_received_total"}),
        ("histogram_quantile(0.99, sum by (le, path) (rate(http_requests_duration_seconds_bucket[5m])))",
         {"http_requests_duration_seconds_bucket"}),
        ("sum(rate(a_sum[5m])) by (le) / sum(rate(a_count[5m] offset 1h)) > bool 0.5e3",
         {"a_sum", "a_count"}),
        ("x and on(instance) group_left(job) y unless z or w", {"x", "y", "z", "w"}),
        ('max_over_time(q{le="+Inf", name="sum(by)"}[1h:5m]) * ${factor}', {"q"}),
        ("ns:recorded:rate5m", {"ns:recorded:rate5m"}),
        ("vector(1) + time()", set()),
    ],
)  # fmt: skip
def test_metric_names(expr: str, names: set[str]) -> None:
    """Functions, aggregations, label names and values, durations, keywords and Grafana variables are not names."""
    assert names == metric_names(expr)


@pytest.mark.parametrize("expr", ["rat(x[5m])", "sum(rate(x[5m])", "x{job='a'"])
def test_metric_names_rejects_broken_queries(expr: str) -> None:
    """A misspelt function or unbalanced brackets is an error, not silently ignored."""
    with pytest.raises(ValueError):
        metric_names(expr)


def test_exported_names_include_labelled_metrics_without_children() -> None:
    """Counters export _total, histograms _bucket/_sum/_count, gauges their name, children or not."""
    registry = CollectorRegistry()
    Counter("c", "c", ["l"], registry=registry)
    Histogram("h_seconds", "h", registry=registry)
    Gauge("g", "g", ["l"], registry=registry)
    assert {"c_total", "c_created", "h_seconds_bucket", "h_seconds_sum", "h_seconds_count", "h_seconds_created",
            "g"} == exported_names(registry)  # fmt: skip
