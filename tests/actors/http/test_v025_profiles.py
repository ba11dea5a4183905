"""scouter-ml 0.25 profile routes on a real PostgreSQL (server-v025.md §5, §6, §13.2, §13.4), with the captured bodies
of the real 0.25 and 0.6.4 clients: server-chosen versions, uids, the superset answer and the superset profile."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.captures import CAPTURES

from .support import ClientApi, captured

pytestmark = pytest.mark.postgres

#: Requests of the real scouter-ml 0.25.0 client (spec captures-v025/http/003-005, copied verbatim).
CAPTURES_V025 = CAPTURES / "v025"
ANSWER_KEYS = {"status", "message", "space", "name", "version", "uid", "active"}


def v025_body(number: int) -> dict[str, Any]:
    """The request body of capture `number` (e.g. 3: the 0.25 SPC registration, space cap25)."""
    (path,) = CAPTURES_V025.glob(f"{number:03d}-*.json")
    body: dict[str, Any] = json.loads(path.read_text())["body_json"]
    return body


def v064_body(drift_type: str) -> dict[str, Any]:
    for line in captured("POST", "/scouter/profile"):
        if line["body_json"]["drift_type"] == drift_type:
            body: dict[str, Any] = line["body_json"]
            return body
    raise AssertionError(drift_type)


async def register(api: ClientApi, body: dict[str, Any], status: int = 200) -> dict[str, Any]:
    response = await api.post("/scouter/profile", body)
    answer: dict[str, Any] = await response.get_json()
    assert status == response.status_code, answer
    return answer


async def rows(api: ClientApi) -> list[dict[str, Any]]:
    records = await api.db.fetch(
        "SELECT uid, space, name, version, drift_type, active, profile::text AS profile FROM scouter.drift_profile"
        " ORDER BY drift_type, created_at"
    )
    return [{**dict(r), "profile": json.loads(r["profile"])} for r in records]


async def test_v025_registration_answers_the_entity_with_a_server_chosen_version(client_api: ClientApi) -> None:
    """SPC 1.0.0 → 1.0.0 then 1.1.0 (a new entity, a new uid); PSI without version → 0.1.0; custom "2.1" → 2.1.0;
    each answer carries every field the 0.25 client requires, the stored profile the assigned version and uid."""
    spc = await register(client_api, v025_body(3))
    assert ANSWER_KEYS == set(spc)
    assert ("cap25", "model", "1.0.0", False, "success") == (
        spc["space"], spc["name"], spc["version"], spc["active"], spc["status"],
    )  # fmt: skip
    psi = await register(client_api, v025_body(4))
    assert ("0.1.0", True) == (psi["version"], psi["active"])
    custom = await register(client_api, v025_body(5))
    assert "2.1.0" == custom["version"]
    again = await register(client_api, v025_body(3))
    assert "1.1.0" == again["version"]
    assert again["uid"] != spc["uid"]
    stored = {(r["drift_type"], r["version"]): r for r in await rows(client_api)}
    assert {("Custom", "2.1.0"), ("Psi", "0.1.0"), ("Spc", "1.0.0"), ("Spc", "1.1.0")} == set(stored)
    for answer, key in ((spc, ("Spc", "1.0.0")), (again, ("Spc", "1.1.0")), (psi, ("Psi", "0.1.0"))):
        row = stored[key]
        assert (answer["uid"], answer["uid"], key[1]) == (
            row["uid"],
            row["profile"]["config"]["uid"],
            row["profile"]["config"]["version"],
        )
    # the uid the client generated before registering is not the entity's (the server assigns it)
    sent = json.loads(v025_body(3)["profile"])["config"]["uid"]
    assert sent not in {spc["uid"], again["uid"]}


async def test_v025_active_with_deactivate_others_leaves_one_active_version(client_api: ClientApi) -> None:
    body = {**v025_body(3), "active": True, "deactivate_others": True}
    first = await register(client_api, body)
    second = await register(client_api, body)
    active = {r["version"]: r["active"] for r in await rows(client_api)}
    assert {first["version"]: False, second["version"]: True} == active


async def test_a_version_collision_keeps_the_existing_uid(client_api: ClientApi) -> None:
    """1.0.0 and 1.1.0 exist; registering 1.0.0 again lands on 1.1.0: that entity keeps its uid and gets the new
    profile (upstream rotated the uid, breaking the queues that hold it)."""
    first = await register(client_api, v025_body(3))
    second = await register(client_api, v025_body(3))
    body = v025_body(3)
    profile = json.loads(body["profile"])
    profile["config"]["sample_size"] = 99
    third = await register(client_api, {**body, "profile": json.dumps(profile)})
    assert (second["version"], second["uid"]) == (third["version"], third["uid"])
    stored = await rows(client_api)
    assert 2 == len(stored)
    (bumped,) = [r for r in stored if r["version"] == "1.1.0"]
    assert 99 == bumped["profile"]["config"]["sample_size"]
    assert first["uid"] in {r["uid"] for r in stored}


async def test_pre_release_versions_are_served(client_api: ClientApi) -> None:
    """Upstream answers 500 for a version with a pre-release suffix; here it is kept, and bumping drops it."""
    body = v025_body(3)
    request = {**body, "version_request": {**body["version_request"], "version": "1.0.0-rc.1"}}
    assert "1.0.0-rc.1" == (await register(client_api, request))["version"]
    assert "1.1.0" == (await register(client_api, request))["version"]
    tagged = {**body, "version_request": {**body["version_request"], "version_type": "Pre", "pre_tag": "rc.2"}}
    assert (
        "1.1.0-rc.2"
        == (await register(client_api, {**tagged, "version_request": {**tagged["version_request"], "version": None}}))[
            "version"
        ]
    )


async def test_an_explicit_null_version_request_is_refused(client_api: ClientApi) -> None:
    answer = await register(client_api, {**v025_body(3), "version_request": None}, status=400)
    assert {"error": "Version request is required"} == answer
    assert [] == await rows(client_api)


async def test_v064_registration_gets_the_superset_answer_and_keeps_its_uid(client_api: ClientApi) -> None:
    """A 0.6.4 body (no version_request): its own version, inactive, a uid that re-registering keeps."""
    first = await register(client_api, v064_body("Spc"))
    assert ANSWER_KEYS == set(first)
    assert ("success", "Drift profile inserted successfully", "1.0.0", False) == (
        first["status"], first["message"], first["version"], first["active"],
    )  # fmt: skip
    again = await register(client_api, v064_body("Spc"))
    assert first["uid"] == again["uid"]
    (row,) = await rows(client_api)
    assert first["uid"] == row["profile"]["config"]["uid"]


async def test_download_answers_the_superset_profile_whoever_registered_it(client_api: ClientApi) -> None:
    """config.uid and config.version of the entity, PSI binning_strategy, custom conditions in both spellings."""
    registered = {}
    for drift_type in ("Spc", "Psi", "Custom"):
        registered[("0.6.4", drift_type)] = await register(client_api, v064_body(drift_type))
    for number in (3, 4, 5):
        answer = await register(client_api, v025_body(number))
        registered[("0.25", v025_body(number)["drift_type"])] = answer
    for (_, drift_type), answer in registered.items():
        query = {
            "space": answer["space"],
            "name": answer["name"],
            "version": answer["version"],
            "drift_type": drift_type,
        }
        response = await client_api.get("/scouter/profile", query)
        assert 200 == response.status_code
        (tag, profile) = (await response.get_json()).popitem()
        assert drift_type == tag
        assert (answer["uid"], answer["version"]) == (profile["config"]["uid"], profile["config"]["version"])
        if drift_type == "Psi":
            assert "binning_strategy" in profile["config"]
        if drift_type == "Custom":
            for metric, condition in profile["config"]["alert_config"]["alert_conditions"].items():
                assert {"alert_threshold", "alert_threshold_value", "delta", "baseline_value"} <= set(condition)
                assert condition["delta"] == condition["alert_threshold_value"]
                assert profile["metrics"][metric] == condition["baseline_value"]
