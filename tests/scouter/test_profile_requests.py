"""Profile route requests: ProfileRequest bodies (with schedule), status bodies and GET query strings."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from scouter.profile_requests import (
    GetProfile,
    ProfileRequestError,
    ProfileStatus,
    parse_get_profile,
    parse_profile_request,
    parse_profile_status,
)
from tests.captures import http_session

NOW = datetime(2026, 11, 22, 17, 6, 40, 317590, tzinfo=UTC)


def _captured(method: str, path: str) -> list[dict[str, Any]]:
    return [line["body_json"] for line in http_session() if line.get("method") == method and line.get("path") == path]


@pytest.mark.parametrize("body", _captured("POST", "/scouter/profile"), ids=lambda body: body["drift_type"])
def test_captured_registrations_parse(body: dict[str, Any]) -> None:
    """Every captured POST /scouter/profile body parses; next_run is the first firing after now."""
    registration = parse_profile_request(body, NOW)
    assert (body["drift_type"], "cap", "model", "1.0.0") == (
        registration.drift_type,
        registration.profile.space,
        registration.profile.name,
        registration.profile.version,
    )
    assert json.loads(body["profile"]) == json.loads(registration.profile_json)
    # "*/5 * * * * *" fires at the next multiple of 5 s
    assert datetime(2026, 11, 22, 17, 6, 45, tzinfo=UTC) == registration.next_run


def _spc_body(**changes: Any) -> dict[str, Any]:
    body = dict(_captured("POST", "/scouter/profile")[0])
    assert "Spc" == body["drift_type"]
    profile = json.loads(body["profile"])
    schedule = changes.pop("schedule", None)
    if schedule is not None:
        profile["config"]["alert_config"]["schedule"] = schedule
    body["profile"] = json.dumps(profile)
    body.update(changes)
    return body


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([], "body: expected a JSON object"),
        ({"drift_type": "Spc", "profile": "{}"}, "space: missing field"),
        (_spc_body(space=1), "space: expected a string, got 1"),
        (_spc_body(drift_type="Kl"), "drift_type: unknown drift type 'Kl'"),
        (_spc_body(profile={"features": {}}), "profile: expected the profile as a JSON string"),
        (_spc_body(profile="{}"), "features: missing field"),
        (_spc_body(drift_type="Psi"), "features.feature_0.bins: missing field"),
        (_spc_body(space="other"), "config.space: 'cap' differs from the request's space 'other'"),
        (_spc_body(schedule="every day"), "config.alert_config.schedule: invalid cron 'every day'"),
        (_spc_body(schedule="0 0 0 30 2 *"), "config.alert_config.schedule: cron '0 0 0 30 2 *' has no firing"),
    ],
)
def test_bad_registrations_name_the_problem(body: Any, message: str) -> None:
    """Malformed bodies, profiles, mismatched spaces and bad cron strings raise with a precise reason."""
    with pytest.raises(ProfileRequestError) as caught:
        parse_profile_request(body, NOW)
    assert caught.value.reason.startswith(message), caught.value.reason


@pytest.mark.parametrize("body", _captured("PUT", "/scouter/profile/status"))
def test_captured_status_bodies_parse(body: dict[str, Any]) -> None:
    """The client's status bodies, with and without a drift type."""
    status = parse_profile_status(body)
    assert (
        ProfileStatus("cap", "model", "1.0.0", body["active"], body["drift_type"], body["deactivate_others"]) == status
    )


def test_status_defaults_and_errors() -> None:
    """drift_type and deactivate_others may be absent; active must be a boolean."""
    base = {"space": "s", "name": "n", "version": "1", "active": True}
    assert ProfileStatus("s", "n", "1", True, None, False) == parse_profile_status(base)
    with pytest.raises(ProfileRequestError, match="active: expected true or false"):
        parse_profile_status({**base, "active": "yes"})
    with pytest.raises(ProfileRequestError, match="drift_type: unknown drift type"):
        parse_profile_status({**base, "drift_type": "spc"})
    with pytest.raises(ProfileRequestError, match="deactivate_others: expected true or false"):
        parse_profile_status({**base, "deactivate_others": 1})
    with pytest.raises(ProfileRequestError, match="version: missing field"):
        parse_profile_status({"space": "s", "name": "n", "active": True})


def test_get_profile_query() -> None:
    """The GET query needs all four fields and a known drift type."""
    args = {"name": "model", "space": "cap", "version": "1.0.0", "drift_type": "Psi"}
    assert GetProfile("cap", "model", "1.0.0", "Psi") == parse_get_profile(args)
    with pytest.raises(ProfileRequestError, match="drift_type: missing field"):
        parse_get_profile({k: v for k, v in args.items() if k != "drift_type"})
    with pytest.raises(ProfileRequestError, match="space: must not be empty"):
        parse_get_profile({**args, "space": ""})
    assert GetProfile("a/b", "..", "%2e", "Psi") == parse_get_profile(
        {**args, "space": "a/b", "name": "..", "version": "%2e"}
    )
