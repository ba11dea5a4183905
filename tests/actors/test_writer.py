"""The batched writer against a real PostgreSQL: group commit, replies after COMMIT, isolation, drain."""

from __future__ import annotations

import datetime
import functools

import asyncpg
import pytest
import trio
import trio.testing
from prometheus_client import CollectorRegistry

from actors.database import Database, DatabaseHandle
from actors.metrics import ScouterMetrics
from actors.writer import WriterActor, WriteResult, open_inbox, write
from scouter.records import DecodedBatch, SpcRecord

NOW = datetime.datetime(2026, 11, 23, 12, 0, tzinfo=datetime.UTC)


def spc_batch(feature: str, n: int = 3) -> DecodedBatch:
    return DecodedBatch.from_records(
        SpcRecord(NOW + datetime.timedelta(microseconds=i), "sp", "nm", "1.0.0", feature, float(i)) for i in range(n)
    )


def make_writer(db: Database, capacity: int = 100) -> WriterActor:
    send, recv = open_inbox(capacity)
    return WriterActor(recv, send, DatabaseHandle(db), ScouterMetrics.create(CollectorRegistry(), process=False))


async def count(db: Database, feature: str | None = None) -> int:
    if feature is None:
        return int(await db.fetchval("SELECT count(*) FROM scouter.spc_drift"))
    return int(await db.fetchval("SELECT count(*) FROM scouter.spc_drift WHERE feature = $1", feature))


async def write_as_one_group(writer: WriterActor, batches: list[DecodedBatch]) -> list[WriteResult]:
    """Queue every batch before the writer starts, so that they are certainly flushed as one group; their answers."""
    results: dict[int, WriteResult] = {}

    async def sender(index: int) -> None:
        results[index] = await write(writer.inbox_sender, batches[index])

    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            for index in range(len(batches)):
                nursery.start_soon(sender, index)
            await trio.testing.wait_all_tasks_blocked()
            stop = trio.Event()
            await nursery.start(writer.run, stop)
            while len(results) < len(batches):
                await trio.sleep(0.01)
            stop.set()
    return [results[index] for index in range(len(batches))]


async def test_concurrent_senders_share_transactions_and_see_their_rows(db: Database) -> None:
    """50 concurrent senders: every one is answered ok after its rows are committed, in fewer flushes."""
    writer = make_writer(db)
    results: dict[str, WriteResult] = {}

    async def sender(i: int) -> None:
        results[f"f{i}"] = await write(writer.inbox_sender, spc_batch(f"f{i}"))
        assert 3 == await count(db, f"f{i}")  # visible to another connection as soon as we are answered

    stop = trio.Event()
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            await nursery.start(writer.run, stop)
            async with trio.open_nursery() as senders:
                for i in range(50):
                    senders.start_soon(sender, i)
            stop.set()
    assert all(r.ok and r.rows == 3 for r in results.values())
    assert 150 == await count(db)
    assert writer.statistics()["flushes"] < 50


async def test_a_bad_row_fails_only_its_sender(db: Database) -> None:
    """A constraint violation caused by one sender's row: that sender gets the error, the others' rows commit."""
    await db.execute("ALTER TABLE scouter.spc_drift ADD CONSTRAINT no_poison CHECK (feature <> 'poison')")
    features = ("good-1", "poison", "good-2", "good-3")
    answers = await write_as_one_group(make_writer(db), [spc_batch(feature) for feature in features])
    results = dict(zip(features, answers, strict=True))
    assert not results["poison"].ok
    assert "CheckViolation" in (results["poison"].error or "")
    assert all(results[f].ok for f in ("good-1", "good-2", "good-3"))
    assert 9 == await count(db)


async def test_in_transaction_hook_can_skip_a_redelivery(db: Database) -> None:
    """A hook returning False (already stored) skips the rows and says duplicate; its effects commit with rows."""
    await db.execute("CREATE TABLE scouter.seen (key text PRIMARY KEY)")

    async def once(key: str, conn: asyncpg.Connection) -> bool:
        return (await conn.execute("INSERT INTO scouter.seen VALUES ($1) ON CONFLICT DO NOTHING", key)) == "INSERT 0 1"

    writer = make_writer(db)
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        await nursery.start(writer.run, stop)
        first = await write(writer.inbox_sender, spc_batch("m"), in_transaction=functools.partial(once, "msg-1"))
        again = await write(writer.inbox_sender, spc_batch("m"), in_transaction=functools.partial(once, "msg-1"))
        stop.set()
    assert (True, 3, False) == (first.ok, first.rows, first.duplicate)
    assert (True, 0, True) == (again.ok, again.rows, again.duplicate)
    assert 3 == await count(db, "m")


