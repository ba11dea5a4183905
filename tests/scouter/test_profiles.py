"""Drift profiles: the client's real profile strings parse into typed values and re-emit unchanged."""

from __future__ import annotations

import copy
import json
import math
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from scouter.profiles import (
    ConsoleDispatch,
    CustomAlertCondition,
    CustomDriftProfile,
    OpsGenieDispatch,
    ProfileError,
    PsiBin,
    PsiDriftProfile,
    PsiThreshold,
    SlackDispatch,
    SpcDriftProfile,
    SpcFeatureLimits,
    parse_profile,
    profile_from_data,
    tagged,
    to_json,
)
from tests.captures import http_session


def _posted(drift_type: str) -> str:
    """The profile string of the first captured POST /scouter/profile of `drift_type`."""
    for line in http_session():
        if line.get("method") == "POST" and line.get("path") == "/scouter/profile":
            body = line["body_json"]
            if body["drift_type"] == drift_type:
                profile: str = body["profile"]
                return profile
    raise AssertionError(f"no captured {drift_type} profile")


def _served(drift_type: str) -> dict[str, Any]:
    """The body upstream served for GET /scouter/profile?drift_type=`drift_type` (name=model)."""
    for line in http_session():
        query = line.get("query") or {}
        if line.get("path") == "/scouter/profile" and line.get("method") == "GET" and line.get("status") == 200:
            if query.get("drift_type") == drift_type and query.get("name") == "model":
                served: dict[str, Any] = line["response_body"]
                return served
    raise AssertionError(f"no served {drift_type} profile")


