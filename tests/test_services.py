"""The test-service bootstrap yields working PostgreSQL, RabbitMQ and Kafka servers, and can restart its own."""

from __future__ import annotations

import asyncio
import secrets
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import pytest

from tests import services
from tests.services import _owned, _ports, _postgres, _rabbitmq

pytest_plugins = ["tests.plugins.services"]  # also listed by the top-level conftest; registering twice is a no-op

T = TypeVar("T")


def run(make: Callable[[], Awaitable[T]], timeout: float = 60) -> T:
    async def bounded() -> T:
        return await asyncio.wait_for(make(), timeout)

    return asyncio.run(bounded())


def unique(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


# --------------------------------------------------------------------------------------------------------------------
# helpers without servers


def test_with_database_replaces_only_the_database() -> None:
    """with_database swaps the path of a DSN and keeps user, host, port and query parameters."""
    dsn = "postgresql://postgres@127.0.0.1:5432/postgres?sslmode=disable"
    assert "postgresql://postgres@127.0.0.1:5432/scouter_test_ab?sslmode=disable" == services.with_database(
        dsn, "scouter_test_ab"
    )


def test_free_port_is_bindable_and_outside_the_ephemeral_range() -> None:
    """_free_port returns a port that binds and that outgoing connections cannot be handed."""
    port = _ports._free_port()
    low, high = _ports._local_port_range()
    assert (False, True) == (low <= port <= high, _ports._port_is_free(port, "127.0.0.1"))


def test_forced_private_reads_a_comma_list(monkeypatch: pytest.MonkeyPatch) -> None:
    """SCOUTER_TEST_FORCE_PRIVATE names services, case-insensitively, or `all`."""
    monkeypatch.setenv(_owned.ENV_FORCE_PRIVATE, " Postgres , kafka")
    named = (_owned._forced_private("postgres"), _owned._forced_private("rabbitmq"))
    monkeypatch.setenv(_owned.ENV_FORCE_PRIVATE, "all")
    assert ((True, False), True) == (named, _owned._forced_private("rabbitmq"))


def test_scratch_database_rejects_a_prefix_that_is_not_an_identifier() -> None:
    """scratch_database refuses prefixes that would need quoting, before touching any server."""
    with (
        pytest.raises(ValueError, match="lower-case identifier"),
        services.scratch_database("postgresql://x/y", prefix="Bad-Name"),
    ):
        pass


def test_a_server_that_dies_at_start_is_reported_with_its_log(monkeypatch: pytest.MonkeyPatch) -> None:
    """A broker that exits while starting raises ServiceError naming its exit code and log file."""
    monkeypatch.setenv("CALF_TANSU_BIN", "/bin/false")
    monkeypatch.setattr(_owned, "_keep_work_dir", _owned._keep_work_dir)  # this failure is on purpose
    broker = services.KafkaBroker()
    try:
        with pytest.raises(services.ServiceError) as caught:
            broker.start(timeout=10)
    finally:
        broker.close()
    message = str(caught.value)
    assert (True, True) == ("exited with code 1" in message, str(broker.log_path) in message)


# --------------------------------------------------------------------------------------------------------------------
# PostgreSQL


async def _fetch(dsn: str, query: str) -> object:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetchval(query)
    finally:
        await conn.close()


@pytest.mark.postgres
def test_postgres_dsn_answers_select_1(postgres_dsn: str) -> None:
    """The session PostgreSQL answers a query."""
    assert 1 == run(lambda: _fetch(postgres_dsn, "SELECT 1"))


@pytest.mark.postgres
def test_postgres_is_at_least_version_14(postgres_dsn: str) -> None:
    """The session PostgreSQL is new enough for date_bin."""
    assert True is (int(run(lambda: _fetch(postgres_dsn, "SHOW server_version_num"))) >= 140000)


@pytest.mark.postgres
def test_ensure_postgres_is_idempotent(postgres_dsn: str) -> None:
    """A second ensure_postgres in the same process returns the same server."""
    assert postgres_dsn == services.ensure_postgres()


@pytest.mark.postgres
def test_fresh_database_is_a_new_empty_scratch_database(fresh_database_dsn: str) -> None:
    """fresh_database_dsn points at a scouter_test_* database with no tables of its own."""

    async def inspect() -> tuple[bool, int]:
        import asyncpg

        conn = await asyncpg.connect(fresh_database_dsn)
        try:
            name = await conn.fetchval("SELECT current_database()")
            tables = await conn.fetchval("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
            return name.startswith("scouter_test_"), tables
        finally:
            await conn.close()

    assert (True, 0) == run(inspect)


@pytest.mark.postgres
def test_scratch_database_is_dropped_even_with_a_connection_open(postgres_dsn: str) -> None:
    """Leaving scratch_database drops the database although a client is still connected to it."""
    import asyncpg

    async def exists(name: str) -> bool:
        conn = await asyncpg.connect(postgres_dsn)
        try:
            return bool(await conn.fetchval("SELECT count(*) FROM pg_database WHERE datname = $1", name))
        finally:
            await conn.close()

    async def drop_while_connected() -> tuple[bool, bool]:
        with services.scratch_database(postgres_dsn) as dsn:
            name = dsn.rsplit("/", 1)[1]
            lingering = await asyncpg.connect(dsn)
            existed = await exists(name)
        # the drop terminated `lingering`; closing it must not raise
        lingering.terminate()
        return existed, await exists(name)

    assert (True, False) == run(drop_while_connected)


@pytest.mark.postgres
@pytest.mark.parametrize("binaries", ["debian", "embedded"])
def test_private_postgres_keeps_its_data_across_a_restart(monkeypatch: pytest.MonkeyPatch, binaries: str) -> None:
    """A private PostgreSQL (either kind of binaries) serves on TCP and keeps data and port across stop/start."""
    if binaries == "debian" and _postgres._debian_postgres_bin() is None:
        pytest.skip("Debian's postgresql package is not installed")
    monkeypatch.setenv(_postgres.ENV_POSTGRES_BINARIES, binaries)

    async def write(dsn: str) -> None:
        import asyncpg

        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute("CREATE TABLE kept (v int); INSERT INTO kept VALUES (42)")
        finally:
            await conn.close()

    with services.private_postgres() as server:
        dsn = server.dsn
        run(lambda: write(dsn))
        server.stop()
        stopped = server.running
        server.start()
        assert (False, dsn, 42) == (stopped, server.dsn, run(lambda: _fetch(dsn, "SELECT v FROM kept")))


# --------------------------------------------------------------------------------------------------------------------
# RabbitMQ


async def _amqp_publish(url: str, queue_name: str, body: bytes, *, durable: bool = False) -> None:
    import aio_pika

    connection = await aio_pika.connect(url, timeout=10)
    async with connection:
        channel = await connection.channel()  # publisher confirms: publish returns once the broker has it
        await channel.declare_queue(queue_name, durable=durable, exclusive=False, auto_delete=False)
        delivery = aio_pika.DeliveryMode.PERSISTENT if durable else aio_pika.DeliveryMode.NOT_PERSISTENT
        await channel.default_exchange.publish(aio_pika.Message(body, delivery_mode=delivery), routing_key=queue_name)


async def _amqp_get(url: str, queue_name: str, *, durable: bool = False) -> bytes:
    import aio_pika

    connection = await aio_pika.connect(url, timeout=10)
    async with connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(queue_name, durable=durable, exclusive=False, auto_delete=False)
        message = await queue.get(timeout=5)
        await message.ack()
        await queue.delete(if_unused=False, if_empty=False)
        return message.body


@pytest.mark.rabbitmq
def test_rabbitmq_url_round_trips_a_message(rabbitmq_url: str) -> None:
    """A message published to a declared queue on the session RabbitMQ comes back from basic.get."""
    queue_name = unique("scouter-test-services")
    run(lambda: _amqp_publish(rabbitmq_url, queue_name, b"hello"))
    assert b"hello" == run(lambda: _amqp_get(rabbitmq_url, queue_name))


@pytest.mark.rabbitmq
@pytest.mark.slow
def test_private_rabbitmq_node_keeps_a_durable_message_across_a_restart(
    private_rabbitmq_node: services.RabbitNode,
) -> None:
    """A persistent message in a durable queue survives stop/start of a private node on the same URL."""
    url = private_rabbitmq_node.url
    queue_name = unique("scouter-test-restart")
    run(lambda: _amqp_publish(url, queue_name, b"kept", durable=True))
    private_rabbitmq_node.stop()
    down = _rabbitmq._amqp_answers(url, timeout=5)
    private_rabbitmq_node.start()
    assert (False, url, b"kept") == (
        down,
        private_rabbitmq_node.url,
        run(lambda: _amqp_get(url, queue_name, durable=True)),
    )


# --------------------------------------------------------------------------------------------------------------------
# Kafka


async def _kafka_round_trip(brokers: str, values: list[bytes]) -> list[bytes]:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    topic, group = unique("scouter-test-topic"), unique("scouter-test-group")
    admin = AIOKafkaAdminClient(bootstrap_servers=brokers)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=brokers)
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(topic, value)
    finally:
        await producer.stop()
    # tansu: earliest (its "latest" offsets are wrong) and a short session so the group join takes ~3 s
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=brokers,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        session_timeout_ms=6000,
        heartbeat_interval_ms=500,
    )
    await consumer.start()
    try:
        received: list[bytes] = []
        while len(received) < len(values):
            batches = await consumer.getmany(timeout_ms=1000)
            received += [record.value for records in batches.values() for record in records]
        await consumer.commit()
    finally:
        await consumer.stop()
    return received


