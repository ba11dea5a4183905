"""GET /scouter/drift/{spc,psi,custom} on a real PostgreSQL: real bucket widths, values, shapes as captured."""

from __future__ import annotations

import math
import random
import re
import statistics
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from .support import ClientApi, captured

pytestmark = pytest.mark.postgres

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: The form of every datetime in the captured responses: microseconds and Z.
STAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")
ENTITY = {"space": "cap", "name": "model", "version": "1.0.0"}


def _bucket(moment: datetime, width: timedelta) -> datetime:
    """Epoch-aligned bucket start, computed here independently of the server."""
    return EPOCH + ((moment - EPOCH) // width) * width


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _wire(moment: datetime) -> str:
    """A record timestamp as the client writes it: nine fractional digits."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + "123Z"


def _query(interval: str, points: int, drift_type: str, **extra: str) -> dict[str, Any]:
    return {**ENTITY, "time_interval": interval, "max_data_points": str(points), "drift_type": drift_type, **extra}


def _captured_body(path: str) -> dict[str, Any]:
    body: dict[str, Any] = captured("GET", path)[0]["response_body"]
    return body


def _assert_same_shape(reference: Any, ours: Any, path: str = "") -> None:
    """Same JSON types all the way down, with the captured keys at fixed-key levels and the same datetime form."""
    if isinstance(reference, dict):
        assert isinstance(ours, dict), path
        return
    if isinstance(reference, list):
        assert isinstance(ours, list), path
        for item in ours:
            _assert_same_shape(reference[0], item, f"{path}[]")
        return
    if isinstance(reference, str) and STAMP.fullmatch(reference):
        assert isinstance(ours, str), path
        assert STAMP.fullmatch(ours), (path, ours)
        return
    if isinstance(reference, float):
        assert type(ours) in (float, int), path
        assert math.isfinite(ours), path
        return
    assert type(reference) is type(ours), path


def _assert_entry_like(reference: dict[str, Any], ours: dict[str, Any]) -> None:
    assert set(reference) == set(ours)
    for key, value in reference.items():
        if isinstance(value, list) and value and isinstance(value[0], dict):  # custom stats
            for item in ours[key]:
                assert set(value[0]) == set(item)
                for field in value[0]:
                    _assert_same_shape(value[0][field], item[field], f"{key}.{field}")
        elif key == "bins":
            assert all(k.isdigit() and type(v) is float for k, v in ours[key].items())
        else:
            _assert_same_shape(value, ours[key], key)


async def _post(api: ClientApi, records: list[dict[str, Any]]) -> None:
    for start in range(0, len(records), 500):
        response = await api.post("/scouter/drift", {"records": records[start : start + 500]})
        assert 200 == response.status_code, await response.get_data(as_text=True)


async def _get(api: ClientApi, kind: str, query: dict[str, Any], token: str | None = None) -> tuple[int, Any]:
    response = await api.get(f"/scouter/drift/{kind}", query, token=token)
    return response.status_code, orjson.loads(await response.get_data())


# --- SPC -------------------------------------------------------------------------------------------------------------


async def test_spc_bucket_means_with_real_widths(client_api: ClientApi) -> None:
    """FiveMinutes / 100 points = 3 s epoch-aligned buckets; each value is its bucket's mean, newest first."""
    rng = random.Random(6)
    now = datetime.now(UTC)
    samples: dict[str, list[tuple[datetime, float]]] = defaultdict(list)
    records = []
    for feature in ("feature_0", "feature_1"):
        for _ in range(60):
            moment = now - timedelta(seconds=rng.uniform(1, 240))
            value = rng.gauss(0, 1)
            samples[feature].append((moment, value))
            records.append({"Spc": {**ENTITY, "created_at": _wire(moment), "feature": feature, "value": value}})
    outside = [
        {"Spc": {**ENTITY, "created_at": _wire(now - timedelta(minutes=10)), "feature": "feature_0", "value": 99.0}},
        {"Spc": {**ENTITY, "version": "2.0.0", "created_at": _wire(now), "feature": "feature_0", "value": 99.0}},
    ]
    await _post(client_api, records + outside)

    status, body = await _get(client_api, "spc", _query("FiveMinutes", 100, "Spc"))
    assert 200 == status
    width = timedelta(seconds=3)
    expected: dict[str, Any] = {}
    for feature, points in samples.items():
        buckets: dict[datetime, list[float]] = defaultdict(list)
        for moment, value in points:
            buckets[_bucket(moment, width)].append(value)
        order = sorted(buckets, reverse=True)
        expected[feature] = ([_stamp(b) for b in order], [statistics.fmean(buckets[b]) for b in order])
    assert set(expected) == set(body["features"])
    for feature, (stamps, means) in expected.items():
        assert stamps == body["features"][feature]["created_at"]
        assert means == pytest.approx(body["features"][feature]["values"], rel=1e-12)
    reference = _captured_body("/scouter/drift/spc")
    assert set(reference) == set(body)
    for entry in body["features"].values():
        _assert_entry_like(next(iter(reference["features"].values())), entry)


async def test_spc_custom_interval_is_exact_and_sets_the_width(client_api: ClientApi) -> None:
    """[begin, end] is queried exactly (both ends included), with width (end - begin) / max_data_points."""
    end = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    begin = end - timedelta(hours=1)
    moments = [begin - timedelta(seconds=1), begin, begin + timedelta(minutes=25), end, end + timedelta(seconds=1)]
    records = [
        {"Spc": {**ENTITY, "created_at": _stamp(m), "feature": "f", "value": float(i)}} for i, m in enumerate(moments)
    ]
    await _post(client_api, records)
    query = _query("FiveMinutes", 4, "Spc", begin_custom_datetime=_stamp(begin), end_custom_datetime=_stamp(end))
    status, body = await _get(client_api, "spc", query)
    assert 200 == status
    width = timedelta(minutes=15)
    buckets: dict[datetime, list[float]] = defaultdict(list)
    for i, moment in enumerate(moments[1:4], start=1):
        buckets[_bucket(moment, width)].append(float(i))
    order = sorted(buckets, reverse=True)
    assert {
        "features": {
            "f": {"created_at": [_stamp(b) for b in order], "values": [statistics.fmean(buckets[b]) for b in order]}
        }
    } == body


async def test_unknown_entity_is_an_empty_map(client_api: ClientApi) -> None:
    """SPC and custom answer an empty map for an entity with no data."""
    assert (200, {"features": {}}) == await _get(client_api, "spc", _query("OneHour", 10, "Spc"))
    assert (200, {"metrics": {}}) == await _get(client_api, "custom", _query("OneHour", 10, "Custom"))


@pytest.mark.parametrize("kind", ["spc", "psi", "custom"])
@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"max_data_points": "2147483648"}, "Invalid drift request: max_data_points: must be a 32-bit integer"),
        ({"time_interval": "Forever"}, "Invalid drift request: time_interval: unknown interval 'Forever'"),
        (
            {"begin_custom_datetime": "2026-01-02T00:00:00Z", "end_custom_datetime": "2026-01-01T00:00:00Z"},
            "Invalid drift request: begin_custom_datetime must be before end_custom_datetime",
        ),
        ({"version": None}, "Invalid drift request: version: missing field"),
    ],
)
async def test_bad_requests_are_400(client_api: ClientApi, kind: str, change: dict[str, Any], message: str) -> None:
    """Points beyond 32 bits, unknown intervals, begin >= end and missing fields are 400 naming the field, on every
    route."""
    query = {k: v for k, v in {**_query("OneHour", 10, kind.capitalize()), **change}.items() if v is not None}
    status, body = await _get(client_api, kind, query)
    assert 400 == status
    assert body["error"].startswith(message), body


