"""What travels from the Kafka consumer's fetch stage to its store stage: fetched, recognised and decoded batches."""

from __future__ import annotations

from typing import Any

import attrs
import msgspec
import trio
from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord

from ._consuming import Decoded
from ._kafka_positions import Records


@attrs.frozen
class Fetched:
    records: Records
    highwater: dict[TopicPartition, int | None]
    reachable: bool | None  # result of the metadata probe, None when none was made
    generation: int  # the partitions' generation when the crossing began


class Message(msgspec.Struct, frozen=True, gc=False):
    """What the store stage needs of a consumed message (its position, for the digest: also timestamp and value).

    Taken from aiokafka's ConsumerRecord so that the records, which the garbage collector tracks, die with their
    fetch. This copy, its `Item` and its `Decoded` are not tracked (they hold no cycle): a backlog keeps thousands
    of messages in flight, and every collection would otherwise walk them all (a fifth of the event loop's time)."""

    topic: str
    partition: int
    offset: int
    timestamp: int | None
    value: bytes | None

    @classmethod
    def of(cls, record: ConsumerRecord[Any, Any]) -> Message:
        return cls(record.topic, record.partition, record.offset, record.timestamp, record.value)


class Item(msgspec.Struct, frozen=True, gc=False):  # not an attrs class: one per message, several times cheaper
    """One consumed message and its decoding."""

    tp: TopicPartition
    record: Message
    decoded: Decoded


@attrs.frozen(eq=False)
class Batch:
    """One fetch, recognised and decoded, on its way from the fetch stage to the store stage."""

    items: list[Item]
    last: dict[TopicPartition, int]  # offset of each partition's last message, for the lag gauge
    highwater: dict[TopicPartition, int | None]
    generation: int
    assignments: int
    restarted: set[TopicPartition]  # partitions starting a new log with this batch: overwrite the stored position
    starts: dict[TopicPartition, int]  # the partitions' start-over counts when fetched
    started: float  # perf_counter at the fetch, for the ingest duration
    rows: int = 0  # records to store


#: Records of a joined batch at most, as the writer's bound on a transaction (memory and lock time).
JOIN_ROWS = 50_000


def joined(first: Batch, then: Batch) -> Batch | None:
    """``first`` and the batch fetched right after it as one batch (one write request, one transaction), or None
    when they must be stored apart: a rebalance or a re-positioning came between them, ``then`` starts a partition
    over (its position is overwritten, never moved on from ``first``'s), or together they exceed `JOIN_ROWS`."""
    if then.generation != first.generation or then.assignments != first.assignments or then.restarted:
        return None
    if first.rows + then.rows > JOIN_ROWS:
        return None
    if any(first.starts.get(tp, count) != count for tp, count in then.starts.items()):
        return None
    return Batch(
        items=first.items + then.items,
        last={**first.last, **then.last},
        highwater={**first.highwater, **then.highwater},
        generation=first.generation,
        assignments=first.assignments,
        restarted=first.restarted,
        starts={**first.starts, **then.starts},
        started=first.started,
        rows=first.rows + then.rows,
    )


def join_waiting(batch: Batch, receive: trio.MemoryReceiveChannel[Batch]) -> tuple[Batch, Batch | None]:
    """``batch`` joined with the batches already waiting behind it, as far as they join; and the first that does not
    (stale: dropped by the store stage; or starting a partition over: stored next), if any was received."""
    while True:
        try:
            then = receive.receive_nowait()
        except (trio.WouldBlock, trio.EndOfChannel):
            return batch, None
        both = joined(batch, then)
        if both is None:
            return batch, then
        batch = both


async def send_unless_stopped(send: trio.MemorySendChannel[Batch], batch: Batch, stop: trio.Event) -> None:
    """Hand ``batch`` to the store stage, or give up when ``stop`` is set first (it is fetched again later)."""
    async with trio.open_nursery() as nursery:

        async def cancel_on_stop() -> None:
            await stop.wait()
            nursery.cancel_scope.cancel(reason="consumer stopping")

        nursery.start_soon(cancel_on_stop)
        try:
            await send.send(batch)
        except trio.BrokenResourceError:  # the store stage saw ``stop`` first and is gone
            pass
        nursery.cancel_scope.cancel(reason="batch handed over")


def quarantined(item: Item, reason: str) -> Item:
    return Item(item.tp, item.record, Decoded(item.decoded.raw, None, reason))


def source(item: Item) -> str:
    return f"kafka:{item.tp.topic}/{item.tp.partition}@{item.record.offset}"