def _doc(drift_type: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(_posted(drift_type))
    return document


def _error(drift_type: str, document: object) -> str:
    with pytest.raises(ProfileError) as info:
        parse_profile(drift_type, orjson.dumps(document))
    return str(info.value)


# --- the captured profiles --------------------------------------------------------------------------------------


def test_spc_profile_typed_fields() -> None:
    """The captured SPC profile exposes its entity, schedule, rule, zones, features and dispatch."""
    profile = parse_profile("Spc", _posted("Spc"))
    assert isinstance(profile, SpcDriftProfile)
    assert ("cap", "model", "1.0.0", "Spc", "0.6.4") == (
        profile.space,
        profile.name,
        profile.version,
        profile.drift_type,
        profile.scouter_version,
    )
    assert ("*/5 * * * * *", "8 16 4 8 2 4 1 1") == (profile.schedule, profile.rule)
    assert ("Zone1", "Zone2", "Zone3", "Zone4") == profile.zones_to_monitor
    assert ("feature_0", "feature_1", "feature_2") == profile.features_to_monitor
    assert ConsoleDispatch(enabled=True) == profile.dispatch_config
    assert (25, True, {}) == (profile.config.sample_size, profile.config.sample, profile.config.feature_map)


def test_spc_feature_limits() -> None:
    """SPC feature limits are floats and the timestamp is UTC, truncated to microseconds."""
    profile = parse_profile("Spc", _posted("Spc"))
    assert isinstance(profile, SpcDriftProfile)
    expected = SpcFeatureLimits(
        id="feature_0",
        center=-0.008271467374822301,
        one_ucl=1.0037260035794782,
        one_lcl=-1.0202689383291228,
        two_ucl=2.015723474533779,
        two_lcl=-2.032266409283423,
        three_ucl=3.0277209454880794,
        three_lcl=-3.0442638802377235,
        timestamp=datetime(2026, 11, 22, 17, 6, 40, 286694, tzinfo=UTC),
    )
    assert expected == profile.features["feature_0"]


def test_psi_profile_typed_fields() -> None:
    """The captured PSI profile exposes features to monitor, threshold and categorical features."""
    profile = parse_profile("Psi", _posted("Psi"))
    assert isinstance(profile, PsiDriftProfile)
    assert ("cap", "model", "1.0.0", "Psi") == (profile.space, profile.name, profile.version, profile.drift_type)
    assert ("feature_2", "feature_0", "feature_1") == profile.features_to_monitor
    assert PsiThreshold("ChiSquare", 0.05) == profile.threshold
    assert (None, "*/5 * * * * *") == (profile.config.categorical_features, profile.schedule)


def test_psi_bins_with_infinite_outer_limits() -> None:
    """Numeric PSI features have 10 decile bins whose outer limits "-inf"/"inf" become ±infinity."""
    profile = parse_profile("Psi", _posted("Psi"))
    assert isinstance(profile, PsiDriftProfile)
    bins = profile.bins("feature_0")
    assert list(range(1, 11)) == [b.id for b in bins]
    assert PsiBin(1, -math.inf, -1.281069206845832, 0.1) == bins[0]
    assert PsiBin(10, 1.314807871505905, math.inf, 0.1) == bins[-1]
    assert "Numeric" == profile.features["feature_0"].bin_type


def test_custom_profile_typed_fields() -> None:
    """The captured custom profile exposes metric baselines and alert conditions."""
    profile = parse_profile("Custom", _posted("Custom"))
    assert isinstance(profile, CustomDriftProfile)
    assert ("cap", "model", "1.0.0", "Custom", 10) == (
        profile.space,
        profile.name,
        profile.version,
        profile.drift_type,
        profile.config.sample_size,
    )
    assert {"mae": 1.0, "accuracy": 0.9} == profile.metrics
    assert {"accuracy": ("Below", 0.1), "mae": ("Above", 0.5)} == profile.alert_conditions
    assert ("mae", "accuracy") == profile.features_to_monitor


@pytest.mark.parametrize("drift_type", ["Spc", "Psi", "Custom"])
def test_tagged_round_trip_equals_original(drift_type: str) -> None:
    """tagged() re-emits exactly the document the client sent, under its drift type."""
    assert {drift_type: _doc(drift_type)} == tagged(parse_profile(drift_type, _posted(drift_type)))


@pytest.mark.parametrize("drift_type", ["Spc", "Psi"])
def test_tagged_equals_what_upstream_served(drift_type: str) -> None:
    """The re-emitted profile equals the body upstream served for GET /scouter/profile."""
    assert _served(drift_type) == tagged(parse_profile(drift_type, _posted(drift_type)))


def test_psi_infinite_limits_stay_strings() -> None:
    """to_json keeps the outer bin limits as the strings "-inf" and "inf"."""
    bins = to_json(parse_profile("Psi", _posted("Psi")))["features"]["feature_0"]["bins"]
    assert ("-inf", "inf") == (bins[0]["lower_limit"], bins[-1]["upper_limit"])


@pytest.mark.parametrize("drift_type", ["Spc", "Psi", "Custom"])
def test_reparse_of_emitted_profile_is_equal(drift_type: str) -> None:
    """Parsing what to_json emits gives an equal typed profile."""
    profile = parse_profile(drift_type, _posted(drift_type))
    assert profile == profile_from_data(drift_type, to_json(profile))


def test_to_json_returns_a_fresh_copy() -> None:
    """Mutating the emitted dict does not change the profile."""
    profile = parse_profile("Custom", _posted("Custom"))
    to_json(profile)["metrics"]["mae"] = 99.0
    assert 1.0 == to_json(profile)["metrics"]["mae"]


def test_profile_from_data_does_not_modify_its_input() -> None:
    """profile_from_data works on a copy, even when it normalises a legacy threshold."""
    document = _doc("Psi")
    alert = document["config"]["alert_config"]
    del alert["threshold"]
    alert["psi_threshold"] = 0.25
    before = copy.deepcopy(document)
    profile_from_data("Psi", document)
    assert before == document


def test_bytes_are_accepted() -> None:
    """The profile may be given as bytes."""
    assert parse_profile("Spc", _posted("Spc")) == parse_profile("Spc", _posted("Spc").encode())


# --- dispatch configs -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"Console": {"enabled": False}}, ConsoleDispatch(enabled=False)),
        ({"Slack": {"channel": "chan"}}, SlackDispatch(channel="chan")),
        ({"OpsGenie": {"team": "team", "priority": "P5"}}, OpsGenieDispatch(team="team", priority="P5")),
        ({"Teams": {"webhook": "x"}}, {"Teams": {"webhook": "x"}}),
    ],
)
def test_dispatch_variants(raw: dict[str, Any], expected: object) -> None:
    """Console, Slack and OpsGenie are typed; an unknown variant is kept as its raw dict."""
    document = _doc("Spc")
    document["config"]["alert_config"]["dispatch_config"] = raw
    profile = parse_profile("Spc", orjson.dumps(document))
    assert expected == profile.dispatch_config
    assert raw == to_json(profile)["config"]["alert_config"]["dispatch_config"]


