"""Drift profiles (server.md §3.2): strict parsing into typed values, and faithful re-emission.

`POST /scouter/profile` carries the profile as a JSON *string* next to its ``drift_type``. `parse_profile` decodes it
by its declaration (`scouter.wire.v064_profiles`, the same structs the OpenAPI document shows), checks what a type
cannot say, and returns a typed, frozen value (`scouter.profile_values`) for the server's own use (poller,
evaluators, routes). What gets stored and sent back is the client's own document, not a re-serialisation of the
typed form: `to_json` returns the parsed dict (so infinite PSI bin limits stay the strings ``"-inf"``/``"inf"``), and
the real client can always read it again. The only normalisation: a legacy ``psi_threshold`` float (scouter
<= 0.5.4) becomes ``threshold: {"Fixed": {"threshold": x}}``, the form 0.6.4 requires.

Also stricter than upstream, on purpose:

* ``config.drift_type``, when present, must equal the request's ``drift_type`` (upstream stored a mismatch and then
  served it under the wrong tag);
* ``config.space``, ``config.name`` and ``config.version`` must not be empty, hold NUL nor exceed 512 bytes
  (anything else is accepted as upstream does; see `scouter.records.check_entity_name`);
* numbers must be finite; PSI bin ids unique per feature; proportions within [0, 1]; thresholds' alpha within [0, 1);
* no string anywhere may hold NUL (the document is stored as jsonb, which cannot).

Unknown extra fields are accepted and kept (serde ignores them too). The SPC ``rule`` string is kept as text; the
drift evaluator parses it.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any, Final

import msgspec
import orjson

from scouter.profile_values import (
    ALERT_THRESHOLDS,
    ALERT_ZONES,
    BIN_TYPES,
    DRIFT_TYPES,
    PSI_THRESHOLD_KINDS,
    ConsoleDispatch,
    CustomAlertCondition,
    CustomAlertConfig,
    CustomDriftConfig,
    CustomDriftProfile,
    DispatchConfig,
    DriftProfile,
    OpsGenieDispatch,
    ProfileError,
    PsiAlertConfig,
    PsiBin,
    PsiDriftConfig,
    PsiDriftProfile,
    PsiFeatureProfile,
    PsiThreshold,
    SlackDispatch,
    SpcAlertConfig,
    SpcAlertRule,
    SpcDriftConfig,
    SpcDriftProfile,
    SpcFeatureLimits,
)
from scouter.records import DecodeError, check_entity_name, parse_rfc3339
from scouter.wire import v064_profiles as shapes
from scouter.wire.common import show, worded

__all__ = [
    "ALERT_THRESHOLDS",
    "ALERT_ZONES",
    "DRIFT_TYPES",
    "ConsoleDispatch",
    "CustomAlertCondition",
    "CustomAlertConfig",
    "CustomDriftConfig",
    "CustomDriftProfile",
    "DispatchConfig",
    "DriftProfile",
    "OpsGenieDispatch",
    "ProfileError",
    "PsiAlertConfig",
    "PsiBin",
    "PsiDriftConfig",
    "PsiDriftProfile",
    "PsiFeatureProfile",
    "PsiThreshold",
    "SlackDispatch",
    "SpcAlertConfig",
    "SpcAlertRule",
    "SpcDriftConfig",
    "SpcDriftProfile",
    "SpcFeatureLimits",
    "parse_profile",
    "profile_from_data",
    "tagged",
    "to_json",
]


# --- public functions ---------------------------------------------------------------------------------------------


def parse_profile(drift_type: str, profile: str | bytes) -> DriftProfile:
    """Parse the ``profile`` string of a ProfileRequest as a `drift_type` ("Spc", "Psi", "Custom") profile."""
    _check_drift_type(drift_type)
    try:
        data = orjson.loads(profile)
    except orjson.JSONDecodeError as exc:
        raise ProfileError(f"profile is not valid JSON: {exc}") from None
    return _build(drift_type, _json_copy("profile", data))  # the copy also screens for NUL


def profile_from_data(drift_type: str, data: object) -> DriftProfile:
    """Parse an already decoded profile document (e.g. the stored jsonb); `data` itself is not modified."""
    _check_drift_type(drift_type)
    return _build(drift_type, _json_copy("profile", data))


def to_json(profile: DriftProfile) -> dict[str, Any]:
    """The profile document to store or send back (a fresh copy of what was received)."""
    copy: dict[str, Any] = orjson.loads(orjson.dumps(profile.raw))
    return copy


def tagged(profile: DriftProfile) -> dict[str, dict[str, Any]]:
    """The externally tagged form served by ``GET /scouter/profile``: ``{"Spc": {...}}``."""
    return {profile.drift_type: to_json(profile)}


# --- building -----------------------------------------------------------------------------------------------------

#: The choices of each enumerated field, for the error that names them.
_CHOICES: Final = {"zones_to_monitor": ALERT_ZONES, "bin_type": BIN_TYPES, "alert_threshold": ALERT_THRESHOLDS}


def _check_drift_type(drift_type: object) -> None:
    if drift_type not in DRIFT_TYPES:
        raise ProfileError(f'drift_type: unknown drift type {show(drift_type)}, expected "Spc", "Psi" or "Custom"')


def _build(drift_type: str, data: object) -> DriftProfile:
    if type(data) is not dict:
        raise ProfileError(f"profile: expected an object, got {show(data)}")
    if drift_type == "Spc":
        return _spc_profile(data)
    if drift_type == "Psi":
        return _psi_profile(data)
    return _custom_profile(data)


def _spc_profile(root: dict[str, Any]) -> SpcDriftProfile:
    document = _convert("", root, shapes.SpcDriftProfile)
    config, alert = document.config, document.config.alert_config
    features = {
        key: SpcFeatureLimits(
            id=limits.id,
            center=limits.center,
            one_ucl=limits.one_ucl,
            one_lcl=limits.one_lcl,
            two_ucl=limits.two_ucl,
            two_lcl=limits.two_lcl,
            three_ucl=limits.three_ucl,
            three_lcl=limits.three_lcl,
            timestamp=_timestamp(f"features.{key}.timestamp", limits.timestamp),
        )
        for key, limits in document.features.items()
    }
    return SpcDriftProfile(
        features=features,
        config=SpcDriftConfig(
            sample_size=config.sample_size,
            sample=config.sample,
            space=_entity_name("space", config.space),
            name=_entity_name("name", config.name),
            version=_entity_name("version", config.version),
            alert_config=SpcAlertConfig(
                rule=SpcAlertRule(alert.rule.rule, tuple(alert.rule.zones_to_monitor)),
                schedule=alert.schedule,
                features_to_monitor=tuple(alert.features_to_monitor),
                dispatch_config=_dispatch(alert.dispatch_config),
            ),
            feature_map=_feature_map(config.feature_map),
            drift_type="Spc",
        ),
        scouter_version=document.scouter_version,
        raw=root,
    )


def _psi_profile(root: dict[str, Any]) -> PsiDriftProfile:
    config_raw = root.get("config")
    alert_raw = config_raw.get("alert_config") if type(config_raw) is dict else None
    if type(alert_raw) is dict and alert_raw.get("threshold") is None and "psi_threshold" in alert_raw:
        # scouter <= 0.5.4 had a bare `psi_threshold: f64`; rewrite it to the 0.6.4 form so the client can read it.
        value = _convert("config.alert_config.psi_threshold", alert_raw["psi_threshold"], float)
        del alert_raw["psi_threshold"]
        alert_raw["threshold"] = {"Fixed": {"threshold": value}}
    document = _convert("", root, shapes.PsiDriftProfile)
    config, alert = document.config, document.config.alert_config
    features = {key: _psi_feature(f"features.{key}", feature) for key, feature in document.features.items()}
    categorical = config.categorical_features
    return PsiDriftProfile(
        features=features,
        config=PsiDriftConfig(
            space=_entity_name("space", config.space),
            name=_entity_name("name", config.name),
            version=_entity_name("version", config.version),
            alert_config=PsiAlertConfig(
                schedule=alert.schedule,
                features_to_monitor=tuple(alert.features_to_monitor),
                dispatch_config=_dispatch(alert.dispatch_config),
                threshold=_psi_threshold(alert.threshold),
            ),
            feature_map=_feature_map(config.feature_map),
            drift_type="Psi",
            categorical_features=None if categorical is None else tuple(categorical),
        ),
        scouter_version=document.scouter_version,
        raw=root,
    )


def _psi_feature(path: str, feature: shapes.PsiFeatureDriftProfile) -> PsiFeatureProfile:
    bins = tuple(
        PsiBin(
            id=psi_bin.id,
            lower_limit=_limit(f"{path}.bins[{position}].lower_limit", psi_bin.lower_limit),
            upper_limit=_limit(f"{path}.bins[{position}].upper_limit", psi_bin.upper_limit),
            proportion=psi_bin.proportion,
        )
        for position, psi_bin in enumerate(feature.bins)
    )
    ids = [psi_bin.id for psi_bin in bins]
    if len(set(ids)) != len(ids):
        duplicate = next(bin_id for bin_id in ids if ids.count(bin_id) > 1)
        raise ProfileError(f"{path}.bins: bin id {duplicate} appears more than once")
    return PsiFeatureProfile(feature.id, bins, _timestamp(f"{path}.timestamp", feature.timestamp), feature.bin_type)


def _limit(path: str, value: float | str | None) -> float | None:
    """A bin limit: null, a finite number, or a string the client's parser takes ("inf", "-inf", "1.5")."""
    if type(value) is not str:
        return value
    # float() also takes surrounding blanks and digit underscores, which the client's parser refuses.
    if value == value.strip() and "_" not in value:
        try:
            number = float(value)
        except ValueError:
            pass
        else:
            if not math.isnan(number):
                return number
    raise ProfileError(f"{path}: {_LIMIT_EXPECTED}, got {show(value)}")


