"""Kafka positions kept in PostgreSQL: the SQL, the digests that recognise a log, and the consumer's partition state.

PostgreSQL is the source of truth for where each partition goes on (see `actors.kafka`). This module holds what the
fetch and store stages of one consumer share about its partitions, and the hook steps that store positions and
digests in the writer's transaction.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

import asyncpg
import attrs
from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord

from ._consuming import quarantine_step
from .writer import HookAnswer, InTransaction

#: One round trip (migration 370): positions moved and digests replaced, or false and nothing changed; with the
#: transaction's id, which the writer needs to settle a lost COMMIT reply (one round trip fewer per transaction).
STORE_POSITIONS = (
    "SELECT scouter.store_kafka_positions($1, $2, $3, $4, $5, $6, $7, $8) AS stored,"
    " pg_current_xact_id()::text::bigint AS xid"
)
STORED_OFFSETS = """
SELECT topic, partition, next_offset FROM scouter.consumer_offsets WHERE consumer_group = $1 AND topic = ANY($2::text[])
"""
DIGESTS_PRESENT = "SELECT digest FROM scouter.ingested_messages WHERE digest = ANY($1::bytea[])"
Records = dict[TopicPartition, list[ConsumerRecord[Any, Any]]]


class InLog(Protocol):
    """A message at its place in a partition's log: aiokafka's ConsumerRecord, or the store stage's `Message`."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def timestamp(self) -> int | None: ...
    @property
    def value(self) -> bytes | None: ...


def position_digest(group: str, record: InLog) -> bytes:
    """Identifies one message of one log: its position, broker timestamp and content."""
    h = hashlib.sha256(b"kafka\0")
    h.update(f"{group}\0{record.topic}\0".encode())
    h.update(struct.pack(">iqq", record.partition, record.offset, record.timestamp or 0))
    h.update(record.value or b"")
    return h.digest()


@attrs.frozen
class Seek:
    """What to do with a partition before the next fetch."""

    tp: TopicPartition
    assignments: int  # the assignment it was planned for; a later rebalance makes it moot
    offset: int | None = None  # seek there (None: do not seek)
    start_over: bool = False  # seek as KAFKA_OFFSET_RESET says
    resume: bool = False  # resume the partition, paused since its assignment


