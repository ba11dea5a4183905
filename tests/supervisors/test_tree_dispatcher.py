"""The composition root's alert dispatcher: after the drift sub-tree, before HTTP, with a grace that lets in-flight
sends finish; absent when SCOUTER_ALERT_DISPATCH=false; the alert routes are served."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from actors.metrics import ScouterMetrics
from config import load_settings
from supervisors.tree import Process, Tree, build_tree

DSN = "postgresql://scouter@127.0.0.1:1/none"  # never connected to: the tree is only built


def _tree(**env: str) -> Tree:
    settings = load_settings({"DATABASE_URI": DSN, **env})
    return build_tree(settings, Process(ScouterMetrics.create(CollectorRegistry(), process=False)))


def test_dispatcher_starts_after_drift_and_before_http() -> None:
    """'dispatcher' follows 'drift' and precedes 'http'; its grace covers one request timeout plus recording."""
    tree = _tree(SCOUTER_ALERT_TIMEOUT_SECONDS="4")
    ids = [child.id for child in tree.spec.children]
    assert ids.index("drift") < ids.index("dispatcher") < ids.index("http")
    (dispatcher,) = [child for child in tree.spec.children if child.id == "dispatcher"]
    assert 4 + 5 + 2 == dispatcher.shutdown


def test_dispatcher_can_be_switched_off() -> None:
    """SCOUTER_ALERT_DISPATCH=false: no dispatcher child (another replica sends)."""
    assert "dispatcher" not in [child.id for child in _tree(SCOUTER_ALERT_DISPATCH="false").spec.children]


def test_alert_routes_are_served() -> None:
    """GET and PUT /scouter/alerts are routes of the tree's app."""
    rules = {(rule.rule, method) for rule in _tree().app.url_map.iter_rules() for method in rule.methods or ()}
    assert {("/scouter/alerts", "GET"), ("/scouter/alerts", "PUT")} <= rules