def test_dispatch_with_two_variants_rejected() -> None:
    """A dispatch_config must hold exactly one variant."""
    document = _doc("Custom")
    document["config"]["alert_config"]["dispatch_config"] = {"Console": {"enabled": True}, "Slack": {"channel": "c"}}
    assert _error("Custom", document).startswith("config.alert_config.dispatch_config: expected exactly one variant")


def test_slack_without_channel_rejected() -> None:
    """A Slack dispatch needs its channel."""
    document = _doc("Custom")
    document["config"]["alert_config"]["dispatch_config"] = {"Slack": {}}
    assert "config.alert_config.dispatch_config.Slack.channel: missing field" == _error("Custom", document)


# --- PSI details ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"ChiSquare": {"alpha": 0.01}}, PsiThreshold("ChiSquare", 0.01)),
        ({"Normal": {"alpha": 0.05}}, PsiThreshold("Normal", 0.05)),
        ({"Fixed": {"threshold": 0.25}}, PsiThreshold("Fixed", 0.25)),
    ],
)
def test_psi_threshold_variants(raw: dict[str, Any], expected: PsiThreshold) -> None:
    """ChiSquare and Normal carry alpha, Fixed its threshold."""
    document = _doc("Psi")
    document["config"]["alert_config"]["threshold"] = raw
    profile = parse_profile("Psi", orjson.dumps(document))
    assert isinstance(profile, PsiDriftProfile)
    assert expected == profile.threshold


def test_legacy_psi_threshold_maps_to_fixed() -> None:
    """A legacy psi_threshold float becomes a Fixed threshold, and is re-emitted in the 0.6.4 form."""
    document = _doc("Psi")
    alert = document["config"]["alert_config"]
    del alert["threshold"]
    alert["psi_threshold"] = 0.25
    profile = parse_profile("Psi", orjson.dumps(document))
    assert isinstance(profile, PsiDriftProfile)
    assert PsiThreshold("Fixed", 0.25) == profile.threshold
    emitted = to_json(profile)["config"]["alert_config"]
    assert ({"Fixed": {"threshold": 0.25}}, False) == (emitted["threshold"], "psi_threshold" in emitted)


def test_missing_psi_threshold_rejected() -> None:
    """0.6.4 requires a threshold when there is no legacy psi_threshold."""
    document = _doc("Psi")
    del document["config"]["alert_config"]["threshold"]
    assert "config.alert_config.threshold: missing field" == _error("Psi", document)


def test_unknown_psi_threshold_kind_rejected() -> None:
    """An unknown threshold variant is named."""
    document = _doc("Psi")
    document["config"]["alert_config"]["threshold"] = {"Magic": {"alpha": 0.05}}
    message = _error("Psi", document)
    assert 'config.alert_config.threshold: unknown threshold kind "Magic"' in message


def test_alpha_out_of_range_rejected() -> None:
    """alpha must be within [0, 1)."""
    document = _doc("Psi")
    document["config"]["alert_config"]["threshold"] = {"Normal": {"alpha": 1.0}}
    assert "config.alert_config.threshold.Normal.alpha: must be within [0, 1), got 1.0" == _error("Psi", document)


