"""Prometheus scrapes the server; Grafana gets the data source and the dashboard; every query names a real metric."""

from __future__ import annotations

import functools
import json
from typing import Any
from urllib.parse import urlsplit

import pytest

from actors.metrics import ScouterMetrics

from .promql import SCRAPE_SERIES, exported_names, metric_names
from .repo import DEPLOY, compose, load_yaml, server_settings

PROMETHEUS = DEPLOY / "prometheus" / "prometheus.yml"
PROVISIONING = DEPLOY / "grafana" / "provisioning"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "scouter.json"
#: What the issue asks the dashboard to show, by the metric that shows it.
MUST_SHOW = {
    "ingest rate by transport": "scouter_records_received_total",
    "writer flush latency": "scouter_writer_flush_duration_seconds_bucket",
    "writer queue depth": "scouter_writer_queue_depth",
    "poll lag (due profiles)": "scouter_drift_due_profiles",
    "alerts stored": "scouter_drift_alerts_total",
    "alerts by channel": "scouter_alerts_dispatched_total",
    "supervisor restarts": "scouter_supervisor_restarts_total",
    "archive: rows archived": "scouter_archive_rows_total",
    "archive: last successful pass": "scouter_archive_last_success_timestamp_seconds",
}


def service(name: str) -> dict[str, Any]:
    result: dict[str, Any] = compose()["services"][name]
    return result


def mounts(name: str) -> dict[str, str]:
    """A service's bind mounts as {container path: path relative to deploy/}."""
    result: dict[str, str] = {}
    for volume in service(name).get("volumes", []):
        source, target = str(volume).split(":")[:2]
        if source.startswith("."):
            result[target] = source
    return result


@functools.cache
def exported() -> frozenset[str]:
    """Every series name the server exports: ScouterMetrics' registry, process/platform/GC collectors included."""
    return frozenset(exported_names(ScouterMetrics.create().registry))


def dashboard() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return document


def panels(document: dict[str, Any]) -> list[dict[str, Any]]:
    """Every panel, those inside collapsed rows included."""
    result: list[dict[str, Any]] = []
    for panel in document["panels"]:
        result.append(panel)
        result += panel.get("panels", [])
    return result


def queries(document: dict[str, Any]) -> list[tuple[str, str]]:
    """(panel title, PromQL) for every target of every panel and every query variable."""
    found = [(p["title"], t["expr"]) for p in panels(document) for t in p.get("targets", [])]
    for variable in document.get("templating", {}).get("list", []):
        if variable.get("type") == "query":
            query = variable["query"]
            found.append((f"variable {variable['name']}", query if isinstance(query, str) else query["query"]))
    return found


def test_prometheus_scrapes_the_servers_metrics_port() -> None:
    """A scrape job targets the server service on the metrics port its settings give, at /metrics."""
    config = load_yaml(PROMETHEUS)
    targets = {
        (job.get("metrics_path", "/metrics"), target)
        for job in config["scrape_configs"]
        for static in job.get("static_configs", [])
        for target in static["targets"]
    }
    assert ("/metrics", f"server:{server_settings().http.effective_metrics_port}") in targets
    assert "server" in compose()["services"]


def test_prometheus_service_loads_this_config() -> None:
    """The Prometheus service mounts the file where its --config.file flag points."""
    flags = dict(arg.split("=", 1) for arg in service("prometheus")["command"])
    assert "./prometheus/prometheus.yml" == mounts("prometheus")[flags["--config.file"]]


def test_grafana_provisions_the_prometheus_data_source() -> None:
    """The data source is the compose file's Prometheus, by service name and port, under a fixed uid."""
    assert "./grafana/provisioning" == mounts("grafana")["/etc/grafana/provisioning"]
    documents = [load_yaml(path) for path in sorted((PROVISIONING / "datasources").glob("*.yml"))]
    sources = [source for document in documents for source in document["datasources"]]
    assert [1] * len(documents) == [document["apiVersion"] for document in documents]
    (source,) = sources
    url = urlsplit(source["url"])
    assert ("prometheus", "prometheus", 9090) == (source["type"], url.hostname, url.port)
    assert "9090:9090" in service("prometheus")["ports"]
    assert "prometheus" == source["uid"]


def test_grafana_provisions_the_dashboard_folder() -> None:
    """The file provider reads the folder where deploy/grafana/dashboards is mounted, which holds scouter.json."""
    documents = [load_yaml(path) for path in sorted((PROVISIONING / "dashboards").glob("*.yml"))]
    (provider,) = [p for document in documents for p in document["providers"]]
    assert "file" == provider["type"]
    source = mounts("grafana")[provider["options"]["path"]]
    assert (DEPLOY / source / DASHBOARD.name).samefile(DASHBOARD)


def test_dashboard_panels_are_well_formed() -> None:
    """Unique panel ids, every non-row panel queries the provisioned data source, fits the grid and has a target."""
    document = dashboard()
    assert ("scouter", "Scouter") == (document["uid"], document["title"])
    every = panels(document)
    ids = [panel["id"] for panel in every]
    assert len(set(ids)) == len(ids)
    for panel in every:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        if panel["type"] == "row":
            continue
        assert {"type": "prometheus", "uid": "prometheus"} == panel["datasource"], panel["title"]
        targets = panel.get("targets", [])
        assert targets, f"{panel['title']} has no target"
        refs = [target["refId"] for target in targets]
        assert len(set(refs)) == len(refs), panel["title"]
        assert all(target["expr"].strip() for target in targets), panel["title"]


def test_every_query_names_a_metric_the_server_exports() -> None:
    """Each metric in each panel's PromQL is one the server's registry exports (or Prometheus's own `up`)."""
    known = exported() | SCRAPE_SERIES
    unknown = {
        (title, name) for title, expr in queries(dashboard()) for name in metric_names(expr) if name not in known
    }
    assert set() == unknown


def test_every_query_selects_at_least_one_metric() -> None:
    """No query is a constant or only labels: each selects a series."""
    assert [] == [(title, expr) for title, expr in queries(dashboard()) if not metric_names(expr)]


@pytest.mark.parametrize("topic", sorted(MUST_SHOW))
def test_dashboard_shows(topic: str) -> None:
    """The dashboard has a panel for each topic of the issue."""
    used = {name for _, expr in queries(dashboard()) for name in metric_names(expr)}
    assert MUST_SHOW[topic] in used
