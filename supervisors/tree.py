"""The composition root: the whole Scouter supervisor tree, built from the settings.

    scouter            rest_for_one: a failed dependency restarts everything started after it
    ├── ports          binds the HTTP ports for the tree's life; answers on them (liveness "starting", readiness 503
    │                  naming what is awaited) until http serves, and whenever it does not
    ├── postgres       embedded PostgreSQL, only when no database is configured and none answers by default
    ├── database       asyncpg pool, migrations, reachability for readiness
    ├── writer         batched writer: group commit, replies after COMMIT
    ├── maintenance    daily partitions ahead, drops archived partitions past retention
    ├── consumers      one_for_one: kafka-0 … kafka-(KAFKA_WORKER_COUNT-1) when KAFKA_BROKERS is set,
    │                  rabbitmq-0 … rabbitmq-(RABBITMQ_CONSUMER_COUNT-1) when RABBITMQ_ADDR is set; else absent
    ├── drift          one_for_one: poller-0 … poller-(POLLING_WORKER_COUNT-1), due-gauge; absent when 0 workers
    ├── dispatcher     sends stored alerts (outbox in scouter.alert_delivery); absent when SCOUTER_ALERT_DISPATCH=false
    ├── archiver       hourly Parquet of rows past DATA_RETENTION_PERIOD to SCOUTER_STORAGE_URI, one replica at a time
    └── http           quart-trio on hypercorn: API, health, readiness, /metrics (also on port + 1), and the
                       web dashboard at / (actors.http._dashboard_routes), the API documentation at /scouter/docs

Children start top to bottom, each once the previous reported ready, and stop bottom to top: HTTP stops taking
requests first, the writer drains after it, the pool closes last. The tree owns the channels between actors, so a
restarted actor finds its inbox intact. The alert channel's receive end (``Tree.alerts``) wakes the dispatcher;
pollers never block on it (see actors.alert_channel).
"""

from __future__ import annotations

import datetime
import functools
import math
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import attrs
import trio
from quart_trio import QuartTrio

from actors.alert_channel import AlertChannel, AlertReceiver, open_alert_channel
from actors.archive_reader import ArchiveReader
from actors.archive_store import StoreHandle
from actors.archiver import ArchiverActor
from actors.database import DatabaseActor, DatabaseHandle
from actors.dispatcher import Dispatcher, dispatcher_grace
from actors.entity_cache import EntityCache
from actors.health import HealthBoard
from actors.http import API_BLUEPRINTS, HttpContext, PortsActor, Readiness, SharedPorts, create_app, serve_http
from actors.kafka import KafkaConsumerActor
from actors.maintenance import MaintenanceActor
from actors.metrics import ScouterMetrics
from actors.poller import DueGauge, Poller, poller_id
from actors.postgres import EmbeddedPostgres, answers
from actors.rabbitmq import RabbitConsumerActor
from actors.users import prepare_users
from actors.writer import InboxSender, WriterActor, open_inbox
from config import DEFAULT_DATABASE_URI, Settings

from ._monitor import Monitor
from ._spec import ChildSpec, Strategy, SupervisorSpec
from ._supervisor import supervise

