"""The composition root: the whole Scouter supervisor tree, built from the settings.

    scouter (rest_for_one: a failed dependency restarts everything after it)
    └── http        quart-trio on hypercorn: API, health, readiness, /metrics (also on port + 1)

Children start top to bottom, each once the previous reported ready, and stop bottom to top.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any

import attrs
import trio

from actors.health import HealthBoard
from actors.http import HttpContext, Readiness, create_app, serve_http
from actors.metrics import ScouterMetrics
from config import Settings

from ._monitor import Monitor
from ._spec import ChildSpec, Strategy, SupervisorSpec
from ._supervisor import supervise


@attrs.frozen
class Process:
    """What outlives a SIGHUP restart of the tree."""

    metrics: ScouterMetrics


@attrs.frozen
class Tree:
    spec: SupervisorSpec
    monitor: Monitor
    http: HttpContext

    def run(self, stop: trio.Event, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> Awaitable[None]:
        return supervise(self.spec, stop, monitor=self.monitor, task_status=task_status)


def build_tree(settings: Settings, process: Process, extra: tuple[ChildSpec, ...] = ()) -> Tree:
    """The tree for ``settings``; ``extra`` children (tests only) start before the HTTP front-end."""
    monitor = Monitor(("scouter",))
    monitor.add_restart_listener(lambda child: process.metrics.supervisor_restarts.labels(child).inc())
    board = HealthBoard()
    http = HttpContext(
        settings=settings,
        metrics=process.metrics,
        readiness=lambda: Readiness(monitor.ready(), board.problems()),
    )
    app = create_app(http)
    children = (
        *extra,
        ChildSpec("http", functools.partial(serve_http, app, http), shutdown=settings.http.graceful_timeout + 2),
    )
    spec = SupervisorSpec(children, strategy=Strategy.REST_FOR_ONE, intensity=3, period=30)
    return Tree(spec, monitor, http)


TreeBuilder = Callable[[Settings, Process], Tree]