@pytest.mark.parametrize(
    ("lower", "upper", "expected"),
    [
        ("-inf", "inf", (-math.inf, math.inf)),
        (-1, "2.5", (-1.0, 2.5)),
        (None, None, (None, None)),
        ("-1e3", 0.5, (-1000.0, 0.5)),
    ],
)
def test_psi_bin_limit_forms(lower: object, upper: object, expected: tuple[object, object]) -> None:
    """Bin limits accept numbers, numeric strings, "inf", "-inf" and null."""
    document = _doc("Psi")
    document["features"]["feature_0"]["bins"][0].update(lower_limit=lower, upper_limit=upper)
    profile = parse_profile("Psi", orjson.dumps(document))
    assert isinstance(profile, PsiDriftProfile)
    first = profile.bins("feature_0")[0]
    assert expected == (first.lower_limit, first.upper_limit)


@pytest.mark.parametrize("limit", ["abc", "nan", " 1.0", "1_0", True, [1]])
def test_bad_psi_bin_limits_rejected(limit: object) -> None:
    """Non-numeric strings, NaN, padded or underscored numbers, booleans and lists are rejected with the path."""
    document = _doc("Psi")
    document["features"]["feature_1"]["bins"][3]["upper_limit"] = limit
    assert _error("Psi", document).startswith("features.feature_1.bins[3].upper_limit: expected a number")


def test_duplicate_bin_ids_rejected() -> None:
    """Bin ids must be unique within a feature."""
    document = _doc("Psi")
    document["features"]["feature_2"]["bins"][1]["id"] = 1
    assert "features.feature_2.bins: bin id 1 appears more than once" == _error("Psi", document)


def test_empty_bins_rejected() -> None:
    """A feature without bins is rejected."""
    document = _doc("Psi")
    document["features"]["feature_2"]["bins"] = []
    assert "features.feature_2.bins: expected a non-empty list of bins, got []" == _error("Psi", document)


def test_proportion_out_of_range_rejected() -> None:
    """Bin proportions lie within [0, 1]."""
    document = _doc("Psi")
    document["features"]["feature_0"]["bins"][0]["proportion"] = 1.5
    assert "features.feature_0.bins[0].proportion: must be within [0, 1], got 1.5" == _error("Psi", document)


def test_categorical_feature_with_feature_map() -> None:
    """Categorical bins have null limits and ids from the feature map, which is exposed typed."""
    document = _doc("Psi")
    document["features"]["color"] = {
        "id": "color",
        "bins": [
            {"id": 0, "lower_limit": None, "upper_limit": None, "proportion": 0.75},
            {"id": 1, "lower_limit": None, "upper_limit": None, "proportion": 0.25},
            {"id": 2, "lower_limit": None, "upper_limit": None, "proportion": 0.0},
        ],
        "timestamp": "2026-11-22T17:06:40.286830871Z",
        "bin_type": "Category",
    }
    document["config"]["feature_map"] = {"features": {"color": {"red": 0, "blue": 1, "missing": 2}}}
    document["config"]["categorical_features"] = ["color"]
    profile = parse_profile("Psi", orjson.dumps(document))
    assert isinstance(profile, PsiDriftProfile)
    assert ("Category", ("color",)) == (profile.features["color"].bin_type, profile.config.categorical_features)
    assert {"color": {"red": 0, "blue": 1, "missing": 2}} == profile.config.feature_map
    assert PsiBin(2, None, None, 0.0) == profile.bins("color")[2]


def test_unknown_bin_type_rejected() -> None:
    """bin_type is Numeric or Category."""
    document = _doc("Psi")
    document["features"]["feature_0"]["bin_type"] = "Binary"
    assert _error("Psi", document).startswith('features.feature_0.bin_type: unknown value "Binary"')


# --- custom details ---------------------------------------------------------------------------------------------


def test_custom_without_alert_conditions() -> None:
    """alert_conditions may be absent or null: no conditions."""
    document = _doc("Custom")
    del document["config"]["alert_config"]["alert_conditions"]
    profile = parse_profile("Custom", orjson.dumps(document))
    assert isinstance(profile, CustomDriftProfile)
    assert ({}, None) == (profile.alert_conditions, profile.config.alert_config.alert_conditions)


