"""GET /scouter/observability/metrics on a real PostgreSQL: per-route buckets, sums, averages, errors."""

from __future__ import annotations

import statistics
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from .support import ClientApi

pytestmark = pytest.mark.postgres

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _route(name: str, base: float, requests: int, errors: int, codes: dict[str, int]) -> dict[str, Any]:
    return {
        "route_name": name,
        "metrics": {"p5": base, "p25": base + 1, "p50": base + 2, "p95": base + 8, "p99": base + 9},
        "request_count": requests,
        "error_count": errors,
        "error_latency": base * 2,
        "status_codes": codes,
    }


async def _insert(api: ClientApi, moment: datetime, routes: list[dict[str, Any]]) -> None:
    await api.db.execute(
        "INSERT INTO scouter.observability_metric (created_at, space, name, version, request_count, error_count,"
        " route_metrics) VALUES ($1, 'sp', 'nm', '1.0.0', 0, 0, $2::jsonb)",
        moment,
        orjson.dumps(routes).decode(),
    )


def _query(**extra: str) -> dict[str, str]:
    return {
        "space": "sp",
        "name": "nm",
        "version": "1.0.0",
        "time_interval": "15minute",
        "max_data_points": "15",
    } | extra


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


async def test_routes_are_aggregated_per_bucket(client_api: ClientApi) -> None:
    """15 minutes / 15 points = 1-minute buckets: mean percentiles and latency, summed counts and status codes."""
    now = datetime.now(UTC)
    width = timedelta(minutes=1)
    late = EPOCH + ((now - timedelta(seconds=90) - EPOCH) // width) * width  # a whole bucket well inside the window
    early = late - timedelta(minutes=5)
    await _insert(client_api, late + timedelta(seconds=1), [_route("/home", 1.0, 3, 1, {"200": 2, "500": 1})])
    await _insert(
        client_api,
        late + timedelta(seconds=50),
        [_route("/home", 2.0, 5, 0, {"200": 5}), _route("/a", 0.5, 1, 0, {"200": 1})],
    )
    await _insert(client_api, early + timedelta(seconds=3), [_route("/home", 4.0, 2, 2, {"404": 2})])
    await _insert(client_api, now - timedelta(hours=1), [_route("/home", 100.0, 9, 9, {"500": 9})])  # outside

    response = await client_api.get("/scouter/observability/metrics", _query())
    assert 200 == response.status_code
    body = orjson.loads(await response.get_data())
    assert "success" == body["status"]
    routes = {route["route_name"]: route for route in body["data"]}
    assert {"/a", "/home"} == set(routes)
    home = routes["/home"]
    assert [_stamp(late), _stamp(early)] == home["created_at"]
    assert [statistics.fmean([1.0, 2.0]), 4.0] == home["p5"]
    assert [statistics.fmean([10.0, 11.0]), 13.0] == home["p99"]
    assert [8, 2] == home["total_request_count"]
    assert [1, 2] == home["total_error_count"]
    assert [statistics.fmean([2.0, 4.0]), 8.0] == home["error_latency"]
    assert [{"200": 7, "500": 1}, {"404": 2}] == home["status_counts"]
    assert {
        "route_name": "/a",
        "created_at": [_stamp(late)],
        "p5": [0.5],
        "p25": [1.5],
        "p50": [2.5],
        "p95": [8.5],
        "p99": [9.5],
        "total_request_count": [1],
        "total_error_count": [0],
        "error_latency": [1.0],
        "status_counts": [{"200": 1}],
    } == routes["/a"]


async def test_ingested_observability_records_are_queryable(client_api: ClientApi) -> None:
    """An Observability record sent through POST /scouter/drift shows up in the last bucket."""
    record = {
        "space": "sp",
        "name": "nm",
        "version": "1.0.0",
        "request_count": 3,
        "error_count": 1,
        "route_metrics": [_route("/home", 1.0, 3, 1, {"200": 2, "500": 1})],
    }
    assert 200 == (await client_api.post("/scouter/drift", {"records": [{"Observability": record}]})).status_code
    response = await client_api.get(
        "/scouter/observability/metrics", _query(time_interval="5minute", max_data_points="1")
    )
    (home,) = (await response.get_json())["data"]
    assert (["/home"], [3], [{"200": 2, "500": 1}]) == (
        [home["route_name"]],
        home["total_request_count"],
        home["status_counts"],
    )


async def test_errors_use_the_status_error_shape(client_api: ClientApi) -> None:
    """A bad max_data_points is a 400 in the route's own error shape; an empty window is an empty list."""
    response = await client_api.get("/scouter/observability/metrics", _query(max_data_points="-1.5"))
    message = "Invalid request: max_data_points: expected an integer, got '-1.5'"
    assert (400, {"status": "error", "message": message}) == (response.status_code, await response.get_json())
    empty = await client_api.get("/scouter/observability/metrics", _query(name="nobody"))
    assert {"status": "success", "data": []} == await empty.get_json()


async def test_reading_needs_read_permission(client_api: ClientApi) -> None:
    """Upstream checked nothing here (§12 #14); read on the space is required."""
    await client_api.api.create_user("elsewhere", permissions=["read:elsewhere"])
    token = await client_api.api.login("elsewhere", "elsewhere")
    response = await client_api.get("/scouter/observability/metrics", _query(), token=token)
    assert (403, {"error": "Permission denied"}) == (response.status_code, await response.get_json())