@pytest.mark.kafka
def test_kafka_brokers_round_trip_messages(kafka_brokers: str) -> None:
    """Messages produced to a created topic on the session broker are consumed in order by a group member."""
    values = [b"one", b"two", b"three"]
    assert values == run(lambda: _kafka_round_trip(kafka_brokers, values))


@pytest.mark.kafka
def test_ensure_kafka_is_always_our_own_broker(kafka_brokers: str) -> None:
    """The session broker is a tansu process this process started, not something found on a default port."""
    broker = services.kafka_broker()
    assert (kafka_brokers, True, "tansu") == (broker.brokers, broker.running, Path(broker.binary).name)


@pytest.mark.kafka
@pytest.mark.slow
def test_private_kafka_broker_serves_again_on_the_same_port_after_a_restart(
    private_kafka_broker: services.KafkaBroker,
) -> None:
    """A private tansu broker refuses connections while stopped and serves again on the same address."""
    brokers = private_kafka_broker.brokers
    host, port = brokers.split(":")
    private_kafka_broker.stop()
    try:
        socket.create_connection((host, int(port)), timeout=1).close()
        refused = False
    except OSError:
        refused = True
    private_kafka_broker.start()
    assert (True, brokers, [b"again"]) == (
        refused,
        private_kafka_broker.brokers,
        run(lambda: _kafka_round_trip(brokers, [b"again"])),
    )