def test_custom_condition_with_null_value() -> None:
    """A condition's alert_threshold_value may be null (or missing)."""
    document = _doc("Custom")
    document["config"]["alert_config"]["alert_conditions"] = {
        "mae": {"alert_threshold": "Outside", "alert_threshold_value": None},
        "accuracy": {"alert_threshold": "Below"},
    }
    profile = parse_profile("Custom", orjson.dumps(document))
    assert isinstance(profile, CustomDriftProfile)
    assert {"mae": ("Outside", None), "accuracy": ("Below", None)} == profile.alert_conditions
    assert CustomAlertCondition("Outside", None) == profile.config.alert_config.alert_conditions["mae"]  # type: ignore[index]


def test_custom_unknown_threshold_rejected() -> None:
    """alert_threshold is Below, Above or Outside."""
    document = _doc("Custom")
    document["config"]["alert_config"]["alert_conditions"]["mae"]["alert_threshold"] = "Sideways"
    message = _error("Custom", document)
    assert message.startswith('config.alert_config.alert_conditions.mae.alert_threshold: unknown value "Sideways"')


def test_custom_integer_metric_accepted() -> None:
    """An integer metric baseline is accepted as a float."""
    document = _doc("Custom")
    document["metrics"]["mae"] = 10
    profile = parse_profile("Custom", orjson.dumps(document))
    assert isinstance(profile, CustomDriftProfile)
    assert 10.0 == profile.metrics["mae"]


def test_custom_metric_must_be_a_number() -> None:
    """A boolean metric value is rejected with its path."""
    document = _doc("Custom")
    document["metrics"]["mae"] = True
    assert "metrics.mae: expected a number, got true" == _error("Custom", document)


# --- general errors ---------------------------------------------------------------------------------------------


def test_unknown_drift_type_rejected() -> None:
    """Only Spc, Psi and Custom are drift types."""
    with pytest.raises(ProfileError, match=r'^drift_type: unknown drift type "LLM"'):
        parse_profile("LLM", _posted("Spc"))


def test_invalid_json_rejected() -> None:
    """A profile string that is not JSON is named as such."""
    with pytest.raises(ProfileError, match=r"^profile is not valid JSON: "):
        parse_profile("Spc", "{not json")


def test_profile_that_is_not_an_object_rejected() -> None:
    """The profile must be a JSON object."""
    assert "profile: expected an object, got [1]" == _error("Spc", [1])


def test_mismatched_config_drift_type_rejected() -> None:
    """A profile whose config.drift_type differs from the request's drift_type is rejected."""
    message = _error("Psi", {**_doc("Spc")})
    assert message.startswith("features.feature_0.bins: missing field")  # parsed as PSI, the SPC shape fails first
    document = _doc("Psi")
    document["config"]["drift_type"] = "Spc"
    assert 'config.drift_type: expected "Psi" (the request\'s drift_type), got "Spc"' == _error("Psi", document)


def test_config_drift_type_and_feature_map_optional() -> None:
    """config.drift_type and config.feature_map may be omitted (serde defaults) and are not added on re-emission."""
    document = _doc("Spc")
    del document["config"]["drift_type"]
    del document["config"]["feature_map"]
    profile = parse_profile("Spc", orjson.dumps(document))
    assert ("Spc", {}) == (profile.config.drift_type, profile.config.feature_map)  # type: ignore[union-attr]
    assert {"Spc": document} == tagged(profile)


