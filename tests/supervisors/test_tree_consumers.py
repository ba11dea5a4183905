"""The composition root's consumer sub-tree: kafka-N and rabbitmq-N under one_for_one, after maintenance and
before the drift pollers and HTTP; absent when no broker is configured."""

from __future__ import annotations

import datetime
import functools
import math

from prometheus_client import CollectorRegistry

from actors.kafka import KafkaConsumerActor
from actors.metrics import ScouterMetrics
from actors.rabbitmq import RabbitConsumerActor
from config import load_settings
from supervisors import ChildSpec, Strategy, SupervisorSpec, supervise
from supervisors.tree import Process, build_tree

DSN = "postgresql://scouter@127.0.0.1:1/none"  # never connected to: the tree is only built


def _children(**env: str) -> tuple[ChildSpec, ...]:
    settings = load_settings({"DATABASE_URI": DSN, "POLLING_WORKER_COUNT": "1", **env})
    return build_tree(settings, Process(ScouterMetrics.create(CollectorRegistry(), process=False))).spec.children


def _consumers(children: tuple[ChildSpec, ...]) -> ChildSpec:
    (consumers,) = [child for child in children if child.id == "consumers"]
    return consumers


def test_no_broker_means_no_consumer_subtree() -> None:
    """Neither KAFKA_BROKERS nor RABBITMQ_ADDR: no consumers at all."""
    assert "consumers" not in [child.id for child in _children()]


def test_consumer_subtree_sits_between_maintenance_and_the_pollers() -> None:
    """With a broker: 'consumers' starts after maintenance (the writer is up) and stops before it, unbounded grace."""
    children = _children(KAFKA_BROKERS="k:9092")
    ids = [child.id for child in children]
    assert ["writer", "maintenance", "consumers", "drift"] == ids[ids.index("writer") : ids.index("drift") + 1]
    assert ids.index("consumers") < ids.index("http")
    consumers = _consumers(children)
    assert math.inf == consumers.shutdown
    assert isinstance(consumers.start, functools.partial)
    assert supervise is consumers.start.func


def test_consumer_subtree_runs_each_consumer_one_for_one() -> None:
    """KAFKA_WORKER_COUNT and RABBITMQ_CONSUMER_COUNT consumers, each with a finite grace, restarted one for one."""
    children = _children(
        KAFKA_BROKERS="k:9092", KAFKA_WORKER_COUNT="2", RABBITMQ_ADDR="amqp://h/%2f", RABBITMQ_CONSUMER_COUNT="3"
    )
    spec: SupervisorSpec = _consumers(children).start.args[0]
    assert Strategy.ONE_FOR_ONE == spec.strategy
    assert ["kafka-0", "kafka-1", "rabbitmq-0", "rabbitmq-1", "rabbitmq-2"] == [c.id for c in spec.children]
    assert all(0 < child.shutdown < math.inf for child in spec.children)
    actors = [child.start.__self__ for child in spec.children]  # bound `run` methods
    assert [KafkaConsumerActor] * 2 + [RabbitConsumerActor] * 3 == [type(a) for a in actors]
    assert ["scouter-0", "scouter-1", "scouter-2"] == [a.consumer_tag for a in actors[2:]]


def test_consumers_bound_created_at_by_the_configured_horizon() -> None:
    """SCOUTER_MAX_FUTURE_SECONDS reaches every broker consumer (the HTTP route reads it from the settings)."""
    children = _children(KAFKA_BROKERS="k:9092", RABBITMQ_ADDR="amqp://h/%2f", SCOUTER_MAX_FUTURE_SECONDS="600")
    spec: SupervisorSpec = _consumers(children).start.args[0]
    assert {datetime.timedelta(minutes=10)} == {child.start.__self__.max_future for child in spec.children}