_LIMIT_EXPECTED: Final = 'expected a number, a numeric string, "inf", "-inf" or null'


def _psi_threshold(raw: dict[str, Any]) -> PsiThreshold:
    path = "config.alert_config.threshold"
    kind, body = _variant(path, raw)
    shape = shapes.THRESHOLD_VARIANTS.get(kind)
    if shape is None:
        choices = ", ".join(f'"{choice}"' for choice in PSI_THRESHOLD_KINDS)
        raise ProfileError(f"{path}: unknown threshold kind {show(kind)}, expected one of {choices}")
    threshold = _convert(f"{path}.{kind}", body, shape)
    if isinstance(threshold, shapes.FixedThreshold):
        return PsiThreshold(kind, threshold.threshold)
    if not 0.0 <= threshold.alpha < 1.0:
        raise ProfileError(f"{path}.{kind}.alpha: must be within [0, 1), got {threshold.alpha!r}")
    return PsiThreshold(kind, threshold.alpha)


def _custom_profile(root: dict[str, Any]) -> CustomDriftProfile:
    document = _convert("", root, shapes.CustomDriftProfile)
    config, alert = document.config, document.config.alert_config
    conditions = None
    if alert.alert_conditions is not None:
        conditions = {
            key: CustomAlertCondition(
                alert_threshold=condition.alert_threshold,
                alert_threshold_value=(
                    condition.alert_threshold_value if condition.alert_threshold_value is not None else condition.delta
                ),
                baseline_value=condition.baseline_value,
            )
            for key, condition in alert.alert_conditions.items()
        }
    return CustomDriftProfile(
        config=CustomDriftConfig(
            sample_size=config.sample_size,
            space=_entity_name("space", config.space),
            name=_entity_name("name", config.name),
            version=_entity_name("version", config.version),
            alert_config=CustomAlertConfig(
                dispatch_config=_dispatch(alert.dispatch_config), schedule=alert.schedule, alert_conditions=conditions
            ),
            drift_type="Custom",
        ),
        metrics=document.metrics,
        scouter_version=document.scouter_version,
        raw=root,
    )


