"""Kafka and RabbitMQ quarantine a message whose created_at is out of bounds, or whose feature name is longer than a
PostgreSQL index row can hold, like any malformed message."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import orjson
import pytest
import trio

from actors.database import Database
from actors.kafka import KafkaConsumerActor
from actors.rabbitmq import RabbitConsumerActor
from config import KafkaSettings, RabbitSettings
from tests.actors.brokers import (
    Harness,
    create_topic,
    produce,
    publish,
    quarantined,
    spc_message,
    unique,
    wait_for_rows,
)

pytestmark = pytest.mark.postgres
HORIZON = timedelta(hours=1)


@pytest.fixture
async def harness(db: Database) -> AsyncIterator[Harness]:
    async with Harness.open(db) as h:
        yield h


def _hostile(space: str) -> list[bytes]:
    """Year 9999 (crashed maintenance), year 1 (stored as -infinity), two hours ahead (past a one-hour horizon), and
    an incompressible 3,000-character feature (its rollup key failed the COPY of the whole batch)."""
    ahead = (datetime.now(UTC) + 2 * HORIZON).isoformat().replace("+00:00", "Z")
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    cases = [("f", "9999-12-31T10:00:00Z"), ("f", "0001-01-01T00:00:00Z"), ("f", ahead), (secrets.token_hex(1500), now)]
    return [
        orjson.dumps(
            {
                "records": [
                    {"Spc": {**dict(space=space, name="n", version="1", feature=feature, value=1.0), "created_at": at}}
                ]
            }
        )
        for feature, at in cases
    ]


async def _check(harness: Harness, space: str, payloads: list[bytes], transport: str) -> None:
    await wait_for_rows(harness.db, space, 6)  # the two good messages around the hostile ones
    with trio.fail_after(30):
        while len(await quarantined(harness.db)) < 4:
            await trio.sleep(0.1)
    rows = await quarantined(harness.db)
    assert payloads == [bytes(r["raw"]) for r in rows]
    reasons = [r["reason"] for r in rows]
    assert reasons[0].startswith("records[0].Spc.created_at: must not be more than 1 hour in the future")
    assert reasons[1].startswith("records[0].Spc.created_at: must not be before 1970-01-01T00:00:00Z")
    assert reasons[2].startswith("records[0].Spc.created_at: must not be more than 1 hour in the future")
    assert reasons[3].startswith("records[0].Spc.feature: must be at most 512 bytes of UTF-8, got 3000 bytes")
    assert 4 == harness.counter("scouter_broker_messages_quarantined_total", transport=transport)
    assert 6 == await harness.db.fetchval("SELECT count(*) FROM scouter.spc_drift")


@pytest.mark.rabbitmq
async def test_rabbitmq_quarantines_created_at_out_of_bounds(harness: Harness, rabbitmq_url: str) -> None:
    """Hostile created_at values between good messages: quarantined with raw bytes and reason, the rest stored."""
    queue, space = unique("q"), unique("sp")
    hostile = _hostile(space)
    await publish(rabbitmq_url, queue, [spc_message(space, 0), *hostile, spc_message(space, 1)])
    settings = RabbitSettings(addr=rabbitmq_url, queue=queue)
    actor = RabbitConsumerActor(
        settings, 0, harness.handle, harness.inbox, harness.board, harness.metrics, max_future=HORIZON
    )
    async with harness.running(actor):
        await _check(harness, space, hostile, "rabbitmq")


@pytest.mark.kafka
async def test_kafka_quarantines_created_at_out_of_bounds(harness: Harness, kafka_brokers: str) -> None:
    """The same over Kafka: quarantined, and the partition's position moves past them."""
    topic, group, space = unique("t"), unique("g"), unique("sp")
    await create_topic(kafka_brokers, topic, 1)
    hostile = _hostile(space)
    await produce(kafka_brokers, topic, [spc_message(space, 0), *hostile, spc_message(space, 1)], partition=0)
    settings = KafkaSettings(
        brokers=kafka_brokers, topics=(topic,), group=group, session_timeout_ms=6000, heartbeat_interval_ms=500
    )
    actor = KafkaConsumerActor(
        settings, 0, harness.handle, harness.inbox, harness.board, harness.metrics, max_future=HORIZON
    )
    async with harness.running(actor):
        await _check(harness, space, hostile, "kafka")