@attrs.define
class Partitions:
    """Partition state, shared by the fetch stage, the store stage and the asyncio rebalance listener (one thread).

    ``generation`` is bumped by every rebalance and every re-positioning after a conflict: a batch fetched under an
    older generation is never handed to the writer. ``resume`` keeps, per partition, the first offset fetched but
    not yet stored by this consumer, so that dropping such batches can always seek back to it.
    """

    pending: set[TopicPartition] = attrs.Factory(set)  # assigned and paused until the stored position is known
    verify: dict[TopicPartition, int] = attrs.Factory(dict)  # offset of the last stored message, to check
    expected: dict[TopicPartition, int] = attrs.Factory(dict)  # the next offset the fetch should see
    restarted: set[TopicPartition] = attrs.Factory(set)  # new log: overwrite the stored position once
    last_digest: dict[TopicPartition, bytes] = attrs.Factory(dict)  # digest row of the last stored message
    resume: dict[TopicPartition, int] = attrs.Factory(dict)  # first offset fetched and not yet stored
    starts: dict[TopicPartition, int] = attrs.Factory(dict)  # start-overs per partition (a batch notes its own)
    seeks: list[Seek] = attrs.Factory(list)  # applied (in order) before the next fetch
    assignments: int = 0  # bumped on every assignment, so a stale read of stored offsets is never applied
    generation: int = 0

    def forget(self, tps: Iterable[TopicPartition]) -> None:
        for tp in tps:
            self.pending.discard(tp)
            self.verify.pop(tp, None)
            self.expected.pop(tp, None)
            self.restarted.discard(tp)
            self.last_digest.pop(tp, None)
            self.resume.pop(tp, None)

    def plan(self, pending: Iterable[TopicPartition], stored: dict[tuple[str, int], int]) -> None:
        """Seek the ``pending`` partitions (paused since their assignment) from their ``stored`` next offsets
        ((topic, partition) -> offset) and resume them: to the last stored message, to be checked, or with nothing
        stored, to where this consumer was (after a broker outage), else to Kafka's committed offset."""
        for tp in pending:
            offset = stored.get((tp.topic, tp.partition))
            back = self.resume.pop(tp, None)  # set again by the first fetch from the planned position
            if offset is None or offset <= 0:
                self.seeks.append(Seek(tp, self.assignments, back, resume=True))
            else:
                self.verify[tp] = offset - 1  # re-read the last stored message to recognise the log
                self.seeks.append(Seek(tp, self.assignments, offset - 1, resume=True))
            self.pending.discard(tp)

    def recognise(
        self, records: Records, checks: dict[TopicPartition, bytes], present: set[bytes]
    ) -> list[tuple[TopicPartition, str]]:
        """Check each partition's first fetched message against what is stored (``checks``: the digests of those
        re-read to be verified, ``present``: which of them are stored); drops from ``records`` what is stored already
        and the partitions whose log was replaced, which start over. Returns those, each with why."""
        started_over: list[tuple[TopicPartition, str]] = []
        for tp in list(records):
            batch = records[tp]
            why = None
            if tp in self.verify:
                at = self.verify.pop(tp)
                first = batch[0].offset
                if first == at and checks.get(tp) in present:
                    self.last_digest[tp] = checks[tp]
                    if self.resume.get(tp) == at:
                        self.resume[tp] = at + 1  # stored already: never the position to go back to
                    self.expected[tp] = at + 1
                    del batch[0]
                elif first <= at:
                    why = f"the message stored last at offset {at} is not in the log"
            elif tp in self.expected and batch[0].offset < self.expected[tp]:
                why = f"the broker moved back from offset {self.expected[tp]} to {batch[0].offset}"
            if why is not None:
                started_over.append((tp, why))
                self.start_over(tp)
                del records[tp]
            elif batch:
                self.expected[tp] = batch[-1].offset + 1
            else:
                del records[tp]
        return started_over

    def fetched(self, records: Records, generation: int) -> None:
        """Note the first unstored offset of each partition of a fetch (asyncio side, right after the fetch). A fetch
        that a re-positioning overtook is dropped; its partitions that re-positioning did not cover go back."""
        for tp, batch in records.items():
            if tp not in self.resume:
                self.resume[tp] = batch[0].offset
                if generation != self.generation:
                    self.seeks.append(Seek(tp, self.assignments, batch[0].offset))

    def reposition(self, targets: dict[TopicPartition, int]) -> None:
        """After a conflict: every partition goes on from ``targets`` or from its first unstored offset, and every
        batch fetched so far is dropped."""
        self.generation += 1
        for tp, offset in {**self.resume, **targets}.items():
            self.seeks.append(Seek(tp, self.assignments, offset))
            self.expected[tp] = offset
            self.resume[tp] = offset

    def start_over(self, tp: TopicPartition) -> None:
        self.restarted.add(tp)
        self.expected.pop(tp, None)
        self.last_digest.pop(tp, None)
        self.resume.pop(tp, None)
        self.starts[tp] = self.starts.get(tp, 0) + 1
        self.seeks.append(Seek(tp, self.assignments, start_over=True))


def positions_hook(
    group: str,
    spans: Sequence[tuple[str, int, int, int, bool]],
    old_digests: list[bytes],
    new_digests: list[bytes],
    poison: Sequence[tuple[str, str, bytes]],
) -> InTransaction:
    """The writer hook of one batch: per partition (topic, partition, first offset, next offset, restart), move the
    stored position on, unless another member (or an earlier copy of the same request) already stored past the first
    offset: then nothing changes and the rows are skipped; each partition keeps only the digest of its last stored
    message; the poison messages go to quarantine."""
    args = (
        group,
        [r[0] for r in spans],
        [r[1] for r in spans],
        [r[2] for r in spans],
        [r[3] for r in spans],
        [r[4] for r in spans],
        old_digests,
        new_digests,
    )
    quarantine = quarantine_step(poison) if poison else None

    async def run(conn: asyncpg.Connection) -> HookAnswer:  # asyncio side, inside the writer's transaction
        stored, xid = await conn.fetchrow(STORE_POSITIONS, *args)
        if stored and quarantine is not None:
            await quarantine(conn)
        return HookAnswer(stored, xid)

    return run
