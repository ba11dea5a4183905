"""Profile routes on a real PostgreSQL: register (upsert), update, status, download, permissions."""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from .support import ClientApi, captured

pytestmark = pytest.mark.postgres


def _posted(drift_type: str) -> dict[str, Any]:
    """The captured ProfileRequest body of `drift_type` (space cap, name model, version 1.0.0)."""
    for line in captured("POST", "/scouter/profile"):
        if line["body_json"]["drift_type"] == drift_type:
            body: dict[str, Any] = line["body_json"]
            return body
    raise AssertionError(drift_type)


def _changed(body: dict[str, Any], change: Any) -> dict[str, Any]:
    profile = json.loads(body["profile"])
    change(profile)
    return {**body, "profile": json.dumps(profile)}


async def _rows(api: ClientApi) -> list[dict[str, Any]]:
    records = await api.db.fetch(
        "SELECT space, name, version, drift_type, active, schedule, next_run, previous_run, scouter_version,"
        " profile::text AS profile FROM scouter.drift_profile ORDER BY drift_type"
    )
    return [dict(record) for record in records]


async def _register_all(api: ClientApi) -> None:
    for drift_type in ("Spc", "Psi", "Custom"):
        response = await api.post("/scouter/profile", _posted(drift_type))
        assert 200 == response.status_code, await response.get_data(as_text=True)


async def test_register_answers_upstream_body_and_stores_inactive_rows(client_api: ClientApi) -> None:
    """Each captured registration: upstream's success body plus the entity (the superset answer scouter-ml 0.25
    also accepts, server-v025.md §13.2); one inactive row, next_run the first cron firing."""
    before = datetime.now(UTC)
    for line in captured("POST", "/scouter/profile"):
        response = await client_api.post("/scouter/profile", line["body_json"])
        answer = await response.get_json()
        assert (line["status"], line["response_body"]) == (
            response.status_code,
            {key: answer[key] for key in ("status", "message")},
        )
        entity = (answer["space"], answer["name"], answer["version"], answer["active"])
        assert ("cap", "model", "1.0.0", False) == entity
    rows = await _rows(client_api)
    assert ["Custom", "Psi", "Spc"] == [row["drift_type"] for row in rows]
    for row in rows:
        assert ("cap", "model", "1.0.0", False, "0.6.4") == (
            row["space"],
            row["name"],
            row["version"],
            row["active"],
            row["scouter_version"],
        )
        assert before <= row["previous_run"] < row["next_run"] <= row["previous_run"] + timedelta(seconds=5)
        assert (0, 0) == (row["next_run"].second % 5, row["next_run"].microsecond)  # "*/5 * * * * *"
        stored = json.loads(row["profile"])
        assert stored["config"].pop("uid")  # the entity's uid, written into the stored profile
        assert json.loads(_posted(row["drift_type"])["profile"]) == stored


async def test_reregistering_replaces_profile_and_schedule_but_keeps_active(client_api: ClientApi) -> None:
    """Registering again: still one row, new profile, schedule and next_run, `active` untouched (§12 #8)."""
    first = _posted("Spc")
    assert 200 == (await client_api.post("/scouter/profile", first)).status_code
    status = {"name": "model", "space": "cap", "version": "1.0.0", "active": True, "drift_type": "Spc"}
    assert 200 == (await client_api.put("/scouter/profile/status", status)).status_code
    (original,) = await _rows(client_api)

    def change(profile: dict[str, Any]) -> None:
        profile["config"]["sample_size"] = 50
        profile["config"]["alert_config"]["schedule"] = "0 0 0 * * *"

    response = await client_api.post("/scouter/profile", _changed(first, change))
    answer = await response.get_json()
    assert ("success", "Drift profile inserted successfully", True) == (
        answer["status"],
        answer["message"],
        answer["active"],
    )
    (row,) = await _rows(client_api)
    assert (True, "0 0 0 * * *") == (row["active"], row["schedule"])
    assert 50 == json.loads(row["profile"])["config"]["sample_size"]
    assert (0, 0, 0) == (row["next_run"].hour, row["next_run"].minute, row["next_run"].second)
    assert original["previous_run"] == row["previous_run"]


