"""Drift queries reaching past retention: archived Parquet merged with live rows, same answer as before archiving."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import obstore
import orjson
import pytest
from obstore.store import MemoryStore

from actors.archive_reader import ArchiveReader
from actors.archive_store import StoreHandle
from scouter.archive import floor_hour
from tests.drift_profiles import insert_profile, psi_profile

from ..archive_support import archiver, insert, keys
from .support import ClientApi

pytestmark = pytest.mark.postgres

ENTITY = {"space": "sp", "name": "nm", "version": "1.0.0"}
NOW = datetime.now(UTC)
#: Rows every 5 hours from 40 days ago to 20 days ago: the 30-day boundary cuts the series in the middle.
BASE = floor_hour(NOW - timedelta(days=40))
MOMENTS = [BASE + timedelta(hours=5 * k, minutes=k % 60, microseconds=k) for k in range(20 * 24 // 5)]


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _query(drift_type: str, points: int, begin: datetime, end: datetime) -> dict[str, str]:
    return {
        **ENTITY,
        "time_interval": "FiveMinutes",
        "max_data_points": str(points),
        "drift_type": drift_type,
        "begin_custom_datetime": _stamp(begin),
        "end_custom_datetime": _stamp(end),
    }


async def _get(api: ClientApi, kind: str, query: dict[str, str]) -> tuple[int, Any]:
    response = await api.get(f"/scouter/drift/{kind}", query)
    return response.status_code, orjson.loads(await response.get_data())


def _with_archive(api: ClientApi, store: Any) -> None:
    api.api.ctx.archive = ArchiveReader(StoreHandle.of(store), retention_days=30)


async def _seed(api: ClientApi) -> None:
    """SPC (two features), custom (two metrics) and PSI (three bins, > 100 per point) rows at every moment, plus a
    PSI profile; values are small multiples of 1/4."""
    spc, custom, psi = [], [], []
    for k, moment in enumerate(MOMENTS):
        for f in range(2):
            spc.append((moment, *ENTITY.values(), f"feature_{f}", (k % 7 + f) / 4))
            custom.append((moment, *ENTITY.values(), f"metric_{f}", (k % 5) * (f + 1) / 4))
        for bin_id, count in ((1, 30 + k % 11), (2, 50), (3, 40 + k % 3)):
            psi.append((moment, *ENTITY.values(), "feature_0", bin_id, count))
        psi.append((moment, *ENTITY.values(), "not_profiled", 1, 500))
    await insert(api.db, "spc_drift", spc)
    await insert(api.db, "custom_drift", custom)
    await insert(api.db, "psi_drift", psi)
    profile = psi_profile({"feature_0": [0.3, 0.4, 0.3]}, **ENTITY)
    await api.db.run(insert_profile, profile, NOW + timedelta(days=1), None)


def _assert_same(expected: Any, actual: Any) -> None:
    """Same JSON, timestamps and counts exactly, floats to 1e-12 (bucket means merged from two parts round
    differently in the last bits)."""
    if isinstance(expected, dict):
        assert set(expected) == set(actual)
        for key in expected:
            _assert_same(expected[key], actual[key])
    elif isinstance(expected, list | tuple):
        assert len(expected) == len(actual)
        for e, a in zip(expected, actual, strict=True):
            _assert_same(e, a)
    elif isinstance(expected, float):
        assert expected == pytest.approx(actual, rel=1e-12, abs=1e-12)
    else:
        assert expected == actual


@pytest.mark.parametrize("points", [7, 40, 500])
async def test_query_spanning_archive_and_live_matches_the_query_before_archiving(
    client_api: ClientApi, points: int
) -> None:
    """A custom window from 41 to 19 days ago, with 7 (odd, straddling widths), 40 or 500 points: after the archiver
    moved everything older than 30 days to Parquet — and even after those rows left PostgreSQL — SPC, custom and
    PSI answer what they answered before archiving."""
    await _seed(client_api)
    store = MemoryStore()
    _with_archive(client_api, store)
    begin, end = NOW - timedelta(days=41), NOW - timedelta(days=19)
    queries = {kind: _query(kind.capitalize(), points, begin, end) for kind in ("spc", "custom", "psi")}
    before = {kind: await _get(client_api, kind, q) for kind, q in queries.items()}
    assert all(200 == status for status, _ in before.values()), before
    assert before["spc"][1]["features"]["feature_0"]["values"]
    assert ["feature_0"] == list(before["psi"][1]["features"])

    report = await archiver(client_api.db, store).run_once()
    assert report.rows > 0
    assert 0 < await client_api.db.fetchval("SELECT count(*) FROM scouter.spc_drift WHERE NOT archived")
    after = {kind: await _get(client_api, kind, q) for kind, q in queries.items()}
    _assert_same(before, after)

    # the partitions past retention are dropped: the archived part now exists only in Parquet
    for table in ("spc_drift", "custom_drift", "psi_drift"):
        await client_api.db.execute(f"DELETE FROM scouter.{table} WHERE archived")
    dropped = {kind: await _get(client_api, kind, q) for kind, q in queries.items()}
    _assert_same(before, dropped)


async def test_window_wholly_in_the_archive(client_api: ClientApi) -> None:
    """A window that ends before the boundary is answered from Parquet alone, newest first, with PostgreSQL's
    numbers."""
    await _seed(client_api)
    store = MemoryStore()
    _with_archive(client_api, store)
    begin, end = BASE, NOW - timedelta(days=32)
    query = _query("Spc", 12, begin, end)
    before = await _get(client_api, "spc", query)
    await archiver(client_api.db, store).run_once()
    await client_api.db.execute("DELETE FROM scouter.spc_drift WHERE archived")
    after = await _get(client_api, "spc", query)
    _assert_same(before, after)
    stamps = after[1]["features"]["feature_1"]["created_at"]
    assert sorted(stamps, reverse=True) == stamps
    assert 12 <= len(stamps) <= 13


async def test_no_archive_at_all_is_an_empty_result(client_api: ClientApi) -> None:
    """A window past retention with nothing archived and nothing live: empty maps, not a 500 (server.md §12 #25)."""
    _with_archive(client_api, MemoryStore())
    begin, end = NOW - timedelta(days=90), NOW - timedelta(days=80)
    assert (200, {"features": {}}) == await _get(client_api, "spc", _query("Spc", 10, begin, end))
    assert (200, {"metrics": {}}) == await _get(client_api, "custom", _query("Custom", 10, begin, end))


async def test_rows_past_the_boundary_not_archived_yet_still_count(client_api: ClientApi) -> None:
    """Rows older than the boundary that the archiver has not reached yet come from PostgreSQL: nothing goes
    missing between the boundary and the archiver's last pass."""
    _with_archive(client_api, MemoryStore())
    moment = NOW - timedelta(days=35)
    await insert(client_api.db, "spc_drift", [(moment, *ENTITY.values(), "f", 2.5)])
    status, body = await _get(client_api, "spc", _query("Spc", 1, moment - timedelta(days=1), NOW))
    assert 200 == status
    assert [2.5] == body["features"]["f"]["values"]


async def test_a_corrupt_archived_object_is_a_500(client_api: ClientApi) -> None:
    """An object that is not Parquet fails the query with upstream's error shape, not a crash."""
    store = MemoryStore()
    _with_archive(client_api, store)
    moment = NOW - timedelta(days=35)
    await insert(client_api.db, "spc_drift", [(moment, *ENTITY.values(), "f", 2.5)])
    await archiver(client_api.db, store).run_once()
    # rows stored before the rollups existed: the archive answers for them (rollups would spare the read)
    await client_api.db.execute("UPDATE scouter.rollup_coverage SET since = now()")
    (key,) = keys(store)
    obstore.put(store, key, b"not parquet")
    status, body = await _get(client_api, "spc", _query("Spc", 1, moment - timedelta(days=1), NOW))
    assert 500 == status
    assert body["error"].startswith("Failed to query records: archive:")


async def test_names_are_bound_never_interpolated(client_api: ClientApi) -> None:
    """A name full of SQL finds nothing and breaks nothing: DataFusion gets it as a bound parameter."""
    store = MemoryStore()
    _with_archive(client_api, store)
    moment = NOW - timedelta(days=35)
    hostile = "x' OR '1'='1"
    await insert(
        client_api.db, "spc_drift", [(moment, "sp", hostile, "1.0.0", "f", 2.5), (moment, *ENTITY.values(), "f", 1.0)]
    )
    await archiver(client_api.db, store).run_once()
    query = {**_query("Spc", 1, moment - timedelta(days=1), NOW), "name": hostile}
    status, body = await _get(client_api, "spc", query)
    assert (200, [2.5]) == (status, body["features"]["f"]["values"])
    status, body = await _get(client_api, "spc", {**query, "name": "nm"})
    assert (200, [1.0]) == (status, body["features"]["f"]["values"])


async def test_psi_counts_of_both_parts_are_added_before_the_threshold(client_api: ClientApi) -> None:
    """One bucket holding 60 archived and 60 live counts: neither part alone passes the > 100 rule, together they
    do, and the proportions are those of the summed counts."""
    store = MemoryStore()
    _with_archive(client_api, store)
    await client_api.db.run(insert_profile, psi_profile({"f": [0.5, 0.5]}, **ENTITY), NOW + timedelta(days=1), None)
    archived_at = NOW - timedelta(days=30, hours=2)
    live_at = NOW - timedelta(days=30) + timedelta(hours=1)
    begin, end = NOW - timedelta(days=40), NOW - timedelta(days=20)
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    while (archived_at - epoch) // (end - begin) != (live_at - epoch) // (end - begin):  # one bucket for both
        end += timedelta(days=1)
    rows = [(archived_at, *ENTITY.values(), "f", 1, 40), (archived_at, *ENTITY.values(), "f", 2, 20)]
    rows += [(live_at, *ENTITY.values(), "f", 1, 20), (live_at, *ENTITY.values(), "f", 2, 40)]
    await insert(client_api.db, "psi_drift", rows)
    report = await archiver(client_api.db, store).run_once()
    assert 2 == report.rows
    status, body = await _get(client_api, "psi", _query("Psi", 1, begin, end))
    assert 200 == status
    assert {"1": 0.5, "2": 0.5} == body["features"]["f"]["bins"]
    assert [0.0] == body["features"]["f"]["psi"]