async def test_queries_need_read_permission(client_api: ClientApi) -> None:
    """A user who may read another space only is refused with upstream's 403."""
    await client_api.api.create_user("elsewhere", permissions=["read:elsewhere"])
    token = await client_api.api.login("elsewhere", "elsewhere")
    for kind in ("spc", "psi", "custom"):
        assert (403, {"error": "Permission denied"}) == await _get(
            client_api, kind, _query("OneHour", 10, kind.capitalize()), token=token
        )


# --- PSI -------------------------------------------------------------------------------------------------------------


def _psi(expected: list[tuple[int, float]], observed: dict[int, float]) -> float:
    eps = 1e-10
    total = 0.0
    for bin_id, p in expected:
        q = observed.get(bin_id, 0.0)
        total += ((p + eps) - (q + eps)) * math.log((p + eps) / (q + eps))
    return total


async def _register_psi(api: ClientApi) -> dict[str, list[tuple[int, float]]]:
    """Register the captured PSI profile; returns feature -> [(bin id, proportion)] in profile order."""
    for line in captured("POST", "/scouter/profile"):
        if line["body_json"]["drift_type"] == "Psi":
            assert 200 == (await api.post("/scouter/profile", line["body_json"])).status_code
            profile = orjson.loads(line["body_json"]["profile"])
            return {
                name: [(b["id"], b["proportion"]) for b in feature["bins"]]
                for name, feature in profile["features"].items()
            }
    raise AssertionError("no captured PSI profile")