WRITER_INBOX = 1000  # write requests; upstream's HTTP channel held 1000 messages too
POLLER_GRACE = 10.0  # a poller finishes its check within this, else it is cancelled and hands the lease back
CONSUMER_GRACE = 15.0  # a broker consumer stores and acknowledges its batch in flight within this
ARCHIVER_GRACE = 10.0  # the archiver finishes (or rolls back) the object in flight within this


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
    alerts: AlertReceiver | None = None  # alert notices for the dispatcher

    def run(self, stop: trio.Event, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> Awaitable[None]:
        return supervise(self.spec, stop, monitor=self.monitor, task_status=task_status)


def _default_database_answers() -> bool:
    url = urlsplit(DEFAULT_DATABASE_URI)
    return answers(url.hostname or "localhost", url.port or 5432)


def _drift(
    settings: Settings, process: Process, db: DatabaseHandle, alerts: AlertChannel, monitor: Monitor
) -> list[ChildSpec]:
    """The drift sub-tree: one_for_one over the pollers and the due-profiles gauge; none for 0 workers."""
    if settings.polling_workers == 0:
        return []
    pollers = [Poller(poller_id(i), db, alerts, process.metrics, index=i) for i in range(settings.polling_workers)]
    children = [ChildSpec(f"poller-{i}", poller.run, shutdown=POLLER_GRACE) for i, poller in enumerate(pollers)]
    children.append(ChildSpec("due-gauge", DueGauge(db, process.metrics).run, shutdown=1))
    spec = SupervisorSpec(tuple(children), strategy=Strategy.ONE_FOR_ONE, intensity=5, period=30)
    return [ChildSpec("drift", functools.partial(supervise, spec, monitor=monitor.child("drift")), shutdown=math.inf)]


def _dispatcher(settings: Settings, process: Process, db: DatabaseHandle, notices: AlertReceiver) -> list[ChildSpec]:
    """The alert dispatcher; its stop grace lets in-flight sends finish and be recorded."""
    if not settings.dispatch.enabled:
        return []
    dispatcher = Dispatcher(db, settings.dispatch, process.metrics, notices)
    return [ChildSpec("dispatcher", dispatcher.run, shutdown=dispatcher_grace(settings.dispatch))]


def _consumers(
    settings: Settings,
    process: Process,
    db: DatabaseHandle,
    writer: InboxSender,
    board: HealthBoard,
    monitor: Monitor,
) -> list[ChildSpec]:
    """The broker consumers, one_for_one (they reconnect by themselves); none when no broker is configured."""
    actors: list[KafkaConsumerActor | RabbitConsumerActor] = []

    def entities() -> EntityCache:  # each consumer keeps its own uid -> entity lookups
        return EntityCache(settings.database.entity_cache_size)

    max_future = datetime.timedelta(seconds=settings.max_future_seconds)
    if settings.kafka is not None:
        actors += [
            KafkaConsumerActor(
                settings.kafka, i, db, writer, board, process.metrics, max_future=max_future, entities=entities()
            )
            for i in range(settings.kafka.workers)
        ]
    if settings.rabbitmq is not None:
        actors += [
            RabbitConsumerActor(
                settings.rabbitmq, i, db, writer, board, process.metrics, max_future=max_future, entities=entities()
            )
            for i in range(settings.rabbitmq.consumers)
        ]
    if not actors:
        return []
    children = [ChildSpec(actor.name, actor.run, shutdown=CONSUMER_GRACE) for actor in actors]
    spec = SupervisorSpec(tuple(children), strategy=Strategy.ONE_FOR_ONE, intensity=5, period=30)
    run = functools.partial(supervise, spec, monitor=monitor.child("consumers"))
    return [ChildSpec("consumers", run, shutdown=math.inf)]


def _archiver(settings: Settings, process: Process, db: DatabaseHandle, stores: StoreHandle) -> ArchiverActor:
    return ArchiverActor(
        db, stores, settings.database.retention_days, process.metrics, interval=settings.storage.archive_interval
    )


def _embedded_uri(embedded: EmbeddedPostgres) -> str:
    """Read when (re)connecting: the embedded server's URI once it runs."""
    return embedded.uri or DEFAULT_DATABASE_URI


def build_tree(settings: Settings, process: Process, extra: tuple[ChildSpec, ...] = ()) -> Tree:
    """The tree for ``settings``; ``extra`` children (tests only) start before the HTTP front-end."""
    monitor = Monitor(("scouter",))
    monitor.add_restart_listener(lambda child: process.metrics.supervisor_restarts.labels(child).inc())
    board = HealthBoard()
    database = DatabaseHandle()
    inbox_send, inbox_recv = open_inbox(WRITER_INBOX)
    alerts_send, alerts_recv = open_alert_channel()

    uri: Callable[[], str]
    embedded: EmbeddedPostgres | None = None
    if settings.database.uri is not None:
        uri = functools.partial(str, settings.database.uri)
    elif settings.database.embedded == "never" or (
        settings.database.embedded == "auto" and _default_database_answers()
    ):
        uri = functools.partial(str, DEFAULT_DATABASE_URI)
    else:
        embedded = EmbeddedPostgres(Path(settings.database.data_dir))
        uri = functools.partial(_embedded_uri, embedded)

    stores = StoreHandle(settings.storage)  # one store for the archiver and the read-back
    http = HttpContext(
        settings=settings,
        metrics=process.metrics,
        readiness=lambda: Readiness(monitor.ready(), board.problems()),
        database=database,
        writer=inbox_send,
        archive=ArchiveReader(stores, settings.database.retention_days),
    )
    app = create_app(http, blueprints=API_BLUEPRINTS)
    writer = WriterActor(inbox_recv, inbox_send, database, process.metrics)
    database_actor = DatabaseActor(
        settings.database, uri, database, board, prepare=functools.partial(prepare_users, auth=settings.auth)
    )
    ports = SharedPorts()
    children = [ChildSpec("ports", PortsActor(http, ports).run, shutdown=5)]
    if embedded is not None:
        children.append(ChildSpec("postgres", embedded.run, shutdown=20))
    children += [
        ChildSpec("database", database_actor.run, shutdown=10),
        ChildSpec("writer", writer.run, shutdown=15),
        ChildSpec("maintenance", MaintenanceActor(database, metrics=process.metrics).run, shutdown=5),
        *_consumers(settings, process, database, inbox_send, board, monitor),
        *_drift(settings, process, database, AlertChannel(alerts_send, process.metrics), monitor),
        *_dispatcher(settings, process, database, alerts_recv),
        ChildSpec("archiver", _archiver(settings, process, database, stores).run, shutdown=ARCHIVER_GRACE),
        *extra,
        ChildSpec(
            "http", functools.partial(serve_http, app, http, ports=ports), shutdown=settings.http.graceful_timeout + 2
        ),
    ]
    spec = SupervisorSpec(tuple(children), strategy=Strategy.REST_FOR_ONE, intensity=3, period=30)
    return Tree(spec, monitor, http, app, alerts_recv)


TreeBuilder = Callable[[Settings, Process], Tree]
