"""The composition root: the whole Scouter supervisor tree, built from the settings.

    scouter            rest_for_one: a failed dependency restarts everything started after it
    ├── postgres       embedded PostgreSQL, only when no database is configured and none answers by default
    ├── database       asyncpg pool, migrations, reachability for readiness
    ├── writer         batched writer: group commit, replies after COMMIT
    ├── maintenance    daily partitions ahead, drops archived partitions past retention
    └── http           quart-trio on hypercorn: API, health, readiness, /metrics (also on port + 1)

Children start top to bottom, each once the previous reported ready, and stop bottom to top: HTTP stops taking
requests first, the writer drains after it, the pool closes last. The tree owns the channels between actors, so a
restarted actor finds its inbox intact.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import attrs
import trio
from quart_trio import QuartTrio

from actors.database import DatabaseActor, DatabaseHandle
from actors.health import HealthBoard
from actors.http import HttpContext, Readiness, create_app, serve_http
from actors.maintenance import MaintenanceActor
from actors.metrics import ScouterMetrics
from actors.postgres import EmbeddedPostgres, answers
from actors.writer import WriterActor, open_inbox
from config import DEFAULT_DATABASE_URI, Settings

from ._monitor import Monitor
from ._spec import ChildSpec, Strategy, SupervisorSpec
from ._supervisor import supervise

WRITER_INBOX = 1000  # write requests; upstream's HTTP channel held 1000 messages too


@attrs.frozen
class Process:
    """What outlives a SIGHUP restart of the tree."""

    metrics: ScouterMetrics


@attrs.frozen
class Tree:
    spec: SupervisorSpec
    monitor: Monitor
    http: HttpContext
    app: QuartTrio

    def run(self, stop: trio.Event, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> Awaitable[None]:
        return supervise(self.spec, stop, monitor=self.monitor, task_status=task_status)


def _default_database_answers() -> bool:
    url = urlsplit(DEFAULT_DATABASE_URI)
    return answers(url.hostname or "localhost", url.port or 5432)


def build_tree(settings: Settings, process: Process, extra: tuple[ChildSpec, ...] = ()) -> Tree:
    """The tree for ``settings``; ``extra`` children (tests only) start before the HTTP front-end."""
    monitor = Monitor(("scouter",))
    monitor.add_restart_listener(lambda child: process.metrics.supervisor_restarts.labels(child).inc())
    board = HealthBoard()
    database = DatabaseHandle()
    inbox_send, inbox_recv = open_inbox(WRITER_INBOX)

    children: list[ChildSpec] = []
    uri: Callable[[], str]
    if settings.database.uri is not None:
        uri = functools.partial(str, settings.database.uri)
    elif settings.database.embedded == "never" or (
        settings.database.embedded == "auto" and _default_database_answers()
    ):
        uri = functools.partial(str, DEFAULT_DATABASE_URI)
    else:
        embedded = EmbeddedPostgres(Path(settings.database.data_dir))
        children.append(ChildSpec("postgres", embedded.run, shutdown=20))
        uri = lambda: embedded.uri or DEFAULT_DATABASE_URI  # noqa: E731 - read when (re)connecting

    http = HttpContext(
        settings=settings,
        metrics=process.metrics,
        readiness=lambda: Readiness(monitor.ready(), board.problems()),
        database=database,
        writer=inbox_send,
    )
    app = create_app(http)
    writer = WriterActor(inbox_recv, inbox_send, database, process.metrics)
    children += [
        ChildSpec("database", DatabaseActor(settings.database, uri, database, board).run, shutdown=10),
        ChildSpec("writer", writer.run, shutdown=15),
        ChildSpec("maintenance", MaintenanceActor(database).run, shutdown=5),
        *extra,
        ChildSpec("http", functools.partial(serve_http, app, http), shutdown=settings.http.graceful_timeout + 2),
    ]
    spec = SupervisorSpec(tuple(children), strategy=Strategy.REST_FOR_ONE, intensity=3, period=30)
    return Tree(spec, monitor, http, app)


TreeBuilder = Callable[[Settings, Process], Tree]