@pytest.mark.parametrize(
    ("path", "message"),
    [
        (("scouter_version",), "scouter_version: missing field"),
        (("config", "alert_config", "schedule"), "config.alert_config.schedule: missing field"),
        (("config", "sample"), "config.sample: missing field"),
        (("features", "feature_1", "three_lcl"), "features.feature_1.three_lcl: missing field"),
        (("config", "alert_config", "rule", "rule"), "config.alert_config.rule.rule: missing field"),
    ],
)
def test_missing_spc_fields_named(path: tuple[str, ...], message: str) -> None:
    """Missing required fields are named with their full path."""
    document = _doc("Spc")
    parent = document
    for key in path[:-1]:
        parent = parent[key]
    del parent[path[-1]]
    assert message == _error("Spc", document)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("sample_size", -1, "config.sample_size: must be a non-negative integer, got -1"),
        ("sample_size", 2.5, "config.sample_size: must be a non-negative integer, got 2.5"),
        ("sample", "yes", 'config.sample: expected true or false, got "yes"'),
        ("name", "a\x00b", 'config.name: must not contain NUL, got "a\\u0000b"'),
        ("space", "", 'config.space: must not be empty, got ""'),
        ("version", "", 'config.version: must not be empty, got ""'),
    ],
)
def test_bad_spc_config_values(key: str, value: object, message: str) -> None:
    """Bad config values, including entity names that cannot be a path segment, are named."""
    document = _doc("Spc")
    document["config"][key] = value
    assert message == _error("Spc", document)


@pytest.mark.parametrize(
    ("space", "name", "version"),
    [("équipe α", "my model v1.0", "1.0.0-rc.1"), ("edge", "org/model", ".."), ("a\\b", "%2e%2e", "tab\there\x01")],
)
def test_accepted_unusual_entity_names(space: str, name: str, version: str) -> None:
    """Spaces, dots, slashes, backslashes, escapes, control characters and unicode are fine, as upstream."""
    document = _doc("Spc")
    document["config"].update(space=space, name=name, version=version)
    profile = parse_profile("Spc", orjson.dumps(document))
    assert (space, name, version) == (profile.space, profile.name, profile.version)


def test_unknown_zone_rejected() -> None:
    """zones_to_monitor entries are AlertZone names."""
    document = _doc("Spc")
    document["config"]["alert_config"]["rule"]["zones_to_monitor"] = ["Zone1", "Zone 2"]
    message = _error("Spc", document)
    assert message.startswith('config.alert_config.rule.zones_to_monitor[1]: unknown value "Zone 2"')


def test_naive_feature_timestamp_rejected() -> None:
    """Feature timestamps must carry a timezone."""
    document = _doc("Spc")
    document["features"]["feature_2"]["timestamp"] = "2026-11-22T17:06:40.286701238"
    message = _error("Spc", document)
    assert message.startswith("features.feature_2.timestamp: timestamp has no timezone (naive)")


def test_non_finite_limit_rejected_in_parsed_data() -> None:
    """An infinite SPC limit in already parsed data is rejected."""
    document = _doc("Spc")
    document["features"]["feature_0"]["center"] = float("inf")
    with pytest.raises(ProfileError, match=r"^features\.feature_0\.center: must be a finite number, got inf$"):
        profile_from_data("Spc", document)


def test_unknown_extra_fields_kept() -> None:
    """Unknown fields are accepted and re-emitted unchanged."""
    document = _doc("Custom")
    document["config"]["owner"] = "team-a"
    document["extra"] = {"x": [1, 2]}
    assert {"Custom": document} == tagged(parse_profile("Custom", orjson.dumps(document)))


def test_profile_error_is_a_value_error_with_reason() -> None:
    """ProfileError is a ValueError carrying its message as reason."""
    with pytest.raises(ValueError, match="missing field") as info:
        parse_profile("Custom", b"{}")
    assert "config: missing field" == str(info.value) == info.value.reason  # type: ignore[attr-defined]


def test_profile_from_data_refuses_non_json_values() -> None:
    """Values that are not JSON data are named with their path."""
    document = _doc("Custom")
    document["metrics"]["when"] = datetime(2026, 1, 1, tzinfo=UTC)
    with pytest.raises(ProfileError, match=r"^metrics\.when: not JSON data: "):
        profile_from_data("Custom", document)


def test_nul_anywhere_in_the_document_rejected() -> None:
    """A NUL in any string, extra fields included, is rejected with its path (jsonb cannot store it)."""
    document = _doc("Custom")
    document["config"]["owner"] = "a\x00b"
    assert 'config.owner: must not contain NUL, got "a\\u0000b"' == _error("Custom", document)