async def test_psi_per_bucket_and_overall_against_the_profile(client_api: ClientApi) -> None:
    """Per-bucket PSI (buckets over 100 samples only), true overall bins and PSI, computed independently here."""
    profile = await _register_psi(client_api)
    rng = random.Random(3)
    now = datetime.now(UTC)
    width = timedelta(seconds=9)  # FifteenMinutes / 100
    moments = [now - timedelta(seconds=s) for s in (20, 200, 400)]
    assert len({_bucket(m, width) for m in moments}) == 3
    counts: dict[datetime, dict[int, int]] = {}
    records = []
    for moment, size in zip(moments, (1000, 60, 300), strict=True):  # the 60-sample bucket is too small to show
        skew = rng.uniform(0.5, 2.0)
        weights = [skew**i for i in range(10)]
        drawn = rng.choices(range(1, 11), weights=weights, k=size)
        bucket_counts = {b: drawn.count(b) for b in range(1, 11)}
        counts[_bucket(moment, width)] = bucket_counts
        for bin_id, count in bucket_counts.items():  # zero counts included, as the client sends them
            records.append(
                {
                    "Psi": {
                        **ENTITY,
                        "created_at": _wire(moment),
                        "feature": "feature_0",
                        "bin_id": bin_id,
                        "bin_count": count,
                    }
                }
            )
        records.append(
            {"Psi": {**ENTITY, "created_at": _wire(moment), "feature": "not_profiled", "bin_id": 1, "bin_count": 500}}
        )
    await _post(client_api, records)

    status, body = await _get(client_api, "psi", _query("FifteenMinutes", 100, "Psi"))
    assert 200 == status
    assert ["feature_0"] == list(body["features"])
    ours = body["features"]["feature_0"]
    kept = sorted((b for b, c in counts.items() if sum(c.values()) > 100), reverse=True)
    assert [_stamp(b) for b in kept] == ours["created_at"]
    expected_psi = [
        _psi(profile["feature_0"], {i: c / sum(counts[b].values()) for i, c in counts[b].items()}) for b in kept
    ]
    assert expected_psi == pytest.approx(ours["psi"], rel=1e-12)
    totals = {i: sum(c[i] for c in counts.values()) for i in range(1, 11)}
    grand = sum(totals.values())
    assert {str(i): totals[i] / grand for i in totals} == pytest.approx(ours["bins"], rel=1e-12)
    overall = _psi(profile["feature_0"], {i: totals[i] / grand for i in totals})
    assert overall == pytest.approx(ours["overall_psi"], rel=1e-12)
    reference = _captured_body("/scouter/drift/psi")
    _assert_entry_like(next(iter(reference["features"].values())), ours)


async def test_psi_without_a_profile_is_a_404_with_upstreams_message(client_api: ClientApi) -> None:
    """No PSI profile for the entity: 404 (upstream: 500) with upstream's message; the client fails either way."""
    assert (404, {"error": "Failed to query records: No Profile found"}) == await _get(
        client_api, "psi", _query("OneHour", 10, "Psi")
    )


# --- custom ----------------------------------------------------------------------------------------------------------


async def test_custom_stats_are_mean_and_sample_stddev(client_api: ClientApi) -> None:
    """avg and avg ∓ stddev_samp per bucket; a single value has both bounds equal to it."""
    now = datetime.now(UTC)
    width = timedelta(seconds=36)  # OneHour / 100
    early, late = now - timedelta(minutes=30), now - timedelta(seconds=2)
    assert _bucket(early, width) != _bucket(late, width)
    values = [11.5, 10.0, 12.25, 13.0]
    records = [{"Custom": {**ENTITY, "created_at": _wire(early), "metric": "mae", "value": v}} for v in values]
    records.append({"Custom": {**ENTITY, "created_at": _wire(late), "metric": "mae", "value": 4.5}})
    await _post(client_api, records)
    status, body = await _get(client_api, "custom", _query("OneHour", 100, "Custom"))
    assert 200 == status
    mean, sd = statistics.fmean(values), statistics.stdev(values)
    mae = body["metrics"]["mae"]
    assert "mae" == mae["metric"]
    assert [_stamp(_bucket(late, width)), _stamp(_bucket(early, width))] == mae["created_at"]
    assert {"avg": 4.5, "lower_bound": 4.5, "upper_bound": 4.5} == mae["stats"][0]
    assert [mean, mean - sd, mean + sd] == pytest.approx(
        [mae["stats"][1]["avg"], mae["stats"][1]["lower_bound"], mae["stats"][1]["upper_bound"]], rel=1e-12
    )
    reference = _captured_body("/scouter/drift/custom")
    assert set(reference) == set(body)
    _assert_entry_like(reference["metrics"]["mae"], mae)
