"""How the RabbitMQ consumer recognises a message it already stored: digests recorded in the rows' transaction.

Only a message that *may have been delivered before* is matched against the recorded digests: one the broker flags
``redelivered`` (a crash or a dropped connection between COMMIT and ack), or one carrying a producer-set
``message_id`` (its digest is that of the id, so a producer's retry is recognised too). A first delivery without an
id is always stored, even when its body equals a recent one: two observability reports of one route with equal
counts are byte-identical (they carry no timestamp) and both are real. Each digest's row counts the stored copies
whose ack the broker has not confirmed yet (``unacked``: added in the transaction that stores them, taken off once
the broker has processed the ack); a redelivered message is recognised, and only acknowledged, while such a copy of
its body is left, so a byte-identical message that was in flight but never stored is stored when it comes back.
A message with an id is recognised whenever its id is recorded. Each write request also records a mark of its own,
so a copy re-sent after a writer timeout stores nothing, and a request whose connection dropped meanwhile stores
nothing either (the broker redelivers its messages, perhaps to another replica that stores them first).
"""

from __future__ import annotations

import hashlib
import uuid
from collections import Counter
from collections.abc import Callable, Sequence

import asyncpg
import attrs
from aio_pika.abc import AbstractIncomingMessage

from ._consuming import Conflict, Decoded, Step

#: Records (or refreshes) distinct digests with the copies stored now ($1 digests in order, $2 copies), locking them
#: in one order across consumers; ``xmax = 0`` tells a row this statement inserted from one that was already there.
RECORD_DIGESTS = """
INSERT INTO scouter.ingested_messages AS m (digest, source, unacked)
SELECT digest, 'rabbitmq', copies FROM unnest($1::bytea[], $2::integer[]) AS d(digest, copies) ORDER BY digest
ON CONFLICT (digest) DO UPDATE SET created_at = now(), unacked = m.unacked + excluded.unacked
RETURNING digest, xmax = 0 AS inserted, unacked
"""
#: After the broker confirmed an ack: those copies can no longer come back ($1 digests in order, $2 copies).
SETTLE_COPIES = """
UPDATE scouter.ingested_messages AS m SET unacked = greatest(m.unacked - s.copies, 0)
FROM unnest($1::bytea[], $2::integer[]) AS s(digest, copies) WHERE m.digest = s.digest AND m.unacked > 0
"""
INSERT_MARK = """
INSERT INTO scouter.ingested_messages (digest, source) VALUES ($1, 'rabbitmq-request')
ON CONFLICT DO NOTHING RETURNING 1
"""
#: Prefixes of the digests of a producer-set message id and of a write request's mark (a body's digest is the plain
#: SHA-256 of the body).
MESSAGE_ID_DIGEST = b"rabbitmq message_id\0"
REQUEST_MARK = b"rabbitmq request\0"
DIGESTS_PRESENT = "SELECT digest, unacked FROM scouter.ingested_messages WHERE digest = ANY($1::bytea[])"


@attrs.frozen
class Item:
    message: AbstractIncomingMessage
    digest: bytes
    by_id: bool  # the digest is the producer's message id: matched whenever it is recorded
    decoded: Decoded
    seen: int = 0  # redelivered: the unacknowledged copies recorded for its digest when it was checked

    @property
    def redelivered(self) -> bool:
        return not self.by_id and bool(self.message.redelivered)

    @property
    def checked(self) -> bool:
        """May have been delivered before, so matched against the recorded digests (a first delivery never is)."""
        return self.by_id or self.redelivered


def identify(message: AbstractIncomingMessage) -> tuple[bytes, bool]:
    """(digest, by_id): of the producer's message id when set, else the body's SHA-256."""
    if message.message_id:
        return hashlib.sha256(MESSAGE_ID_DIGEST + message.message_id.encode("utf-8", "surrogatepass")).digest(), True
    return hashlib.sha256(message.body).digest(), False


def request_mark() -> bytes:
    """A write request's own mark, new for every request."""
    return hashlib.sha256(REQUEST_MARK + uuid.uuid4().bytes).digest()


def record_digests(items: Sequence[Item], mark: bytes, lost: Callable[[], bool]) -> Step:
    """Record the request's `mark` and the copies of every digest; `Conflict` when the mark or a message id was
    already there, when the unacknowledged copies of a redelivered body changed since they were checked, or when
    the items' connection is lost (the broker then redelivers them, possibly to another replica that stores them
    first as redeliveries, matched by digest)."""
    copies = Counter(i.digest for i in items)
    digests = sorted(copies)
    by_id = {i.digest for i in items if i.by_id}
    seen = {i.digest: i.seen for i in items if i.redelivered}

    async def step(conn: asyncpg.Connection) -> None:
        if lost() or await conn.fetchval(INSERT_MARK, mark) is None:
            raise Conflict
        for row in await conn.fetch(RECORD_DIGESTS, digests, [copies[d] for d in digests]):
            digest = bytes(row["digest"])
            if digest in by_id and not row["inserted"]:
                raise Conflict
            if digest in seen and row["unacked"] - copies[digest] != seen[digest]:
                raise Conflict

    return step


def settle_step(copies: Counter[bytes]) -> Step:
    """Take acknowledged copies off their digests, in the transaction of a write request that happens to follow."""
    digests = sorted(copies)

    async def step(conn: asyncpg.Connection) -> None:
        await conn.execute(SETTLE_COPIES, digests, [copies[d] for d in digests])

    return step
