"""What both broker consumers share: message decoding into rows or quarantine reasons, merging, backoff."""

from __future__ import annotations

import trio
import trio.testing

from actors._consuming import MAX_MESSAGE_BYTES, Backoff, decode_message, merge
from tests.actors.brokers import spc_message


def test_a_client_message_decodes_to_rows() -> None:
    """A message as the client sends it gives its three SPC rows and no reason."""
    decoded = decode_message(spc_message("sp", 4))
    assert decoded.batch is not None
    assert (None, 3) == (decoded.reason, decoded.batch.total)
    assert [12.0, 13.0, 14.0] == [row[5] for row in decoded.batch.spc_rows]


def test_poison_keeps_raw_bytes_and_says_why() -> None:
    """Undecodable, empty (a Kafka tombstone) and oversized payloads are poison, with the bytes kept whole."""
    bad = decode_message(b'{"records": 3}')
    assert (b'{"records": 3}', None, "records: expected a list, got 3") == (bad.raw, bad.batch, bad.reason)
    tombstone = decode_message(None)
    assert (b"", None) == (tombstone.raw, tombstone.batch)
    assert tombstone.reason is not None
    assert tombstone.reason.startswith("body is not valid JSON")
    big = b"{" + b" " * MAX_MESSAGE_BYTES + b"}"
    oversized = decode_message(big)
    assert (None, f"message of {len(big)} bytes exceeds the limit of {MAX_MESSAGE_BYTES} bytes") == (
        oversized.batch,
        oversized.reason,
    )
    assert big is oversized.raw


def test_merge_keeps_every_row_in_order() -> None:
    """Several messages become one batch (one COPY per table), rows in message order."""
    batches = [decode_message(spc_message("sp", n)).batch for n in range(3)]
    merged = merge([b for b in batches if b is not None])
    assert [float(v) for v in range(9)] == [row[5] for row in merged.spc_rows]
    assert "sp" == merged.first_space


async def test_backoff_doubles_up_to_its_cap_with_jitter(mock_clock: trio.testing.MockClock) -> None:
    """0.5 s, 1 s, 2 s ... capped at the maximum, each within ±20 %; reset starts over; a stop cuts a wait short."""
    backoff = Backoff(initial=0.5, maximum=4.0)
    delays = [backoff.delay() for _ in range(6)]
    for delay, nominal in zip(delays, [0.5, 1, 2, 4, 4, 4], strict=True):
        assert nominal * 0.8 <= delay <= nominal * 1.2
    backoff.reset()
    assert 0.4 <= backoff.delay() <= 0.6
    stop = trio.Event()
    stop.set()
    started = trio.current_time()
    await backoff.wait(stop)
    assert 0 == trio.current_time() - started
