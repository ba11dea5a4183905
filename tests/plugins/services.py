"""Pytest plugin: real PostgreSQL, RabbitMQ and Kafka (tansu) for tests that ask for them.

Load it from the top-level conftest with `pytest_plugins = ["tests.plugins.services"]`. Every fixture is lazy: a run
that only asks for `postgres_dsn` never starts a broker. Servers this plugin starts are stopped when their session
fixture is torn down; servers that were already running are only used, never stopped.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests import services


@pytest.fixture(scope="session")
def postgres_dsn() -> Iterator[str]:
    """DSN of the `postgres` maintenance database on a PostgreSQL >= 14; prefer `fresh_database_dsn` in tests."""
    yield services.ensure_postgres()
    services.stop_postgres()


@pytest.fixture
def fresh_database_dsn(postgres_dsn: str) -> Iterator[str]:
    """DSN of a new, empty `scouter_test_<random>` database, dropped WITH (FORCE) after the test."""
    with services.scratch_database(postgres_dsn) as dsn:
        yield dsn


@pytest.fixture(scope="session")
def rabbitmq_url() -> Iterator[str]:
    """amqp URL of a running RabbitMQ shared by the session; never restart it (use `private_rabbitmq_node`)."""
    yield services.ensure_rabbitmq()
    services.stop_rabbitmq()


@pytest.fixture(scope="session")
def kafka_brokers() -> Iterator[str]:
    """Bootstrap servers of the session's tansu broker (in-memory storage); use unique topic and group names."""
    yield services.ensure_kafka()
    services.stop_kafka()


@pytest.fixture
def private_rabbitmq_node() -> Iterator[services.RabbitNode]:
    """A RabbitMQ node owned by this test alone, safe to `.stop()`/`.start()` (about 2 s to start, 1 s to stop)."""
    with services.private_rabbitmq() as node:
        yield node


@pytest.fixture
def private_kafka_broker() -> Iterator[services.KafkaBroker]:
    """A tansu broker owned by this test alone, safe to `.stop()`/`.start()` on the same port."""
    with services.private_kafka() as broker:
        yield broker


@pytest.fixture
def persistent_kafka_broker() -> Iterator[services.KafkaBroker]:
    """A tansu broker owned by this test alone whose log and offsets survive `.stop()`/`.start()` (S3 storage on
    a private moto server)."""
    with services.persistent_kafka() as broker:
        yield broker


@pytest.fixture
def private_postgres_server() -> Iterator[services.PostgresServer]:
    """A PostgreSQL server owned by this test alone, safe to `.stop()`/`.start()` (data and port are kept)."""
    with services.private_postgres() as server:
        yield server


def pytest_unconfigure(config: pytest.Config) -> None:
    # Safety net for servers started outside the fixtures (direct ensure_* calls); atexit would also catch them.
    services.stop_all()