_NOISE = secrets.token_hex(1500)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda p: p["config"].pop("sample_size"), "Invalid drift profile: config.sample_size: missing field"),
        (
            lambda p: p["config"]["alert_config"].update(schedule="0 61 * * * *"),
            "Invalid drift profile: config.alert_config.schedule: invalid cron '0 61 * * * *'",
        ),
        (lambda p: p["config"].update(name=""), "Invalid drift profile: config.name: must not be empty"),
        (
            # incompressible and longer than the unique index on (space, name, version, drift_type) holds: was a 500
            lambda p: p["config"].update(name=_NOISE),
            "Invalid drift profile: config.name: must be at most 512 bytes of UTF-8, got 3000 bytes",
        ),
    ],
)
async def test_bad_profiles_are_400_and_store_nothing(client_api: ClientApi, change: Any, message: str) -> None:
    """An unparsable profile or cron string is a 400 naming it; no row is written."""
    response = await client_api.post("/scouter/profile", _changed(_posted("Spc"), change))
    assert 400 == response.status_code
    assert (await response.get_json())["error"].startswith(message)
    assert [] == await _rows(client_api)


async def test_register_checks_write_permission_on_the_space(client_api: ClientApi) -> None:
    """A user without write on the space gets upstream's 403; with write:cap it may register."""
    await client_api.api.create_user("reader", permissions=["read:all"])
    await client_api.api.create_user("capwriter", permissions=["read:cap", "write:cap"])
    reader = await client_api.api.login("reader", "reader")
    writer = await client_api.api.login("capwriter", "capwriter")
    denied = await client_api.post("/scouter/profile", _posted("Spc"), token=reader)
    assert (403, {"error": "Permission denied"}) == (denied.status_code, await denied.get_json())
    assert 200 == (await client_api.post("/scouter/profile", _posted("Spc"), token=writer)).status_code
    unauthenticated = await client_api.api.client.post("/scouter/profile", json=_posted("Spc"))
    assert 401 == unauthenticated.status_code


async def test_update_recomputes_schedule_and_next_run(client_api: ClientApi) -> None:
    """PUT /scouter/profile replaces the profile and recomputes schedule and next_run (§12 #9)."""
    await _register_all(client_api)
    hourly = _changed(_posted("Custom"), lambda p: p["config"]["alert_config"].update(schedule="0 0 * * * *"))
    response = await client_api.put("/scouter/profile", hourly)
    assert {"status": "success", "message": "Drift profile updated successfully"} == await response.get_json()
    rows = {row["drift_type"]: row for row in await _rows(client_api)}
    assert "0 0 * * * *" == rows["Custom"]["schedule"]
    assert (0, 0) == (rows["Custom"]["next_run"].minute, rows["Custom"]["next_run"].second)
    assert "*/5 * * * * *" == rows["Spc"]["schedule"]


async def test_update_of_unknown_profile_is_404(client_api: ClientApi) -> None:
    """Updating a profile that was never registered answers 404 and creates nothing."""
    response = await client_api.put("/scouter/profile", _posted("Psi"))
    assert (404, {"error": "Drift profile not found"}) == (response.status_code, await response.get_json())
    assert [] == await _rows(client_api)


async def test_captured_status_requests_answer_upstream_messages(client_api: ClientApi) -> None:
    """The client's status requests, replayed in order, answer upstream's messages and set `active`."""
    await _register_all(client_api)
    for line in captured("PUT", "/scouter/profile/status"):
        response = await client_api.put("/scouter/profile/status", line["body_json"])
        assert line["response_body"] == await response.get_json()
    # the last captured request deactivates every drift type (drift_type null)
    assert [False, False, False] == [row["active"] for row in await _rows(client_api)]


