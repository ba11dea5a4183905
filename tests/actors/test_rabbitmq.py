"""The RabbitMQ consumer actor against a real broker and PostgreSQL: exactly once, poison, redelivery, faults."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aio_pika
import pytest
import trio
from trio_asyncio import aio_as_trio

from actors import rabbitmq
from actors.database import Database
from actors.rabbitmq import RabbitConsumerActor
from config import RabbitSettings
from tests.actors.brokers import (
    Harness,
    expected_values,
    observability_message,
    observability_rows,
    publish,
    quarantined,
    spc_message,
    stored_values,
    unique,
    wait_for_rows,
)

pytestmark = [pytest.mark.rabbitmq, pytest.mark.postgres]


@pytest.fixture
async def harness(db: Database) -> AsyncIterator[Harness]:
    async with Harness.open(db) as h:
        yield h


def consumer(harness: Harness, url: str, queue: str, index: int = 0, **extra: Any) -> RabbitConsumerActor:
    settings = RabbitSettings(addr=url, queue=queue, prefetch=extra.pop("prefetch", 50))
    return RabbitConsumerActor(settings, index, harness.handle, harness.inbox, harness.board, harness.metrics, **extra)


async def _left_in_queue(url: str, queue: str) -> int:
    """Messages a fresh consumer still gets within half a second (anything unacknowledged was requeued)."""
    connection = await aio_pika.connect(url)
    try:
        channel = await connection.channel()
        declared = await channel.declare_queue(queue, durable=False, exclusive=False, auto_delete=False)
        count = 0
        while await declared.get(fail=False, timeout=0.5) is not None:
            count += 1  # left unacknowledged: closing the connection puts it back
        return count
    finally:
        await connection.close()


async def left_in_queue(url: str, queue: str) -> int:
    return await aio_as_trio(_left_in_queue)(url, queue)


async def test_every_record_stored_once_and_every_message_acknowledged(harness: Harness, rabbitmq_url: str) -> None:
    """500 client-shaped messages and two consumers: every record stored once, nothing left unacknowledged."""
    queue, space = unique("q"), unique("sp")
    await publish(rabbitmq_url, queue, [spc_message(space, n) for n in range(500)])
    async with (
        harness.running(consumer(harness, rabbitmq_url, queue, 0)),
        harness.running(consumer(harness, rabbitmq_url, queue, 1)),
    ):
        await wait_for_rows(harness.db, space, 1500)
        assert {} == harness.board.problems()
    assert expected_values(range(500)) == await stored_values(harness.db, space)
    assert 0 == await left_in_queue(rabbitmq_url, queue)
    assert 500 == harness.counter("scouter_broker_messages_consumed_total", transport="rabbitmq")


async def test_poison_messages_are_quarantined_and_acknowledged(harness: Harness, rabbitmq_url: str) -> None:
    """Undecodable messages between good ones are quarantined with raw bytes and reason, then acknowledged."""
    queue, space = unique("q"), unique("sp")
    poison = [b"\xff\xfe not json", b'{"records": [{"Drift": {}}]}']
    payloads = [spc_message(space, n) for n in range(20)]
    payloads[5:5] = [poison[0]]
    payloads[15:15] = [poison[1]]
    await publish(rabbitmq_url, queue, payloads)
    async with harness.running(consumer(harness, rabbitmq_url, queue)):
        await wait_for_rows(harness.db, space, 60)
        with trio.fail_after(30):
            while len(await quarantined(harness.db)) < 2:
                await trio.sleep(0.1)
    assert expected_values(range(20)) == await stored_values(harness.db, space)
    rows = await quarantined(harness.db)
    assert [f"rabbitmq:{queue}"] * 2 == [r["source"] for r in rows]
    assert poison == [bytes(r["raw"]) for r in rows]
    assert rows[0]["reason"].startswith("body is not valid JSON")
    assert 'records[0]: unknown record kind "Drift"' == rows[1]["reason"]
    assert 0 == await left_in_queue(rabbitmq_url, queue)
    assert 2 == harness.counter("scouter_broker_messages_quarantined_total", transport="rabbitmq")


async def test_redelivery_after_commit_before_ack_stores_nothing_twice(
    harness: Harness, rabbitmq_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The connection drops right after the first batch is committed, before its ack: the broker redelivers it,
    the consumer recognises every message by its digest, acknowledges it and stores nothing twice."""
    queue, space = unique("q"), unique("sp")
    await publish(rabbitmq_url, queue, [spc_message(space, n) for n in range(200)])
    real_ack = rabbitmq._Link.ack
    dropped: list[int] = []

    async def drop_instead_of_first_ack(link: Any, last: Any) -> None:
        if not dropped:
            dropped.append(last.delivery_tag)
            await link.connection.close()  # everything unacknowledged goes back to the queue
            raise rabbitmq._LinkLost("dropped by the test")
        await real_ack(link, last)

    monkeypatch.setattr(rabbitmq._Link, "ack", drop_instead_of_first_ack)
    async with harness.running(consumer(harness, rabbitmq_url, queue, prefetch=20)):
        await wait_for_rows(harness.db, space, 600)
        with trio.fail_after(30):
            while harness.counter("scouter_broker_messages_consumed_total", transport="rabbitmq") < 200 + dropped[0]:
                await trio.sleep(0.1)
    assert expected_values(range(200)) == await stored_values(harness.db, space)
    assert dropped[0] >= 1
    assert dropped[0] == harness.counter("scouter_broker_messages_duplicate_total", transport="rabbitmq")
    assert 1 == harness.counter("scouter_broker_reconnects_total", transport="rabbitmq")
    assert 0 == await left_in_queue(rabbitmq_url, queue)