# --- shared pieces ------------------------------------------------------------------------------------------------


def _convert(path: str, data: object, shape: Any) -> Any:
    """`data` (found at `path`) as its declaration in `scouter.wire.v064_profiles`, or a `ProfileError` naming the
    field and the problem in this module's words."""
    try:
        return msgspec.convert(data, shape)
    except msgspec.ValidationError as exc:
        inner, problem = worded(exc, data, shape)
        where = ".".join(part for part in (path, inner) if part).replace(".[", "[")
        head = str(exc).partition(" - at `")[0]
        field = where.rpartition(".")[2].partition("[")[0]
        value = problem.rpartition(", got ")[2]
        if head.startswith("Invalid enum value") and field == "drift_type":
            expected = shape.__name__.removesuffix("DriftProfile")
            problem = f'expected "{expected}" (the request\'s drift_type), got {value}'
        elif head.startswith("Invalid enum value") and field in _CHOICES:
            choices = ", ".join(f'"{choice}"' for choice in _CHOICES[field])
            problem = f"unknown value {value}, expected one of {choices}"
        elif field.endswith("_limit") and head.startswith("Expected"):
            problem = f"{_LIMIT_EXPECTED}, got {value}"
        elif field == "proportion" and head.startswith("Expected `float` "):
            problem = f"must be within [0, 1], got {value}"
        elif field == "bins" and head.startswith(("Expected `array`", "Expected `array` of length")):
            problem = f"expected a non-empty list of bins, got {value}"
        elif head.startswith("Expected `bool`"):
            problem = f"expected true or false, got {value}"
        raise ProfileError(f"{where}: {problem}") from None