async def test_full_inbox_pushes_back(db: Database) -> None:
    """A bounded inbox: once full, a sender must wait (back-pressure, memory stays bounded)."""
    writer = make_writer(db, capacity=2)
    reply_send, _ = trio.open_memory_channel[WriteResult](1)
    from actors.writer import WriteRequest

    writer.inbox_sender.send_nowait(WriteRequest(spc_batch("a"), reply_send))
    writer.inbox_sender.send_nowait(WriteRequest(spc_batch("b"), reply_send))
    with pytest.raises(trio.WouldBlock):
        writer.inbox_sender.send_nowait(WriteRequest(spc_batch("c"), reply_send))


async def test_stop_drains_what_is_queued(db: Database) -> None:
    """Requests queued when stop is asked are all committed and answered before the writer returns."""
    writer = make_writer(db)
    results: list[WriteResult] = []
    stop = trio.Event()

    async def sender(i: int) -> None:
        results.append(await write(writer.inbox_sender, spc_batch(f"d{i}")))

    async with trio.open_nursery() as nursery:
        for i in range(20):
            nursery.start_soon(sender, i)
        await trio.testing.wait_all_tasks_blocked()
        stop.set()  # asked to stop before it even started
        await writer.run(stop)
    assert 20 == len(results)
    assert all(r.ok for r in results)
    assert 60 == await count(db)


async def test_writer_metrics_count_rows_and_flushes(db: Database) -> None:
    """Rows written by table and flush latency are exported."""
    writer = make_writer(db)
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        await nursery.start(writer.run, stop)
        await write(writer.inbox_sender, spc_batch("x", 5))
        stop.set()
    registry = writer.metrics.registry
    assert 5 == registry.get_sample_value("scouter_writer_rows_total", {"table": "spc_drift"})
    assert 1 == registry.get_sample_value("scouter_writer_flush_duration_seconds_count")


async def test_a_group_is_stored_in_created_at_order(db: Database) -> None:
    """Senders each in time order, interleaved with one another (Kafka partitions, HTTP clients): their group is
    COPYed sorted by created_at, so the rows lie in the table in that order (ctid), as the indexes take them best."""
    writer = make_writer(db)

    def interleaved(sender: int) -> DecodedBatch:  # sender k holds instants k, k+4, k+8, ...
        return DecodedBatch.from_records(
            SpcRecord(NOW + datetime.timedelta(microseconds=4 * i + sender), "sp", "nm", "1.0.0", "f", float(i))
            for i in range(50)
        )

    results = await write_as_one_group(writer, [interleaved(k) for k in range(4)])
    assert all(r.ok for r in results)
    assert writer.statistics()["flushes"] == 1
    stored = [r["created_at"] for r in await db.fetch("SELECT created_at FROM scouter.spc_drift ORDER BY ctid")]
    assert len(stored) == 200
    assert stored == sorted(stored)


async def test_a_row_our_copy_encoder_cannot_take_is_written_by_asyncpg(db: Database) -> None:
    """A naive created_at (no decoder makes one; a hand-built batch can) stops the writer's own COPY encoder midway
    through its stream: the transaction is rolled back and the group written again with asyncpg's encoder, every
    row once."""
    writer = make_writer(db)
    naive = DecodedBatch(
        spc_rows=tuple((NOW.replace(tzinfo=None), "sp", "nm", "1.0.0", "naive", float(i)) for i in range(3))
    )
    # more than one chunk of the encoder's before the naive rows
    results = await write_as_one_group(writer, [spc_batch("aware", 5000), naive])
    assert all(r.ok for r in results)
    assert writer.statistics()["flushes"] == 1
    assert 5000 == await count(db, "aware")
    assert 3 == await count(db, "naive")
