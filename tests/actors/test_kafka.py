"""The Kafka consumer actor against a real broker (tansu) and PostgreSQL: exactly once, poison, positions, faults."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio
from aiokafka import AIOKafkaConsumer, TopicPartition
from trio_asyncio import aio_as_trio

from actors.database import Database
from actors.kafka import KafkaConsumerActor, consumer_options
from config import KafkaSettings
from tests.actors.brokers import (
    Harness,
    create_topic,
    expected_values,
    produce,
    quarantined,
    spc_message,
    stored_values,
    unique,
    wait_for_rows,
)

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


def settings_for(brokers: str, topic: str, group: str, **extra: Any) -> KafkaSettings:
    """Short session timeouts: tansu makes every join wait about half of it."""
    return KafkaSettings(
        brokers=brokers,
        topics=(topic,),
        group=group,
        **{"session_timeout_ms": 6000, "heartbeat_interval_ms": 500, **extra},
    )


@pytest.fixture
async def harness(db: Database) -> AsyncIterator[Harness]:
    async with Harness.open(db) as h:
        yield h


def consumer(harness: Harness, settings: KafkaSettings, index: int = 0, **extra: Any) -> KafkaConsumerActor:
    return KafkaConsumerActor(settings, index, harness.handle, harness.inbox, harness.board, harness.metrics, **extra)


def test_sasl_only_with_user_and_password() -> None:
    """SASL/SSL options are set only when both KAFKA_USERNAME and KAFKA_PASSWORD are (upstream's rule)."""
    plain = consumer_options(KafkaSettings(username="u"), 0)
    sasl = consumer_options(KafkaSettings(username="u", password="p", security_protocol="SASL_PLAINTEXT"), 1)
    assert "security_protocol" not in plain
    assert ("SASL_PLAINTEXT", "PLAIN", "u", "p") == (
        sasl["security_protocol"],
        sasl["sasl_mechanism"],
        sasl["sasl_plain_username"],
        sasl["sasl_plain_password"],
    )
    assert "ssl_context" not in sasl
    assert "ssl_context" in consumer_options(KafkaSettings(username="u", password="p"), 0)  # SASL_SSL by default
    assert (False, "earliest", "scouter") == (
        plain["enable_auto_commit"],
        plain["auto_offset_reset"],
        plain["group_id"],
    )


async def test_every_record_stored_once_and_positions_committed(harness: Harness, kafka_brokers: str) -> None:
    """300 gzip messages over 2 partitions: every record stored once; the next offsets are in PostgreSQL and Kafka."""
    topic, group, space = unique("t"), unique("g"), unique("sp")
    await create_topic(kafka_brokers, topic, 2)
    await produce(kafka_brokers, topic, [spc_message(space, n) for n in range(300)])
    actor = consumer(harness, settings_for(kafka_brokers, topic, group))
    async with harness.running(actor):
        await wait_for_rows(harness.db, space, 900)
        assert {} == harness.board.problems()
    assert expected_values(range(300)) == await stored_values(harness.db, space)
    offsets = await harness.db.fetch(
        "SELECT partition, next_offset FROM scouter.consumer_offsets WHERE consumer_group = $1", group
    )
    assert 300 == sum(r["next_offset"] for r in offsets)
    assert 300 == harness.counter("scouter_broker_messages_consumed_total", transport="kafka")


async def test_a_backlog_is_stored_in_fewer_write_requests_than_fetches(db: Database, kafka_brokers: str) -> None:
    """While the writer is busy, the consumer fetches ahead; the batches waiting when it is free again join into
    one write request (one COMMIT), with the position of the last of them, and every record is stored once."""
    topic, group, space = unique("t"), unique("g"), unique("sp")
    await create_topic(kafka_brokers, topic, 1)
    await produce(kafka_brokers, topic, [spc_message(space, n) for n in range(100)], partition=0)
    async with Harness.open(db, writer=False) as harness:
        async with harness.running(consumer(harness, settings_for(kafka_brokers, topic, group, max_batch=10))):
            await harness.wait_for_write_request()  # the first batch waits for the writer, the next ones queue
            await trio.sleep(1)  # a fetch of ten messages takes milliseconds: the fetch stage is ahead by now
            await harness.start_writer()
            await wait_for_rows(harness.db, space, 300)
        requests = harness.writer.stats["requests"]
    assert expected_values(range(100)) == await stored_values(db, space)
    assert requests < 10  # ten fetches at least: at most ten messages each
    stored = await db.fetchval("SELECT next_offset FROM scouter.consumer_offsets WHERE consumer_group = $1", group)
    assert 100 == stored


async def test_poison_messages_are_quarantined_and_the_rest_stored(harness: Harness, kafka_brokers: str) -> None:
    """Undecodable and oversized messages between good ones: each is quarantined with its raw bytes and a reason,
    every good record is stored once, and the partition's position moves past all of them."""
    topic, group, space = unique("t"), unique("g"), unique("sp")
    await create_topic(kafka_brokers, topic, 1)
    oversized = b'{"records": [' + b" " * (10 * 1024 * 1024) + b"]}"
    poison = [b"not json", b'{"records": [{"Spc": {"space": "x"}}]}', oversized]
    payloads = []
    for n in range(30):
        payloads.append(spc_message(space, n))
        if n % 10 == 5:
            payloads.append(poison[n // 10])
    await produce(kafka_brokers, topic, payloads, partition=0, max_request_size=20 * 1024 * 1024)
    async with harness.running(consumer(harness, settings_for(kafka_brokers, topic, group))):
        await wait_for_rows(harness.db, space, 90)
        with trio.fail_after(30):
            while len(await quarantined(harness.db)) < 3:
                await trio.sleep(0.1)
    assert expected_values(range(30)) == await stored_values(harness.db, space)
    rows = await quarantined(harness.db)
    assert [f"kafka:{topic}/0@{offset}" for offset in (6, 17, 28)] == [r["source"] for r in rows]
    assert poison == [bytes(r["raw"]) for r in rows]
    assert rows[0]["reason"].startswith("body is not valid JSON")
    assert "records[0].Spc.created_at: missing field" == rows[1]["reason"]
    assert "exceeds the limit of 10485760 bytes" in rows[2]["reason"]
    stored = await harness.db.fetchval(
        "SELECT next_offset FROM scouter.consumer_offsets WHERE consumer_group = $1 AND topic = $2", group, topic
    )
    assert 33 == stored
    assert 3 == harness.counter("scouter_broker_messages_quarantined_total", transport="kafka")


async def test_postgres_positions_win_over_kafka_commits(
    harness: Harness, kafka_brokers: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A consumer that stored rows but never committed to Kafka (as after a kill between COMMIT and the Kafka
    commit): its successor seeks to the positions in PostgreSQL (recognising the last stored message) and stores
    nothing twice, without needing the conflict check of the offset upsert."""
    topic, group, space = unique("t"), unique("g"), unique("sp")
    await create_topic(kafka_brokers, topic, 2)
    await produce(kafka_brokers, topic, [spc_message(space, n) for n in range(100)])
    # tansu: the first member of a group never leaves it cleanly; a shorter session lets the next one in sooner
    settings = settings_for(kafka_brokers, topic, group, session_timeout_ms=3000)
    async with harness.running(consumer(harness, settings, commit_to_kafka=False)):
        await wait_for_rows(harness.db, space, 300)
    await produce(kafka_brokers, topic, [spc_message(space, n) for n in range(100, 150)])
    async with harness.running(consumer(harness, settings)):
        await wait_for_rows(harness.db, space, 450)
        await trio.sleep(1)  # anything stored twice would show up by now
    assert expected_values(range(150)) == await stored_values(harness.db, space)
    assert [] == [r.message for r in caplog.records if "stored elsewhere" in r.message or "replaced" in r.message]


async def test_a_member_joining_mid_stream_shares_the_partitions(
    harness: Harness, kafka_brokers: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A second consumer joins the group while the first one is storing a stream: the partitions are rebalanced
    between them and every record is stored exactly once."""
    caplog.set_level(logging.INFO, logger="actors.kafka")
    topic, group, space = unique("t"), unique("g"), unique("sp")
    await create_topic(kafka_brokers, topic, 4)
    settings = settings_for(kafka_brokers, topic, group, max_batch=20)

    async def stream(first: int, count: int) -> None:
        for start in range(first, first + count, 20):
            await produce(kafka_brokers, topic, [spc_message(space, n) for n in range(start, start + 20)])
            await trio.sleep(0.05)

    async with harness.running(consumer(harness, settings, 0)):
        await produce(kafka_brokers, topic, [spc_message(space, n) for n in range(100)])
        await wait_for_rows(harness.db, space, 300)
        async with harness.running(consumer(harness, settings, 1)), trio.open_nursery() as producers:
            producers.start_soon(stream, 100, 600)
            with trio.fail_after(60):
                while not any(r.message.startswith("kafka-1: assigned") for r in caplog.records):
                    await trio.sleep(0.1)
            await wait_for_rows(harness.db, space, 2100)
            await trio.sleep(1)
    assert expected_values(range(700)) == await stored_values(harness.db, space)
    assignments = [r.message for r in caplog.records if ": assigned" in r.message]
    assert 2 <= sum(message.startswith("kafka-0: assigned") for message in assignments)  # rebalanced


async def test_broker_restart_reconnects_and_starts_the_new_log_over(
    harness: Harness, private_kafka_broker: Any
) -> None:
    """The broker goes away and comes back (memory storage: its log is gone): readiness fails meanwhile, the
    consumer reconnects by itself, recognises that its stored positions belong to the lost log, and stores every
    message of the new log exactly once, including those below the old positions."""
    broker = private_kafka_broker
    topic, group, space = unique("t"), unique("g"), unique("sp")
    await create_topic(broker.brokers, topic, 2)
    await produce(broker.brokers, topic, [spc_message(space, n) for n in range(100)])
    failing_seen = trio.Event()

    async def watch() -> None:
        while not failing_seen.is_set():
            if "kafka-0" in harness.board.problems():
                failing_seen.set()
            await trio.sleep(0.05)

    async with harness.running(consumer(harness, settings_for(broker.brokers, topic, group))):
        await wait_for_rows(harness.db, space, 300)
        assert {} == harness.board.problems()
        async with trio.open_nursery() as watcher:
            watcher.start_soon(watch)
            await trio.to_thread.run_sync(broker.stop)
            with trio.fail_after(30):
                await failing_seen.wait()
        await trio.to_thread.run_sync(broker.start)
        await create_topic(broker.brokers, topic, 2)
        await produce(broker.brokers, topic, [spc_message(space, n) for n in range(100, 400)])
        await wait_for_rows(harness.db, space, 1200, within=90)
        await trio.sleep(1)
        assert {} == harness.board.problems()
    assert expected_values(range(400)) == await stored_values(harness.db, space)
    assert harness.counter("scouter_broker_reconnects_total", transport="kafka") >= 1


async def test_broker_restart_keeping_its_log_resumes_without_loss_or_doubles(
    harness: Harness, persistent_kafka_broker: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """The broker stops and comes back on the same port with its log, topics and offsets (tansu on S3 storage):
    readiness fails meanwhile, the consumer reconnects by itself, recognises the log as the one its positions
    belong to (nothing is started over), and every message before and after the restart is stored exactly once."""
    broker = persistent_kafka_broker
    topic, group, space = unique("t"), unique("g"), unique("sp")
    await create_topic(broker.brokers, topic, 2)
    await produce(broker.brokers, topic, [spc_message(space, n) for n in range(100)])
    failing_seen = trio.Event()

    async def watch() -> None:
        while not failing_seen.is_set():
            if "kafka-0" in harness.board.problems():
                failing_seen.set()
            await trio.sleep(0.05)

    async with harness.running(consumer(harness, settings_for(broker.brokers, topic, group))):
        await wait_for_rows(harness.db, space, 300)
        async with trio.open_nursery() as watcher:
            watcher.start_soon(watch)
            await trio.to_thread.run_sync(broker.stop)
            with trio.fail_after(30):
                await failing_seen.wait()
        await trio.to_thread.run_sync(broker.start)
        await produce(broker.brokers, topic, [spc_message(space, n) for n in range(100, 200)])  # no topic re-created
        await wait_for_rows(harness.db, space, 600, within=90)
        await trio.sleep(1)  # anything stored twice would show up by now
        assert {} == harness.board.problems()
    assert expected_values(range(200)) == await stored_values(harness.db, space)
    assert [] == [r.message for r in caplog.records if "log was replaced" in r.message]
    offsets = await harness.db.fetch(
        "SELECT partition, next_offset FROM scouter.consumer_offsets WHERE consumer_group = $1", group
    )
    assert 200 == sum(r["next_offset"] for r in offsets)  # the log went on from where it was: offsets 0..199


async def test_a_revoke_while_a_batch_is_held_past_the_grace_stores_nothing_twice(
    db: Database, kafka_brokers: str, caplog: pytest.LogCaptureFixture
) -> None:
    """kafka-0 owns both partitions and its batch is held at the writer (not started) when kafka-1 joins: the
    revoke waits out its grace and hands a partition over with that batch still unstored, so kafka-1 reads the same
    messages again. When the writer runs, the conditional offset upsert fences the later copy (the owner whose
    batch commits second re-reads the stored positions): every record is stored exactly once."""
    caplog.set_level(logging.INFO, logger="actors.kafka")
    topic, group, space = unique("t"), unique("g"), unique("sp")
    await create_topic(kafka_brokers, topic, 2)
    await produce(kafka_brokers, topic, [spc_message(space, n) for n in range(40)])
    settings = settings_for(kafka_brokers, topic, group, session_timeout_ms=3000, max_batch=40)  # grace: 3 s
    async with Harness.open(db, writer=False) as harness:
        async with harness.running(consumer(harness, settings, 0)):
            await harness.wait_for_write_request()  # kafka-0's batch, unanswered
            async with harness.running(consumer(harness, settings, 1)):
                with trio.fail_after(60):
                    while not any(r.message.startswith("kafka-1: assigned") for r in caplog.records):
                        await trio.sleep(0.1)
                    while harness.writer.inbox.statistics().current_buffer_used < 2:  # kafka-1's copy queued
                        await trio.sleep(0.05)
                await harness.start_writer()
                await wait_for_rows(harness.db, space, 120)
                await produce(kafka_brokers, topic, [spc_message(space, n) for n in range(40, 80)])
                await wait_for_rows(harness.db, space, 240)
                await trio.sleep(1)  # anything stored twice would show up by now
        assert expected_values(range(80)) == await stored_values(harness.db, space)
    revoked = [r.message for r in caplog.records if "revoked while a batch was still being stored" in r.message]
    assert ["kafka-0: partitions revoked while a batch was still being stored"] == revoked
    offsets = await db.fetch("SELECT next_offset FROM scouter.consumer_offsets WHERE consumer_group = $1", group)
    assert 80 == sum(r["next_offset"] for r in offsets)


async def _committed(brokers: str, group: str, topic: str, partitions: int) -> dict[int, int | None]:
    reader = AIOKafkaConsumer(bootstrap_servers=brokers, group_id=group, enable_auto_commit=False)
    await reader.start()
    try:
        return {p: await reader.committed(TopicPartition(topic, p)) for p in range(partitions)}
    finally:
        await reader.stop()


async def test_graceful_stop_finishes_the_batch_in_flight(db: Database, kafka_brokers: str) -> None:
    """Asked to stop while its batch waits for the writer, the consumer waits for the COMMIT, commits the same
    offsets to Kafka, and leaves the group."""
    topic, group, space = unique("t"), unique("g"), unique("sp")
    await create_topic(kafka_brokers, topic, 1)
    await produce(kafka_brokers, topic, [spc_message(space, n) for n in range(50)], partition=0)
    async with Harness.open(db, writer=False) as harness:
        actor = consumer(harness, settings_for(kafka_brokers, topic, group, max_batch=20))
        async with harness.running(actor) as stop:
            await harness.wait_for_write_request()
            stop.set()
            await trio.sleep(0.2)
            await harness.start_writer()
        assert expected_values(range(20)) == await stored_values(harness.db, space)
        stored = await harness.db.fetchval(
            "SELECT next_offset FROM scouter.consumer_offsets WHERE consumer_group = $1", group
        )
    assert 20 == stored
    assert {0: 20} == await aio_as_trio(_committed)(kafka_brokers, group, topic, 1)
