"""The composition root's drift sub-tree: POLLING_WORKER_COUNT pollers and the due-profiles gauge under one_for_one,
between maintenance and HTTP; none at all for 0 workers."""

from __future__ import annotations

import functools
import math

import trio
from prometheus_client import CollectorRegistry

from actors.metrics import ScouterMetrics
from config import load_settings
from supervisors import ChildSpec, Strategy, SupervisorSpec, supervise
from supervisors.tree import Process, build_tree

DSN = "postgresql://scouter@127.0.0.1:1/none"  # never connected to: the tree is only built


def _tree(workers: str):  # type: ignore[no-untyped-def]
    settings = load_settings({"DATABASE_URI": DSN, "POLLING_WORKER_COUNT": workers})
    return build_tree(settings, Process(ScouterMetrics.create(CollectorRegistry(), process=False)))


def _drift(children: tuple[ChildSpec, ...]) -> ChildSpec:
    (drift,) = [child for child in children if child.id == "drift"]
    return drift


def test_drift_subtree_sits_between_maintenance_and_http() -> None:
    """Three workers: 'drift' starts after maintenance and before http, with an unbounded stop grace."""
    tree = _tree("3")
    ids = [child.id for child in tree.spec.children]
    assert ["database", "writer", "maintenance", "drift", "dispatcher", "archiver", "http"] == ids[
        ids.index("database") :
    ]
    drift = _drift(tree.spec.children)
    assert math.inf == drift.shutdown
    assert isinstance(drift.start, functools.partial)
    assert supervise is drift.start.func


def test_drift_subtree_runs_pollers_and_gauge_one_for_one() -> None:
    """poller-0..2 (each with a finite grace to finish its check) and due-gauge, restarted one for one."""
    spec: SupervisorSpec = _drift(_tree("3").spec.children).start.args[0]
    assert Strategy.ONE_FOR_ONE == spec.strategy
    assert ["poller-0", "poller-1", "poller-2", "due-gauge"] == [child.id for child in spec.children]
    assert all(0 < child.shutdown < math.inf for child in spec.children)


def test_zero_workers_means_no_drift_subtree() -> None:
    """POLLING_WORKER_COUNT=0: no drift sub-tree at all."""
    assert "drift" not in [child.id for child in _tree("0").spec.children]


def test_tree_owns_the_alert_channel_receive_end() -> None:
    """The receive end of the bounded alert channel is kept on the tree, for the dispatcher."""
    alerts = _tree("1").alerts
    assert isinstance(alerts, trio.MemoryReceiveChannel)
    assert 0 < alerts.statistics().max_buffer_size < math.inf
