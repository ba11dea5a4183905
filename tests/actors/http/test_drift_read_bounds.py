"""Binned drift reads are bounded: max_data_points clamped, windows the nanosecond archive cannot hold refused with
a 400, and the archive read-back loads a bounded amount per query."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from obstore.store import MemoryStore

from actors.archive_reader import ArchiveReader
from actors.archive_store import StoreHandle
from scouter.queries import MAX_DATA_POINTS

from ..archive_support import archiver, insert
from .support import ClientApi

pytestmark = pytest.mark.postgres

ENTITY = {"space": "sp", "name": "nm", "version": "1.0.0"}
NOW = datetime.now(UTC)


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _query(points: str, begin: str | None = None, end: str | None = None) -> dict[str, str]:
    query = {**ENTITY, "time_interval": "FiveMinutes", "max_data_points": points, "drift_type": "Spc"}
    if begin is not None and end is not None:
        query.update(begin_custom_datetime=begin, end_custom_datetime=end)
    return query


async def _get(api: ClientApi, query: dict[str, str], kind: str = "spc") -> tuple[int, Any]:
    response = await api.get(f"/scouter/drift/{kind}", query)
    return response.status_code, orjson.loads(await response.get_data())


async def test_max_data_points_is_clamped_to_the_documented_maximum(client_api: ClientApi) -> None:
    """max_data_points = 2^31-1 over 30 days of rows two minutes apart used to give one-second buckets, one per row
    (the answer grew with the row count); it is clamped to MAX_DATA_POINTS buckets."""
    start = NOW - timedelta(days=30)
    rows = [(start + timedelta(minutes=2 * k), *ENTITY.values(), "f", 1.0) for k in range(30 * 24 * 30)]
    await insert(client_api.db, "spc_drift", rows)
    status, body = await _get(client_api, _query(str(2**31 - 1), _stamp(start), _stamp(NOW)))
    assert 200 == status, body
    assert len(rows) > MAX_DATA_POINTS + 1
    assert MAX_DATA_POINTS // 2 < len(body["features"]["f"]["values"]) <= MAX_DATA_POINTS + 1


def _one_bin_apart(now: datetime) -> tuple[datetime, datetime]:
    """Two moments in the last five minutes, one minute apart, inside one epoch-aligned five-minute bucket: one
    bucket for max_data_points = 1 whatever the time of day, two for any larger count."""
    bucket_start = datetime.fromtimestamp(now.timestamp() // 300 * 300, UTC)
    if now - bucket_start >= timedelta(seconds=70):
        return bucket_start + timedelta(seconds=10), bucket_start + timedelta(seconds=70)
    return bucket_start - timedelta(seconds=70), bucket_start - timedelta(seconds=10)


@pytest.mark.parametrize("points", ["0", "-5", "-2147483648"])
async def test_max_data_points_of_zero_or_below_means_one(client_api: ClientApi, points: str) -> None:
    """Upstream answers 200 for max_data_points <= 0 (client scripts send it): one bucket over the window."""
    now = datetime.now(UTC)  # the window is the last five minutes of the request, not of the module's import
    await insert(client_api.db, "spc_drift", [(moment, *ENTITY.values(), "f", 2.0) for moment in _one_bin_apart(now)])
    status, body = await _get(client_api, _query(points))
    assert 200 == status, body
    assert [2.0] == body["features"]["f"]["values"]


@pytest.mark.parametrize("kind", ["spc", "psi", "custom"])
@pytest.mark.parametrize(
    ("field", "begin", "end"),
    [
        ("begin_custom_datetime", "1600-01-01T00:00:00Z", None),
        ("begin_custom_datetime", "0001-01-01T00:00:00Z", None),
        ("end_custom_datetime", None, "9999-12-31T23:59:59Z"),
    ],
)
async def test_a_window_outside_nanosecond_range_is_a_400(
    client_api: ClientApi, kind: str, field: str, begin: str | None, end: str | None
) -> None:
    """With archived objects in the window, a begin before 1677 (or an end after 2262) used to be a 500 with
    'Python int too large to convert to C long'; it is a 400 naming the field and the range."""
    client_api.api.ctx.archive = ArchiveReader(StoreHandle.of(store := MemoryStore()), retention_days=30)
    moment = NOW - timedelta(days=35)
    table = {"spc": "spc_drift", "psi": "psi_drift", "custom": "custom_drift"}[kind]
    row: tuple[Any, ...] = (moment, *ENTITY.values(), "f", *((1, 5) if kind == "psi" else (2.5,)))
    await insert(client_api.db, table, [row])
    assert 1 == (await archiver(client_api.db, store).run_once()).objects
    query = _query("10", begin or _stamp(NOW - timedelta(days=40)), end or _stamp(NOW))
    status, body = await _get(client_api, {**query, "drift_type": kind.capitalize()}, kind)
    assert 400 == status, body
    assert body["error"].startswith(f"Invalid drift request: {field}: must be between 1677-09-22T00:00:00Z and ")


async def test_archive_read_back_is_bounded_per_query(client_api: ClientApi) -> None:
    """The archived objects one query would load are capped (ArchiveReader.max_query_bytes): over the cap, a 400
    naming the limit instead of loading them all; within it, objects are aggregated a bounded chunk at a time
    (chunk_bytes) with the same answer as all at once."""
    store = MemoryStore()
    begin = NOW - timedelta(days=45)
    rows = [(begin + timedelta(hours=h, minutes=5), *ENTITY.values(), "f", float(h % 4)) for h in range(24 * 10)]
    await insert(client_api.db, "spc_drift", rows)
    client_api.api.ctx.archive = ArchiveReader(StoreHandle.of(store), retention_days=30)
    assert 240 == (await archiver(client_api.db, store).run_once()).objects
    # rows stored before the rollups existed: every object is read (rollups would spare most reads)
    await client_api.db.execute("UPDATE scouter.rollup_coverage SET since = now()")
    query = _query("24", _stamp(begin - timedelta(days=1)), _stamp(NOW - timedelta(days=31)))
    whole = await _get(client_api, query)
    assert 200 == whole[0]
    total = int(await client_api.db.fetchval("SELECT sum(bytes) FROM scouter.archive_log"))

    client_api.api.ctx.archive = ArchiveReader(StoreHandle.of(store), retention_days=30, chunk_bytes=total // 7)
    status, chunked = await _get(client_api, query)
    assert 200 == status
    expected, actual = whole[1]["features"]["f"], chunked["features"]["f"]
    assert expected["created_at"] == actual["created_at"]
    assert expected["values"] == pytest.approx(actual["values"], rel=1e-12)  # means merged from parts round apart

    client_api.api.ctx.archive = ArchiveReader(StoreHandle.of(store), retention_days=30, max_query_bytes=total - 1)
    status, body = await _get(client_api, query)
    assert 400 == status
    assert body["error"].startswith(f"Invalid drift request: the window holds {total} bytes of archived data")
    assert f"over the limit of {total - 1} bytes per query" in body["error"]
