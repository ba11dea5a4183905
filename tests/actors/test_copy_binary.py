"""`scouter.copy_binary` against a real PostgreSQL: the stream stores exactly what asyncpg's own COPY stores."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from actors.database import Database
from scouter.copy_binary import Unencodable, copy_chunks, encodes
from scouter.records import CUSTOM_COLUMNS, PSI_COLUMNS, SPC_COLUMNS

NAMES = ["sp", "org/model", "..", "ß☃ü", "a b", "x" * 500, "é" * 128, "\t\n", "1.0.0-rc.1+build"]
MOMENTS = [
    datetime(1970, 1, 1, tzinfo=UTC),
    datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),  # just before PostgreSQL's epoch: negative microseconds
    datetime(2000, 1, 1, tzinfo=UTC),
    datetime(2026, 11, 22, 17, 7, 44, 598856, tzinfo=UTC),
    datetime.now(UTC) + timedelta(days=1),
]
FLOATS = [0.0, -0.0, 1.5, -2.25, 1e308, -1e-308, 5e-324, 123456789.123456789, 3]  # 3: an int where a float goes
INT32 = [0, 1, -1, 2**31 - 1, -(2**31)]


def _rows(table: str, count: int, rng: random.Random) -> list[tuple[Any, ...]]:
    rows = []
    for _ in range(count):
        moment = rng.choice(MOMENTS) + timedelta(microseconds=rng.randrange(1000))
        names = tuple(rng.choice(NAMES) for _ in range(4))
        if table == "psi_drift":
            rows.append((moment, *names, rng.choice(INT32), rng.choice(INT32)))
        else:
            rows.append((moment, *names, rng.choice(FLOATS) * rng.choice([1, -1])))
    return rows


@pytest.mark.parametrize(
    ("table", "columns"), [("spc_drift", SPC_COLUMNS), ("custom_drift", CUSTOM_COLUMNS), ("psi_drift", PSI_COLUMNS)]
)
async def test_the_stream_stores_what_asyncpg_stores(db: Database, table: str, columns: tuple[str, ...]) -> None:
    rows = _rows(table, 2000, random.Random(table))
    stream = b"".join(copy_chunks(table, rows, rows_per_chunk=300))  # chunks that do not divide the rows

    async def both(conn: asyncpg.Connection) -> tuple[list[Any], list[Any]]:
        listed = ", ".join(columns)
        for copy in ("ours", "theirs"):
            await conn.execute(f"CREATE TEMP TABLE {copy} AS SELECT {listed} FROM scouter.{table} LIMIT 0")
        await conn.copy_to_table("ours", source=memoryview(stream), columns=columns, format="binary")
        await conn.copy_records_to_table("theirs", records=rows, columns=columns)
        order = f"ORDER BY {listed}"
        return (
            [tuple(r) for r in await conn.fetch(f"SELECT * FROM ours {order}")],
            [tuple(r) for r in await conn.fetch(f"SELECT * FROM theirs {order}")],
        )

    ours, theirs = await db.run(both, transaction=True)
    assert len(ours) == len(rows)
    assert ours == theirs
    assert sorted(ours, key=repr) == sorted(rows, key=repr)  # and both what was sent (an int float compares equal)


@pytest.mark.parametrize(
    "row",
    [
        (datetime(2026, 1, 1), "sp", "nm", "1", "f", 1.0),  # naive: asyncpg decides what it means
        (datetime(2026, 1, 1, tzinfo=UTC), "sp", "nm", "1", "f", "1.0"),  # not a number
        (datetime(2026, 1, 1, tzinfo=UTC), "sp", "\ud800", "1", "f", 1.0),  # no UTF-8 for a lone surrogate
        (datetime(2026, 1, 1, tzinfo=UTC), "sp", None, "1", "f", 1.0),
        (datetime(2026, 1, 1, tzinfo=UTC), "sp", "nm", "1", "f", 10**400),
        (datetime(2026, 1, 1, tzinfo=UTC), "sp", "nm", "1", "f"),
    ],
)
def test_a_row_it_cannot_take_is_named(row: tuple[Any, ...]) -> None:
    good = (datetime(2026, 1, 1, tzinfo=UTC), "sp", "nm", "1", "f", 1.0)
    with pytest.raises(Unencodable, match="spc_drift: row 2"):
        list(copy_chunks("spc_drift", [good, good, row], rows_per_chunk=2))


def test_psi_counts_beyond_int4_and_unknown_tables() -> None:
    with pytest.raises(Unencodable):
        list(copy_chunks("psi_drift", [(datetime(2026, 1, 1, tzinfo=UTC), "s", "n", "v", "f", 2**31, 1)]))
    assert not encodes("observability_metric")
    assert encodes("spc_drift")


async def test_empty_rows_are_an_empty_stream(db: Database) -> None:
    async def copy(conn: asyncpg.Connection) -> int:
        await conn.execute("CREATE TEMP TABLE t AS SELECT * FROM scouter.spc_drift LIMIT 0")
        await conn.copy_to_table("t", source=memoryview(b"".join(copy_chunks("spc_drift", []))), format="binary")
        return int(await conn.fetchval("SELECT count(*) FROM t"))

    assert await db.run(copy, transaction=True) == 0
