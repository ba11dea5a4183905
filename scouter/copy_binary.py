"""Drift rows as PostgreSQL's binary COPY stream (the writer hands it to ``COPY ... FROM STDIN (FORMAT binary)``).

Why not asyncpg's own ``copy_records_to_table``: its timestamptz encoder compares every value with its two naive
infinity datetimes before converting it, and comparing an aware datetime with a naive one costs ~0.5 µs; measured,
the timestamp took ~2.1 of the ~2.5 µs asyncpg spends encoding a row of `scouter.records.SPC_COLUMNS`, on the one
thread that also decodes and feeds the COPY. The rows here are the decoder's, already checked (``created_at`` aware
and within 1970 to a day ahead, no infinity; finite values; PSI integers within int32; names without NUL), so each row
is one struct for its fixed parts plus its names, encoded once per (entity, feature) of the stream: ~1 µs a row.

A row this encoder cannot take (a value of another type, a string UTF-8 cannot encode) raises `Unencodable`: the
writer then writes the group again, letting asyncpg encode the rows, which words the problem as it always has.

Format (PostgreSQL manual, COPY, "Binary Format"): the signature, flags and header extension length; per row the
field count, then per field its byte length and bytes (timestamptz: int64 microseconds since 2000-01-01 UTC; text:
UTF-8, the client encoding asyncpg sets; float8: IEEE 754; int4); a field count of -1 ends the stream.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Final

__all__ = ["Unencodable", "copy_chunks", "encodes"]

_HEADER: Final = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
_TRAILER: Final = struct.pack(">h", -1)
_PG_EPOCH: Final = datetime(2000, 1, 1, tzinfo=UTC)
_MICROSECOND: Final = timedelta(microseconds=1)
#: A row's field count, then its created_at (length 8, microseconds).
_ROW_START: Final = struct.Struct(">hiq")
_FLOAT8: Final = struct.Struct(">id")
_TWO_INT4: Final = struct.Struct(">iiii")


def _names(name: str, space: str, version: str, label: str) -> bytes:
    parts = []
    for text in (name, space, version, label):
        encoded = text.encode()
        parts.append(struct.pack(">i", len(encoded)))
        parts.append(encoded)
    return b"".join(parts)


class Unencodable(ValueError):
    """A row `copy_chunks` cannot take (see the module)."""


def encodes(table: str) -> bool:
    """Whether `copy_chunks` knows ``table``'s rows."""
    return table in _LAYOUTS


def copy_chunks(table: str, rows: Sequence[Sequence[Any]], rows_per_chunk: int = 2048) -> Iterator[bytes]:
    """The binary COPY stream of ``rows`` for ``table`` (one of `encodes`: "spc_drift" and "custom_drift": created_at,
    name, space, version, feature or metric, value; "psi_drift": ... feature, bin_id, bin_count), in chunks of
    ``rows_per_chunk`` rows, each encoded when it is asked for: PostgreSQL copies one while the next is encoded.
    Raises `Unencodable` at a row it cannot take."""
    fields, encode_rest = _LAYOUTS[table]
    names: dict[tuple[str, str, str, str], bytes] = {}
    for start in range(0, len(rows), rows_per_chunk):
        parts = [_HEADER] if start == 0 else []
        append = parts.append
        for index, row in enumerate(rows[start : start + rows_per_chunk], start):
            try:
                key = (row[1], row[2], row[3], row[4])
                encoded = names.get(key)
                if encoded is None:
                    encoded = names[key] = _names(*key)
                append(_ROW_START.pack(fields, 8, (row[0] - _PG_EPOCH) // _MICROSECOND))
                append(encoded)
                append(encode_rest(row))
            except (TypeError, ValueError, AttributeError, IndexError, struct.error, OverflowError) as exc:
                raise Unencodable(f"{table}: row {index}: {exc!r}") from None  # UnicodeError is a ValueError
        yield b"".join(parts)
    yield _TRAILER if rows else _HEADER + _TRAILER


def _float8_value(row: Sequence[Any]) -> bytes:
    return _FLOAT8.pack(8, row[5])


def _int4_bin(row: Sequence[Any]) -> bytes:
    return _TWO_INT4.pack(4, row[5], 4, row[6])


#: Per table: its rows' field count, and the encoder of the fields after the four names.
_LAYOUTS: Final[dict[str, tuple[int, Callable[[Sequence[Any]], bytes]]]] = {
    "spc_drift": (6, _float8_value),
    "custom_drift": (6, _float8_value),
    "psi_drift": (7, _int4_bin),
}
