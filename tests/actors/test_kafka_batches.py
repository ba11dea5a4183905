"""Joining the Kafka batches already waiting into one write request (pure: no broker, no database)."""

from __future__ import annotations

import gc

import trio
from aiokafka import TopicPartition

from actors._consuming import Decoded
from actors._kafka_batches import JOIN_ROWS, Batch, Item, Message, join_waiting, joined
from scouter.records import DecodedBatch

TP0, TP1 = TopicPartition("t", 0), TopicPartition("t", 1)


def batch(
    offsets: dict[TopicPartition, range],
    *,
    generation: int = 3,
    assignments: int = 2,
    restarted: frozenset[TopicPartition] = frozenset(),
    starts: dict[TopicPartition, int] | None = None,
    started: float = 1.0,
    rows: int = 0,
) -> Batch:
    items = [
        Item(tp, Message(tp.topic, tp.partition, offset, 1000 + offset, b"m"), Decoded(b"m", DecodedBatch()))
        for tp, span in offsets.items()
        for offset in span
    ]
    return Batch(
        items=items,
        last={tp: span[-1] for tp, span in offsets.items()},
        highwater={tp: 100 for tp in offsets},
        generation=generation,
        assignments=assignments,
        restarted=set(restarted),
        starts=starts if starts is not None else {tp: 0 for tp in offsets},
        started=started,
        rows=rows,
    )


def test_a_batch_joins_the_one_fetched_before_it() -> None:
    """Items in fetch order, each partition's last offset from the later batch, the earlier batch's start time."""
    first = batch({TP0: range(0, 3), TP1: range(10, 12)}, started=1.0)
    then = batch({TP0: range(3, 5)}, started=2.0)
    both = joined(first, then)
    assert both is not None
    assert [(i.tp, i.record.offset) for i in both.items] == [
        (TP0, 0),
        (TP0, 1),
        (TP0, 2),
        (TP1, 10),
        (TP1, 11),
        (TP0, 3),
        (TP0, 4),
    ]
    assert {TP0: 4, TP1: 11} == both.last
    assert (3, 2, 1.0) == (both.generation, both.assignments, both.started)


def test_a_join_stays_within_the_writers_bound_on_a_transaction() -> None:
    first = batch({TP0: range(0, 2)}, rows=JOIN_ROWS // 2)
    assert (JOIN_ROWS, None) == (
        getattr(joined(first, batch({TP0: range(2, 4)}, rows=JOIN_ROWS // 2)), "rows", None),
        joined(first, batch({TP0: range(2, 4)}, rows=JOIN_ROWS // 2 + 1)),
    )


def test_a_restart_keeps_its_batch_first_of_its_request() -> None:
    """A partition restarted by the earlier batch goes on in the later one; one restarting in the later batch has
    its position overwritten from that batch's first message, so that batch is not joined to an earlier one."""
    first = batch({TP0: range(0, 2)}, restarted=frozenset({TP0}))
    both = joined(first, batch({TP0: range(2, 4)}))
    assert both is not None
    assert {TP0} == both.restarted
    assert joined(batch({TP0: range(0, 2)}), batch({TP0: range(0, 2)}, restarted=frozenset({TP0}))) is None


def test_batches_across_a_rebalance_or_repositioning_are_never_joined() -> None:
    first = batch({TP0: range(0, 2)})
    assert joined(first, batch({TP0: range(2, 4)}, generation=4)) is None
    assert joined(first, batch({TP0: range(2, 4)}, assignments=3)) is None
    # the partition started over between the two fetches (the later batch counts one more start)
    assert joined(first, batch({TP0: range(0, 2)}, starts={TP0: 1})) is None
    # a partition the earlier batch does not hold may have any count
    assert joined(first, batch({TP1: range(0, 2)}, starts={TP1: 5})) is not None


def test_the_waiting_batches_join_until_one_does_not() -> None:
    """That one is handed back (to be stored next, or dropped as stale); the ones behind it stay queued."""
    send, receive = trio.open_memory_channel[Batch](10)
    for waiting in (
        batch({TP0: range(2, 4)}),
        batch({TP0: range(4, 6)}),
        batch({TP0: range(6, 8)}, generation=4),
        batch({TP0: range(8, 10)}, generation=4),
    ):
        send.send_nowait(waiting)
    both, held = join_waiting(batch({TP0: range(0, 2)}), receive)
    assert list(range(6)) == [i.record.offset for i in both.items]
    assert held is not None
    assert [6, 7] == [i.record.offset for i in held.items]
    assert 1 == receive.statistics().current_buffer_used
    alone, nothing = join_waiting(receive.receive_nowait(), receive)
    assert ([8, 9], None) == ([i.record.offset for i in alone.items], nothing)


def test_messages_in_flight_are_not_tracked_by_the_garbage_collector() -> None:
    """A backlog keeps thousands of them waiting; every collection would walk them all."""
    item = batch({TP0: range(0, 1)}).items[0]
    assert not gc.is_tracked(item)
    assert not gc.is_tracked(item.record)
    assert not gc.is_tracked(item.decoded)
