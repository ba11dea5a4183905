"""Bodies and queries of the profile routes (server.md §2.8): strict parsing into typed values.

* ``ProfileRequest`` (POST/PUT ``/scouter/profile``): ``{"space", "drift_type", "profile": "<JSON string>"}``. The
  profile is parsed for its drift type, its cron schedule is checked, and the request's ``space`` must be the
  profile's own ``config.space`` (upstream checked write permission on the request's space but stored the profile's,
  so a writer of one space could register profiles in any other).
* ``ProfileStatusRequest`` (PUT ``/scouter/profile/status``): ``drift_type`` may be null or absent (every drift
  type); ``deactivate_others`` defaults to false.
* ``GetProfileRequest`` (GET ``/scouter/profile`` query string).

Bodies arrive already parsed from JSON (the HTTP layer parses each body once). Every problem raises
`ProfileRequestError` with a message for the 400 body.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import attrs
import orjson

from scouter.profiles import DRIFT_TYPES, DriftProfile, ProfileError, parse_profile, to_json
from scouter.records import DecodeError, check_entity_name
from scouter.schedule import ScheduleError, next_fire
from scouter.wire.common import Fault, FaultyBody, convert_body, show
from scouter.wire.v064 import GetProfileRequest, ProfileStatusRequest

__all__ = [
    "GetProfile",
    "ProfileRegistration",
    "ProfileRequestError",
    "ProfileStatus",
    "parse_get_profile",
    "parse_profile_request",
    "parse_profile_status",
]


class ProfileRequestError(ValueError):
    """A request the profile routes cannot serve; ``reason`` is the message for the 400 body."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@attrs.frozen
class ProfileRegistration:
    """A parsed ProfileRequest: the typed profile, its stored JSON text and its first run after `now`."""

    profile: DriftProfile
    profile_json: str
    next_run: datetime

    @property
    def drift_type(self) -> str:
        return self.profile.drift_type


@attrs.frozen
class ProfileStatus:
    space: str
    name: str
    version: str
    active: bool
    drift_type: str | None
    deactivate_others: bool


@attrs.frozen
class GetProfile:
    space: str
    name: str
    version: str
    drift_type: str


def _body(data: object) -> dict[str, Any]:
    if type(data) is not dict:
        raise ProfileRequestError("body: expected a JSON object")
    return data


def _field(data: Mapping[str, Any], field: str, kind: type, what: str) -> Any:
    if field not in data:
        raise ProfileRequestError(f"{field}: missing field")
    value = data[field]
    if type(value) is not kind:
        raise ProfileRequestError(f"{field}: expected {what}, got {orjson.dumps(value).decode()[:80]}")
    return value


def _entity_name(field: str, value: str) -> str:
    try:
        check_entity_name(field, value)
    except DecodeError as exc:
        raise ProfileRequestError(exc.reason) from None
    return value


def _drift_type(field: str, value: object) -> str:
    if value not in DRIFT_TYPES:
        raise ProfileRequestError(f'{field}: unknown drift type {value!r}, expected "Spc", "Psi" or "Custom"')
    return str(value)


def parse_profile_request(body: object, now: datetime) -> ProfileRegistration:
    """Parse a ProfileRequest body; the schedule's first firing strictly after `now` becomes ``next_run``."""
    data = _body(body)
    space = _entity_name("space", _field(data, "space", str, "a string"))
    drift_type = _drift_type("drift_type", _field(data, "drift_type", str, "a string"))
    text = _field(data, "profile", str, "the profile as a JSON string")
    try:
        profile = parse_profile(drift_type, text)
    except ProfileError as exc:
        raise ProfileRequestError(exc.reason) from None
    if profile.space != space:
        raise ProfileRequestError(f"config.space: {profile.space!r} differs from the request's space {space!r}")
    try:
        next_run = next_fire(profile.schedule, now)
    except ScheduleError as exc:
        raise ProfileRequestError(f"config.alert_config.schedule: {exc}") from None
    return ProfileRegistration(profile, orjson.dumps(to_json(profile)).decode(), next_run)


def parse_profile_status(body: object) -> ProfileStatus:
    """Parse a ProfileStatusRequest body, by its declaration in `scouter.wire.v064`."""
    try:
        status = convert_body(_body(body), ProfileStatusRequest)
    except FaultyBody as exc:
        raise ProfileRequestError(_status_problem(exc.fault)) from None
    for field in ("space", "name", "version"):
        _entity_name(field, getattr(status, field))  # NUL, which the declaration documents but does not check
    return ProfileStatus(
        status.space, status.name, status.version, status.active, status.drift_type, status.deactivate_others
    )


def _status_problem(fault: Fault) -> str:
    field, missing, value, expected = fault
    if missing:
        return f"{field}: missing field"
    if field == "drift_type":
        return f'{field}: unknown drift type {value!r}, expected "Spc", "Psi" or "Custom"'
    if field == "deactivate_others":
        return f"{field}: expected true or false"
    if field == "active":
        return f"{field}: expected true or false, got {show(value)}"
    if expected.startswith("Expected `str` of length"):
        return f"{field}: must not be empty, got {show(value)}"
    return f"{field}: expected a string, got {show(value)}"


def parse_get_profile(args: Mapping[str, str]) -> GetProfile:
    """Parse a GetProfileRequest query string (each field mapped to its first value), by its declaration."""
    try:
        query = convert_body(dict(args), GetProfileRequest)
    except FaultyBody as exc:
        raise ProfileRequestError(_status_problem(exc.fault)) from None
    for field in ("space", "name", "version"):
        _entity_name(field, getattr(query, field))
    return GetProfile(query.space, query.name, query.version, query.drift_type)