async def test_status_with_drift_type_and_deactivate_others(client_api: ClientApi) -> None:
    """drift_type restricts the update; deactivate_others turns off other versions of that type only."""
    await _register_all(client_api)
    v2 = _changed(_posted("Spc"), lambda p: p["config"].update(version="2.0.0"))
    assert 200 == (await client_api.post("/scouter/profile", v2)).status_code
    on = {"name": "model", "space": "cap", "version": "1.0.0", "active": True, "drift_type": None}
    assert 200 == (await client_api.put("/scouter/profile/status", on)).status_code
    assert 200 == (await client_api.put("/scouter/profile/status", {**on, "version": "2.0.0"})).status_code
    body = {**on, "drift_type": "Spc", "deactivate_others": True}
    response = await client_api.put("/scouter/profile/status", body)
    assert "Monitor profile status updated to true for model cap 1.0.0" == (await response.get_json())["message"]
    active = {(r["version"], r["drift_type"]): r["active"] for r in await _rows(client_api)}
    assert {
        ("1.0.0", "Custom"): True,
        ("1.0.0", "Psi"): True,
        ("1.0.0", "Spc"): True,
        ("2.0.0", "Spc"): False,
    } == active


async def test_status_of_unknown_profile_is_200_as_upstream_logged_and_changes_nothing(
    client_api: ClientApi, caplog: pytest.LogCaptureFixture
) -> None:
    """No matching row: upstream's 200 and message (the client returns True and clean-up scripts carry on), a
    warning in the log, and deactivate_others did not touch the other versions."""
    await _register_all(client_api)
    await client_api.put(
        "/scouter/profile/status", {"name": "model", "space": "cap", "version": "1.0.0", "active": True}
    )
    body = {"name": "model", "space": "cap", "version": "9", "active": True, "deactivate_others": True}
    response = await client_api.put("/scouter/profile/status", body)
    expected = {"status": "success", "message": "Monitor profile status updated to true for model cap 9"}
    assert (200, expected) == (response.status_code, await response.get_json())
    assert [True, True, True] == [row["active"] for row in await _rows(client_api)]
    assert any("no drift profile cap/model/9" in record.getMessage() for record in caplog.records)
    bad = await client_api.put("/scouter/profile/status", {**body, "active": "yes"})
    assert (400, {"error": 'Invalid request: active: expected true or false, got "yes"'}) == (
        bad.status_code,
        await bad.get_json(),
    )


@pytest.mark.parametrize("line", captured("GET", "/scouter/profile"), ids=lambda line: line["query_raw"][:60])
async def test_download_matches_captured_response(client_api: ClientApi, line: dict[str, Any]) -> None:
    """GET /scouter/profile serves the tagged profile field by field like the capture ("-inf" strings kept)."""
    await _register_all(client_api)
    response = await client_api.get("/scouter/profile", line["query"])
    if line["query"]["name"] != "model":  # captured against other profiles of the session: ours has none
        assert (404, {"error": "Drift profile not found"}) == (response.status_code, await response.get_json())
        return
    assert 200 == response.status_code
    served = json.loads(await response.get_data(as_text=True))
    (drift_type, profile) = next(iter(served.items()))
    # the superset profile (server-v025.md §13.4): the capture plus what scouter-ml 0.25 needs
    assert profile["config"].pop("uid")
    if drift_type == "Psi":
        assert {"QuantileBinning": {"num_bins": 10}} == profile["config"].pop("binning_strategy")
    assert line["response_body"] == served


async def test_download_psi_keeps_infinite_limits_as_strings(client_api: ClientApi) -> None:
    """The PSI profile's outer bin limits come back as the strings "-inf" and "inf"."""
    await _register_all(client_api)
    query = {"name": "model", "space": "cap", "version": "1.0.0", "drift_type": "Psi"}
    body = await (await client_api.get("/scouter/profile", query)).get_json()
    bins = body["Psi"]["features"]["feature_0"]["bins"]
    assert ("-inf", "inf") == (bins[0]["lower_limit"], bins[-1]["upper_limit"])


async def test_download_errors(client_api: ClientApi) -> None:
    """A missing query field is a 400 naming it; reading needs read permission on the space."""
    query = {"name": "model", "space": "cap", "version": "1.0.0"}
    missing = await client_api.get("/scouter/profile", query)
    assert (400, {"error": "Invalid request: drift_type: missing field"}) == (
        missing.status_code,
        await missing.get_json(),
    )
    await client_api.api.create_user("other", permissions=["read:other"])
    token = await client_api.api.login("other", "other")
    denied = await client_api.get("/scouter/profile", {**query, "drift_type": "Spc"}, token=token)
    assert (403, {"error": "Permission denied"}) == (denied.status_code, await denied.get_json())