def _entity_name(field: str, value: str) -> str:
    try:
        check_entity_name(f"config.{field}", value)
    except DecodeError as exc:
        raise ProfileError(exc.reason) from None
    return value


def _dispatch(raw: dict[str, Any]) -> DispatchConfig:
    path = "config.alert_config.dispatch_config"
    kind, body = _variant(path, raw)
    shape = shapes.DISPATCH_VARIANTS.get(kind)
    if shape is None:
        copy: dict[str, Any] = orjson.loads(orjson.dumps(raw))
        return copy
    dispatch = _convert(f"{path}.{kind}", body, shape)
    if isinstance(dispatch, shapes.ConsoleDispatch):
        return ConsoleDispatch(dispatch.enabled)
    if isinstance(dispatch, shapes.SlackDispatch):
        return SlackDispatch(dispatch.channel)
    return OpsGenieDispatch(team=dispatch.team, priority=dispatch.priority)


def _feature_map(feature_map: shapes.FeatureMap | None) -> dict[str, dict[str, int]]:
    return {} if feature_map is None else feature_map.features


def _variant(path: str, value: dict[str, Any]) -> tuple[str, Any]:
    """An externally tagged enum value with data: ``{"Variant": {...}}``."""
    if len(value) != 1:
        raise ProfileError(f'{path}: expected exactly one variant like {{"Name": {{...}}}}, got {show(value)}')
    ((kind, body),) = value.items()
    return kind, body


def _json_copy(path: str, value: object) -> Any:
    """An owned deep copy of plain JSON data, refusing what jsonb cannot store: NaN, ±inf, NUL in strings."""
    if type(value) is str:
        if "\x00" in value:
            raise ProfileError(f"{path}: must not contain NUL, got {show(value)}")
        return value
    if type(value) is dict:
        for key in value:
            if type(key) is not str or "\x00" in key:
                raise ProfileError(f"{path}: object keys must be strings without NUL, got {show(key)}")
        return {key: _json_copy(f"{path}.{key}" if path != "profile" else key, item) for key, item in value.items()}
    if type(value) is list:
        return [_json_copy(f"{path}[{position}]", item) for position, item in enumerate(value)]
    if type(value) is float and not math.isfinite(value):
        raise ProfileError(f"{path}: must be a finite number, got {value!r}")
    if value is None or type(value) in (int, float, bool):
        return value
    raise ProfileError(f"{path}: not JSON data: {value!r}")


def _timestamp(path: str, text: str) -> datetime:
    try:
        return parse_rfc3339(text)
    except ValueError as exc:
        raise ProfileError(f"{path}: {exc}, got {show(text)}") from None
