"""scouter-ml 0.25 records, drift queries and alerts on a real PostgreSQL (server-v025.md §8-§10, §13.5-§13.6):
records filed under their own uid, unknown uids refused, permissions on the entity's space, identical binned numbers
for both request forms, paged typed alerts, out-of-scope routes answering 501."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from .support import ClientApi
from .test_v025_profiles import register, v025_body

pytestmark = pytest.mark.postgres

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)


def at(seconds_ago: float) -> str:
    return (NOW - dt.timedelta(seconds=seconds_ago)).isoformat().replace("+00:00", "Z")


def spc(uid: str, value: float, feature: str = "feature_0", seconds_ago: float = 30) -> dict[str, Any]:
    return {"Spc": {"created_at": at(seconds_ago), "entity_id": 0, "feature": feature, "uid": uid, "value": value}}


def custom(uid: str, value: float, seconds_ago: float = 30) -> dict[str, Any]:
    return {"Custom": {"created_at": at(seconds_ago), "entity_id": 0, "metric": "mae", "uid": uid, "value": value}}


async def count(api: ClientApi, table: str) -> int:
    value: int = await api.db.fetchval(f"SELECT count(*) FROM scouter.{table}")
    return value


async def entities(api: ClientApi) -> dict[str, dict[str, Any]]:
    return {
        "spc": await register(api, v025_body(3)),
        "psi": await register(api, v025_body(4)),
        "custom": await register(api, v025_body(5)),
    }


async def test_message_files_each_record_under_its_own_uid(client_api: ClientApi) -> None:
    """One message with records of two entities (and a 0.6.4 record): each stored under its own entity, on both
    ingest routes (upstream files the whole message under the first record's uid)."""
    ent = await entities(client_api)
    old = {"Spc": {"created_at": at(20), "space": "cap25", "name": "model", "version": "1.0.0",
                   "feature": "feature_1", "value": 7.0}}  # fmt: skip
    body = {"records": [spc(ent["spc"]["uid"], 1.5), custom(ent["custom"]["uid"], 2.5), old]}
    response = await client_api.post("/scouter/message", body)
    assert (200, {"status": "success", "message": "Message queued for processing"}) == (
        response.status_code, await response.get_json(),
    )  # fmt: skip
    assert (
        200
        == (
            await client_api.post("/scouter/drift", {"records": [spc(ent["spc"]["uid"], 3.5, "feature_2")]})
        ).status_code
    )
    stored_spc = await client_api.db.fetch(
        "SELECT space, name, version, feature, value FROM scouter.spc_drift ORDER BY value"
    )
    assert [
        ("cap25", "model", "1.0.0", "feature_0", 1.5),
        ("cap25", "model", "1.0.0", "feature_2", 3.5),
        ("cap25", "model", "1.0.0", "feature_1", 7.0),
    ] == [tuple(r) for r in stored_spc]
    stored_custom = await client_api.db.fetch("SELECT space, name, version, metric, value FROM scouter.custom_drift")
    assert [("cap25", "model", "2.1.0", "mae", 2.5)] == [tuple(r) for r in stored_custom]


async def test_an_unknown_uid_is_refused_and_nothing_is_stored(client_api: ClientApi) -> None:
    ent = await entities(client_api)
    body = {"records": [spc(ent["spc"]["uid"], 1.0), spc("00000000-0000-0000-0000-000000000000", 2.0)]}
    response = await client_api.post("/scouter/message", body)
    assert 404 == response.status_code
    assert "00000000-0000-0000-0000-000000000000" in (await response.get_json())["error"]
    # a record of another kind than its uid's entity is refused too, never stored under a guess
    wrong_kind = await client_api.post("/scouter/message", {"records": [custom(ent["spc"]["uid"], 1.0)]})
    assert 404 == wrong_kind.status_code
    assert (0, 0) == (await count(client_api, "spc_drift"), await count(client_api, "custom_drift"))


async def test_write_permission_is_checked_on_the_uids_entity_space(client_api: ClientApi) -> None:
    ent = await entities(client_api)
    await client_api.api.create_user("otherwriter", permissions=["read:other", "write:other"])
    token = await client_api.api.login("otherwriter", "otherwriter")
    denied = await client_api.post("/scouter/message", {"records": [spc(ent["spc"]["uid"], 1.0)]}, token=token)
    body = await denied.get_json()
    assert (403, "Permission denied", "no write permission on space 'cap25'") == (
        denied.status_code, body["error"], body["message"],
    )  # fmt: skip
    assert 0 == await count(client_api, "spc_drift")


async def test_trace_tag_and_genai_payloads_are_dropped_and_counted(client_api: ClientApi) -> None:
    ent = await entities(client_api)
    assert 200 == (await client_api.post("/scouter/message", {"request": {"resource_spans": []}})).status_code
    tag = {"entity_type": "model", "entity_id": "x", "key": "k", "value": "v"}
    assert 200 == (await client_api.post("/scouter/message", tag)).status_code
    mixed = {"records": [{"GenAIEval": {"anything": 1}}, spc(ent["spc"]["uid"], 4.0)]}
    assert 200 == (await client_api.post("/scouter/message", mixed)).status_code
    registry = client_api.api.ctx.metrics.registry

    def dropped(kind: str) -> float | None:
        return registry.get_sample_value("scouter_records_dropped_total", {"kind": kind, "transport": "http"})

    assert (1.0, 1.0, 1.0) == (dropped("trace"), dropped("tag"), dropped("GenAIEval"))
    assert 1 == await count(client_api, "spc_drift")


async def test_binned_drift_by_uid_equals_binned_drift_by_name(client_api: ClientApi) -> None:
    """The same data read by uid (0.25) and by space/name/version (0.6.4): identical numbers, whichever window
    spelling (start_ or begin_custom_datetime) is used."""
    ent = await entities(client_api)
    records = [spc(ent["spc"]["uid"], v, seconds_ago=s) for v, s in ((1.0, 30), (2.0, 40), (6.0, 50))]
    records += [custom(ent["custom"]["uid"], v, seconds_ago=s) for v, s in ((1.0, 30), (3.0, 40))]
    assert 200 == (await client_api.post("/scouter/message", {"records": records})).status_code
    # One bucket (max_data_points 1) as wide as the window, aligned to the epoch: widen the window until no bucket
    # boundary falls among the records (50 to 30 seconds ago), whatever the time of day the test runs at.
    length, newest, oldest = 3660, NOW.timestamp() - 30, NOW.timestamp() - 50
    while newest // length != oldest // length:
        length += 60
    window = {"start": at(length - 60), "end": at(-60)}
    by_uid = {"uid": ent["spc"]["uid"], "space": "cap25", "time_interval": "Custom", "max_data_points": "1",
              "start_custom_datetime": window["start"], "end_custom_datetime": window["end"]}  # fmt: skip
    by_name = {
        "space": "cap25", "name": "model", "version": "1.0.0", "drift_type": "Spc", "time_interval": "OneHour",
        "max_data_points": "1", "begin_custom_datetime": window["start"], "end_custom_datetime": window["end"],
    }  # fmt: skip
    first = await client_api.get("/scouter/drift/spc", by_uid)
    second = await client_api.get("/scouter/drift/spc", by_name)
    assert 200 == first.status_code, await first.get_data(as_text=True)
    assert await first.get_json() == await second.get_json()
    assert [3.0] == (await first.get_json())["features"]["feature_0"]["values"]
    custom_uid = {**by_uid, "uid": ent["custom"]["uid"]}
    custom_name = {**by_name, "version": "2.1.0", "drift_type": "Custom"}
    first = await client_api.get("/scouter/drift/custom", custom_uid)
    assert await first.get_json() == await (await client_api.get("/scouter/drift/custom", custom_name)).get_json()
    (stats,) = (await first.get_json())["metrics"]["mae"]["stats"]
    assert 2.0 == stats["avg"]
    # 0.25's own intervals, without a window
    seven_days = {"uid": ent["spc"]["uid"], "space": "cap25", "time_interval": "SevenDays", "max_data_points": "10"}
    assert 200 == (await client_api.get("/scouter/drift/spc", seven_days)).status_code


async def test_drift_query_refuses_unknown_uids_and_uids_of_another_space(client_api: ClientApi) -> None:
    ent = await entities(client_api)
    query = {"uid": ent["spc"]["uid"], "space": "cap25", "time_interval": "OneHour", "max_data_points": "10"}
    assert 404 == (await client_api.get("/scouter/drift/spc", {**query, "uid": "nope"})).status_code
    assert 404 == (await client_api.get("/scouter/drift/spc", {**query, "uid": "a\x00b"})).status_code
    assert 404 == (await client_api.get("/scouter/drift/psi", query)).status_code  # an SPC uid on the PSI route
    await client_api.api.create_user("otherreader", permissions=["read:other"])
    token = await client_api.api.login("otherreader", "otherreader")
    denied = await client_api.get("/scouter/drift/spc", {**query, "space": "other"}, token=token)
    assert (403, {"error": "Permission denied"}) == (denied.status_code, await denied.get_json())
    custom_without_window = await client_api.get("/scouter/drift/spc", {**query, "time_interval": "Custom"})
    assert 400 == custom_without_window.status_code


async def _alerts(api: ClientApi, space: str, version: str, drift_type: str, maps: list[dict[str, str]]) -> None:
    await api.db.execute(
        "INSERT INTO scouter.drift_alert (created_at, space, name, version, entity_name, alert, drift_type)"
        " SELECT now() - make_interval(secs => i), $1, 'model', $2, a->>'entity_name', a, $3"
        " FROM jsonb_array_elements($4::jsonb) WITH ORDINALITY AS t(a, i)",
        space, version, drift_type, json.dumps(maps),
    )  # fmt: skip


async def test_alerts_are_paged_and_typed_for_0_25_and_listed_for_0_6_4(client_api: ClientApi) -> None:
    ent = await entities(client_api)
    maps = [{"entity_name": f"feature_{i}", "kind": "Out of bounds", "zone": "Zone 4"} for i in range(3)]
    await _alerts(client_api, "cap25", "1.0.0", "Spc", maps)
    await _alerts(client_api, "cap25", "2.1.0", "Custom", [{
        "entity_name": "mae", "training_metric_value": "1", "observed_metric_value": "2.5",
        "alert_threshold_value": "0.5", "alert_threshold": "Above"}])  # fmt: skip
    uid = ent["spc"]["uid"]
    request = {"uid": uid, "active": None, "cursor_created_at": None, "cursor_id": None, "direction": None,
               "end_datetime": None, "limit": 2, "start_datetime": None}  # fmt: skip
    first = await (await client_api.post("/scouter/alerts", request)).get_json()
    assert ["feature_0", "feature_1"] == [item["entity_name"] for item in first["items"]]
    assert {"Spc": {"feature": "feature_0", "kind": "OutOfBounds", "zone": "Zone4"}} == first["items"][0]["alert"]
    assert (True, False) == (first["has_next"], first["has_previous"])
    cursor = first["next_cursor"]
    following = {**request, "cursor_created_at": cursor["created_at"], "cursor_id": cursor["id"], "direction": "next"}
    second = await (await client_api.post("/scouter/alerts", following)).get_json()
    assert (["feature_2"], False, True) == (
        [item["entity_name"] for item in second["items"]], second["has_next"], second["has_previous"],
    )  # fmt: skip
    back = second["previous_cursor"]
    preceding = {**request, "cursor_created_at": back["created_at"], "cursor_id": back["id"], "direction": "previous"}
    previous = await (await client_api.post("/scouter/alerts", preceding)).get_json()
    assert ["feature_0", "feature_1"] == [item["entity_name"] for item in previous["items"]]
    typed = await (await client_api.post("/scouter/alerts", {**request, "uid": ent["custom"]["uid"]})).get_json()
    assert {"Custom": {"metric_name": "mae", "baseline_value": 1.0, "observed_value": 2.5, "delta": 0.5,
                       "alert_threshold": "Above"}} == typed["items"][0]["alert"]  # fmt: skip
    inactive = await (await client_api.post("/scouter/alerts", {**request, "active": False})).get_json()
    assert [] == inactive["items"]  # 0.25's active=false: the inactive ones only
    assert 404 == (await client_api.post("/scouter/alerts", {**request, "uid": "nope"})).status_code
    big = {**following, "cursor_id": 3_000_000_000}  # the client's cursor id is an i64
    assert 200 == (await client_api.post("/scouter/alerts", big)).status_code
    listed = await client_api.get("/scouter/alerts", {"space": "cap25", "name": "model", "version": "1.0.0"})
    assert 3 == len((await listed.get_json())["alerts"])


async def test_out_of_scope_routes_answer_501_naming_the_area(client_api: ClientApi) -> None:
    for method, path, area in (("GET", "/scouter/tags", "tags"), ("POST", "/scouter/trace/paginated", "tracing"),
                               ("GET", "/scouter/drift/genai/workflow", "GenAI")):  # fmt: skip
        call = client_api.get if method == "GET" else (lambda p, **_: client_api.post(p, {}))
        response = await call(path)
        body = await response.get_json()
        assert (501, "not implemented") == (response.status_code, body["error"])
        assert area in body["message"]