async def test_identical_bodies_published_seconds_apart_are_both_stored(harness: Harness, rabbitmq_url: str) -> None:
    """Two observability reports of one route with equal counts are byte-identical; both are first deliveries, so
    both are stored (in one batch or seconds apart), and nothing is counted as a duplicate."""
    queue, space = unique("q"), unique("sp")
    report = observability_message(space)
    await publish(rabbitmq_url, queue, [report, report])
    async with harness.running(consumer(harness, rabbitmq_url, queue)):
        with trio.fail_after(30):
            while await observability_rows(harness.db, space) < 2:
                await trio.sleep(0.1)
        await trio.sleep(2)
        await publish(rabbitmq_url, queue, [report])
        with trio.fail_after(30):
            while await observability_rows(harness.db, space) < 3:
                await trio.sleep(0.1)
        await trio.sleep(0.5)
    assert 3 == await observability_rows(harness.db, space)
    assert 3 == harness.counter("scouter_broker_messages_consumed_total", transport="rabbitmq")
    assert 0 == harness.counter("scouter_broker_messages_duplicate_total", transport="rabbitmq")
    assert 0 == await left_in_queue(rabbitmq_url, queue)


async def test_identical_reports_redelivered_after_commit_are_stored_once(
    harness: Harness, rabbitmq_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two identical reports are stored, then the connection drops before their ack: the broker redelivers both
    (flagged redelivered), they match the digest stored with them, and nothing is stored twice."""
    queue, space = unique("q"), unique("sp")
    report = observability_message(space)
    await publish(rabbitmq_url, queue, [report, report])
    real_ack = rabbitmq._Link.ack
    dropped: list[int] = []

    async def drop_instead_of_first_ack(link: Any, last: Any) -> None:
        if not dropped:
            dropped.append(last.delivery_tag)
            await link.connection.close()
            raise rabbitmq._LinkLost("dropped by the test")
        await real_ack(link, last)

    monkeypatch.setattr(rabbitmq._Link, "ack", drop_instead_of_first_ack)
    async with harness.running(consumer(harness, rabbitmq_url, queue)):
        with trio.fail_after(30):
            while harness.counter("scouter_broker_messages_duplicate_total", transport="rabbitmq") < 2:
                await trio.sleep(0.1)
    assert 2 == await observability_rows(harness.db, space)
    assert 0 == await left_in_queue(rabbitmq_url, queue)


async def test_an_identical_report_in_flight_when_the_connection_drops_is_stored_after_the_redelivery(
    harness: Harness, rabbitmq_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Report 1 is stored and report 2 (byte-identical) is delivered but not stored yet when the connection drops
    before the ack: both come back flagged redelivered. Only one stored copy was left unacknowledged, so one of them
    is recognised and the other is stored: a new message is never taken for an old one with the same body."""
    queue, space = unique("q"), unique("sp")
    report = observability_message(space)
    await publish(rabbitmq_url, queue, [report, report])
    real_exchange, real_ack = rabbitmq._Link.exchange, rabbitmq._Link.ack
    first: list[bool] = []

    async def one_message_first(link: Any, ack: Any, wait: float) -> list[Any]:
        batch = await real_exchange(link, ack, wait)
        while not first and len(batch) < 2:  # both delivered to this connection: the first batch takes one
            batch += await real_exchange(link, None, wait)
        if not first and batch:
            first.append(True)
            link.buffer[:0] = batch[1:]
            return batch[:1]
        return batch

    async def drop_instead_of_first_ack(link: Any, last: Any) -> None:
        if len(first) == 1:
            first.append(True)
            await link.connection.close()
            raise rabbitmq._LinkLost("dropped by the test")
        await real_ack(link, last)

    monkeypatch.setattr(rabbitmq._Link, "exchange", one_message_first)
    monkeypatch.setattr(rabbitmq._Link, "ack", drop_instead_of_first_ack)
    async with harness.running(consumer(harness, rabbitmq_url, queue)):
        with trio.fail_after(30):
            while harness.counter("scouter_broker_messages_duplicate_total", transport="rabbitmq") < 1:
                await trio.sleep(0.1)
            while await observability_rows(harness.db, space) < 2:
                await trio.sleep(0.1)
        await trio.sleep(0.5)
    assert 2 == await observability_rows(harness.db, space)
    assert 1 == harness.counter("scouter_broker_messages_duplicate_total", transport="rabbitmq")
    assert 0 == await left_in_queue(rabbitmq_url, queue)


async def test_a_message_id_published_twice_is_stored_once(harness: Harness, rabbitmq_url: str) -> None:
    """A producer that sets message ids and retries a publish delivers the same id again (not flagged redelivered),
    in the same batch or a later one: it is stored once, and every copy is acknowledged."""
    queue, space = unique("q"), unique("sp")
    await publish(rabbitmq_url, queue, [spc_message(space, 1)], message_id="m-1")
    await publish(rabbitmq_url, queue, [spc_message(space, 7), spc_message(space, 7)], message_id="m-7")
    async with harness.running(consumer(harness, rabbitmq_url, queue)):
        await wait_for_rows(harness.db, space, 6)
        await publish(rabbitmq_url, queue, [spc_message(space, 7)], message_id="m-7")
        await publish(rabbitmq_url, queue, [spc_message(space, 2)], message_id="m-2")
        await wait_for_rows(harness.db, space, 9)
        with trio.fail_after(30):
            while harness.counter("scouter_broker_messages_consumed_total", transport="rabbitmq") < 5:
                await trio.sleep(0.1)
    assert expected_values([1, 2, 7]) == await stored_values(harness.db, space)
    assert 2 == harness.counter("scouter_broker_messages_duplicate_total", transport="rabbitmq")
    assert 0 == await left_in_queue(rabbitmq_url, queue)


async def test_broker_restart_reconnects_and_resumes(harness: Harness, private_rabbitmq_node: Any) -> None:
    """The broker stops and comes back: readiness fails meanwhile, the consumer reconnects with backoff,
    re-declares the (non-durable) queue and stores everything published after the restart exactly once."""
    node = private_rabbitmq_node
    queue, space = unique("q"), unique("sp")
    await publish(node.url, queue, [spc_message(space, n) for n in range(100)])
    actor = consumer(harness, node.url, queue)
    actor.backoff.maximum = 1.0
    async with harness.running(actor):
        await wait_for_rows(harness.db, space, 300)
        assert {} == harness.board.problems()
        await trio.to_thread.run_sync(node.stop)
        with trio.fail_after(10):
            while "rabbitmq-0" not in harness.board.problems():
                await trio.sleep(0.05)
        await trio.to_thread.run_sync(node.start)
        with trio.fail_after(30):
            while harness.board.problems():
                await trio.sleep(0.1)
        await publish(node.url, queue, [spc_message(space, n) for n in range(100, 250)])
        await wait_for_rows(harness.db, space, 750)
        await trio.sleep(0.5)
    assert expected_values(range(250)) == await stored_values(harness.db, space)
    assert harness.counter("scouter_broker_reconnects_total", transport="rabbitmq") >= 1


async def test_graceful_stop_finishes_the_batch_in_flight(db: Database, rabbitmq_url: str) -> None:
    """Asked to stop while its batch waits for the writer, the consumer waits for the COMMIT, acknowledges that
    batch, and leaves; what it had not taken goes back to the queue untouched."""
    queue, space = unique("q"), unique("sp")
    await publish(rabbitmq_url, queue, [spc_message(space, n) for n in range(30)])
    async with Harness.open(db, writer=False) as harness:
        async with harness.running(consumer(harness, rabbitmq_url, queue, prefetch=10)) as stop:
            await harness.wait_for_write_request()
            stop.set()
            await trio.sleep(0.2)
            await harness.start_writer()
        stored = await stored_values(harness.db, space)
    assert 0 < len(stored) <= 30  # one batch of at most the prefetch...
    assert stored == expected_values(range(len(stored) // 3))  # ...in publishing order
    assert 30 - len(stored) // 3 == await left_in_queue(rabbitmq_url, queue)


async def test_a_batch_resent_after_a_writer_timeout_is_stored_once(db: Database, rabbitmq_url: str) -> None:
    """The writer answers late, so the consumer sends the same batch again: both requests reach the writer, and
    the second finds the first one's mark and stores nothing, even for identical first deliveries."""
    queue, space = unique("q"), unique("sp")
    report = observability_message(space)
    await publish(rabbitmq_url, queue, [report, report, spc_message(space, 1)])
    async with Harness.open(db, writer=False) as harness:
        async with harness.running(consumer(harness, rabbitmq_url, queue, reply_within=0.3)):
            await harness.wait_for_write_request()
            with trio.fail_after(30):
                while harness.writer.inbox.statistics().current_buffer_used < 2:
                    await trio.sleep(0.05)
            await harness.start_writer()
            await wait_for_rows(harness.db, space, 3)
            with trio.fail_after(30):
                while await observability_rows(harness.db, space) < 2:
                    await trio.sleep(0.05)
            await trio.sleep(1)
        assert 2 == await observability_rows(harness.db, space)
        assert expected_values([1]) == await stored_values(harness.db, space)
    assert 0 == await left_in_queue(rabbitmq_url, queue)


async def test_a_batch_whose_connection_dropped_while_waiting_for_its_writer_stores_nothing(
    db: Database, rabbitmq_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Replica A's batch of two identical reports waits for A's slow writer when A's connection drops; the broker
    redelivers them to replica B (its own writer), which stores them first. A's late request then stores nothing:
    its messages were first deliveries, which are never matched by their digests, so it checks its connection."""
    queue, space = unique("q"), unique("sp")
    report = observability_message(space)
    await publish(rabbitmq_url, queue, [report, report])
    links: list[Any] = []
    real_open = rabbitmq._Link.open

    async def remember(link: Any) -> None:
        links.append(link)
        await real_open(link)

    monkeypatch.setattr(rabbitmq._Link, "open", remember)
    async with Harness.open(db, writer=False) as slow, Harness.open(db) as other:
        async with slow.running(consumer(slow, rabbitmq_url, queue, 0)):
            await slow.wait_for_write_request()
            async with other.running(consumer(other, rabbitmq_url, queue, 1)):
                await aio_as_trio(links[0].connection.close)()  # A's deliveries go back to the queue, then to B
                with trio.fail_after(30):
                    while await observability_rows(db, space) < 2:
                        await trio.sleep(0.05)
                await slow.start_writer()  # A's request reaches the database late
                with trio.fail_after(30):
                    while slow.writer.statistics()["requests"] < 1:
                        await trio.sleep(0.05)
                await trio.sleep(0.5)
    assert 2 == await observability_rows(db, space)
    assert 0 == await left_in_queue(rabbitmq_url, queue)


async def test_old_digests_are_pruned_once_connected_long_enough(harness: Harness, rabbitmq_url: str) -> None:
    """Consumer 0 deletes RabbitMQ digests older than the retention, and only after being connected that long
    itself; younger digests stay until they are old enough; Kafka position digests are never touched."""
    queue, space = unique("q"), unique("sp")
    await harness.db.execute(
        "INSERT INTO scouter.ingested_messages (digest, source, created_at) VALUES"
        " ('\\x01', 'rabbitmq', now() - interval '1 hour'), ('\\x02', 'kafka', now() - interval '1 hour')"
    )
    settings = RabbitSettings(addr=rabbitmq_url, queue=queue, digest_retention=3)
    actor = RabbitConsumerActor(
        settings, 0, harness.handle, harness.inbox, harness.board, harness.metrics, prune_every=0.1
    )

    async def sources() -> list[str]:
        return sorted(r["source"] for r in await harness.db.fetch("SELECT source FROM scouter.ingested_messages"))

    async with harness.running(actor):
        with trio.fail_after(10):
            while "rabbitmq-0" in harness.board.problems():
                await trio.sleep(0.01)
        connected = trio.current_time()
        await trio.sleep(1.5)
        await publish(rabbitmq_url, queue, [spc_message(space, 1)])
        await wait_for_rows(harness.db, space, 3)
        # the old digest, the message's and its write request's mark: connected for less than the retention
        assert ["kafka", "rabbitmq", "rabbitmq", "rabbitmq-request"] == await sources()
        with trio.fail_after(10):
            while await sources() != ["kafka", "rabbitmq", "rabbitmq-request"]:
                await trio.sleep(0.05)
        assert trio.current_time() - connected >= 3
        with trio.fail_after(10):
            while await sources() != ["kafka"]:  # the young digest, once it is 3 s old too
                await trio.sleep(0.05)
