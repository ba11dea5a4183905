"""Drift profiles (server.md §3.2): strict parsing into typed values, and faithful re-emission.

`POST /scouter/profile` carries the profile as a JSON *string* next to its ``drift_type``. `parse_profile` checks it
strictly against the scouter-ml 0.6.4 shapes and returns a typed, frozen value for the server's own use (poller,
evaluators, routes). What gets stored and sent back is the client's own document, not a re-serialisation of the
typed form: `to_json` returns the parsed dict (so infinite PSI bin limits stay the strings ``"-inf"``/``"inf"``), and
the real client can always read it again. The only normalisation: a legacy ``psi_threshold`` float (scouter
<= 0.5.4) becomes ``threshold: {"Fixed": {"threshold": x}}``, the form 0.6.4 requires.

Also stricter than upstream, on purpose:

* ``config.drift_type``, when present, must equal the request's ``drift_type`` (upstream stored a mismatch and then
  served it under the wrong tag);
* ``config.space``, ``config.name`` and ``config.version`` must not be empty nor hold NUL (anything else is
  accepted as upstream does; see `scouter.records.check_entity_name`);
* numbers must be finite; PSI bin ids unique per feature; proportions within [0, 1]; thresholds' alpha within [0, 1);
* no string anywhere may hold NUL (the document is stored as jsonb, which cannot).

Unknown extra fields are accepted and kept (serde ignores them too). The SPC ``rule`` string is kept as text; the
drift evaluator parses it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any, ClassVar, Final, TypeAlias

import attrs
import orjson

from scouter.records import DecodeError, check_entity_name, parse_rfc3339

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

DRIFT_TYPES: Final = ("Spc", "Psi", "Custom")
ALERT_ZONES: Final = ("Zone1", "Zone2", "Zone3", "Zone4", "NotApplicable")
ALERT_THRESHOLDS: Final = ("Below", "Above", "Outside")
PSI_THRESHOLD_KINDS: Final = ("ChiSquare", "Normal", "Fixed")
BIN_TYPES: Final = ("Numeric", "Category")


class ProfileError(ValueError):
    """A drift profile that cannot be parsed; the message names the path and the problem."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# --- dispatch -----------------------------------------------------------------------------------------------------


@attrs.frozen
class ConsoleDispatch:
    """``{"Console": {"enabled": true}}``: alerts are logged."""

    enabled: bool


@attrs.frozen
class SlackDispatch:
    """``{"Slack": {"channel": "..."}}``."""

    channel: str


@attrs.frozen
class OpsGenieDispatch:
    """``{"OpsGenie": {"team": "...", "priority": "P5"}}``."""

    team: str
    priority: str


# A variant this server does not know is kept as its raw tagged dict, e.g. {"Teams": {...}}: a later client may
# send one, and the profile stays usable (the dispatcher can fall back to logging).
DispatchConfig: TypeAlias = ConsoleDispatch | SlackDispatch | OpsGenieDispatch | dict[str, Any]


# --- SPC ----------------------------------------------------------------------------------------------------------


@attrs.frozen
class SpcFeatureLimits:
    """Control limits of one feature: center ± 1, 2, 3 sigma."""

    id: str
    center: float
    one_ucl: float
    one_lcl: float
    two_ucl: float
    two_lcl: float
    three_ucl: float
    three_lcl: float
    timestamp: datetime


@attrs.frozen
class SpcAlertRule:
    """The 8-number rule string (e.g. ``"8 16 4 8 2 4 1 1"``) and the zones whose alerts are kept."""

    rule: str
    zones_to_monitor: tuple[str, ...]


@attrs.frozen
class SpcAlertConfig:
    rule: SpcAlertRule
    schedule: str
    features_to_monitor: tuple[str, ...]
    dispatch_config: DispatchConfig


@attrs.frozen
class SpcDriftConfig:
    sample_size: int
    sample: bool
    space: str
    name: str
    version: str
    alert_config: SpcAlertConfig
    feature_map: Mapping[str, Mapping[str, int]]
    drift_type: str


class _Common:
    """Accessors shared by the three profile kinds; each defines ``config`` (and ``raw``) as attrs fields."""

    __slots__ = ()
    config: Any

    @property
    def space(self) -> str:
        space: str = self.config.space
        return space

    @property
    def name(self) -> str:
        name: str = self.config.name
        return name

    @property
    def version(self) -> str:
        version: str = self.config.version
        return version

    @property
    def schedule(self) -> str:
        """The cron string (seconds first) of ``config.alert_config.schedule``."""
        schedule: str = self.config.alert_config.schedule
        return schedule

    @property
    def dispatch_config(self) -> DispatchConfig:
        dispatch: DispatchConfig = self.config.alert_config.dispatch_config
        return dispatch


@attrs.frozen
class SpcDriftProfile(_Common):
    """An SPC profile; ``raw`` is the document as received (what `to_json` re-emits)."""

    drift_type: ClassVar[str] = "Spc"

    features: Mapping[str, SpcFeatureLimits]
    config: SpcDriftConfig
    scouter_version: str
    raw: dict[str, Any] = attrs.field(eq=False, repr=False)

    @property
    def features_to_monitor(self) -> tuple[str, ...]:
        return self.config.alert_config.features_to_monitor

    @property
    def rule(self) -> str:
        return self.config.alert_config.rule.rule

    @property
    def zones_to_monitor(self) -> tuple[str, ...]:
        return self.config.alert_config.rule.zones_to_monitor


# --- PSI ----------------------------------------------------------------------------------------------------------


@attrs.frozen
class PsiBin:
    """One bin; limits are None for categorical bins and may be ±inf for the outer numeric ones."""

    id: int
    lower_limit: float | None
    upper_limit: float | None
    proportion: float


@attrs.frozen
class PsiFeatureProfile:
    id: str
    bins: tuple[PsiBin, ...]
    timestamp: datetime
    bin_type: str  # "Numeric" | "Category"


@attrs.frozen
class PsiThreshold:
    """How the alert threshold is found: ``kind`` ChiSquare or Normal with ``value`` = alpha, or Fixed."""

    kind: str
    value: float


@attrs.frozen
class PsiAlertConfig:
    schedule: str
    features_to_monitor: tuple[str, ...]
    dispatch_config: DispatchConfig
    threshold: PsiThreshold


@attrs.frozen
class PsiDriftConfig:
    space: str
    name: str
    version: str
    alert_config: PsiAlertConfig
    feature_map: Mapping[str, Mapping[str, int]]
    drift_type: str
    categorical_features: tuple[str, ...] | None


@attrs.frozen
class PsiDriftProfile(_Common):
    """A PSI profile; ``raw`` is the document as received (what `to_json` re-emits)."""

    drift_type: ClassVar[str] = "Psi"

    features: Mapping[str, PsiFeatureProfile]
    config: PsiDriftConfig
    scouter_version: str
    raw: dict[str, Any] = attrs.field(eq=False, repr=False)

    @property
    def features_to_monitor(self) -> tuple[str, ...]:
        return self.config.alert_config.features_to_monitor

    @property
    def threshold(self) -> PsiThreshold:
        return self.config.alert_config.threshold

    def bins(self, feature: str) -> tuple[PsiBin, ...]:
        """The profile bins of `feature` (KeyError if the profile has no such feature)."""
        return self.features[feature].bins


# --- Custom -------------------------------------------------------------------------------------------------------


@attrs.frozen
class CustomAlertCondition:
    alert_threshold: str  # "Below" | "Above" | "Outside"
    alert_threshold_value: float | None


@attrs.frozen
class CustomAlertConfig:
    dispatch_config: DispatchConfig
    schedule: str
    alert_conditions: Mapping[str, CustomAlertCondition] | None


@attrs.frozen
class CustomDriftConfig:
    sample_size: int
    space: str
    name: str
    version: str
    alert_config: CustomAlertConfig
    drift_type: str


@attrs.frozen
class CustomDriftProfile(_Common):
    """A custom-metric profile; ``raw`` is the document as received (what `to_json` re-emits)."""

    drift_type: ClassVar[str] = "Custom"

    config: CustomDriftConfig
    metrics: Mapping[str, float]  # metric name -> training (baseline) value
    scouter_version: str
    raw: dict[str, Any] = attrs.field(eq=False, repr=False)

    @property
    def features_to_monitor(self) -> tuple[str, ...]:
        """The metric names: a custom profile monitors every metric it defines."""
        return tuple(self.metrics)

    @property
    def alert_conditions(self) -> dict[str, tuple[str, float | None]]:
        """``{metric: (alert_threshold, alert_threshold_value or None)}``; empty when the profile has none."""
        conditions = self.config.alert_config.alert_conditions or {}
        return {name: (c.alert_threshold, c.alert_threshold_value) for name, c in conditions.items()}


DriftProfile: TypeAlias = SpcDriftProfile | PsiDriftProfile | CustomDriftProfile


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


def _check_drift_type(drift_type: object) -> None:
    if drift_type not in DRIFT_TYPES:
        raise ProfileError(f'drift_type: unknown drift type {_show(drift_type)}, expected "Spc", "Psi" or "Custom"')


def _build(drift_type: str, data: object) -> DriftProfile:
    root = _object("profile", data)
    if drift_type == "Spc":
        return _spc_profile(root)
    if drift_type == "Psi":
        return _psi_profile(root)
    return _custom_profile(root)


def _spc_profile(root: dict[str, Any]) -> SpcDriftProfile:
    features = {
        key: _spc_features(f"features.{key}", value)
        for key, value in _object("features", _get("", root, "features")).items()
    }
    config = _object("config", _get("", root, "config"))
    alert = _object("config.alert_config", _get("config", config, "alert_config"))
    rule = _object("config.alert_config.rule", _get("config.alert_config", alert, "rule"))
    zones = _str_list(
        "config.alert_config.rule.zones_to_monitor", _get("config.alert_config.rule", rule, "zones_to_monitor")
    )
    for position, zone in enumerate(zones):
        _one_of(f"config.alert_config.rule.zones_to_monitor[{position}]", zone, ALERT_ZONES)
    alert_config = SpcAlertConfig(
        rule=SpcAlertRule(_str("config.alert_config.rule.rule", _get("config.alert_config.rule", rule, "rule")), zones),
        schedule=_schedule(alert),
        features_to_monitor=_features_to_monitor(alert),
        dispatch_config=_dispatch(alert),
    )
    space, name, version = _entity(config)
    return SpcDriftProfile(
        features=features,
        config=SpcDriftConfig(
            sample_size=_uint("config.sample_size", _get("config", config, "sample_size")),
            sample=_bool("config.sample", _get("config", config, "sample")),
            space=space,
            name=name,
            version=version,
            alert_config=alert_config,
            feature_map=_feature_map(config),
            drift_type=_config_drift_type(config, "Spc"),
        ),
        scouter_version=_str("scouter_version", _get("", root, "scouter_version")),
        raw=root,
    )


def _spc_features(path: str, value: object) -> SpcFeatureLimits:
    feature = _object(path, value)
    limits = {
        key: _float(f"{path}.{key}", _get(path, feature, key))
        for key in ("center", "one_ucl", "one_lcl", "two_ucl", "two_lcl", "three_ucl", "three_lcl")
    }
    return SpcFeatureLimits(
        id=_str(f"{path}.id", _get(path, feature, "id")),
        timestamp=_timestamp(f"{path}.timestamp", _get(path, feature, "timestamp")),
        **limits,
    )


def _psi_profile(root: dict[str, Any]) -> PsiDriftProfile:
    features = {
        key: _psi_feature(f"features.{key}", value)
        for key, value in _object("features", _get("", root, "features")).items()
    }
    config = _object("config", _get("", root, "config"))
    alert = _object("config.alert_config", _get("config", config, "alert_config"))
    alert_config = PsiAlertConfig(
        schedule=_schedule(alert),
        features_to_monitor=_features_to_monitor(alert),
        dispatch_config=_dispatch(alert),
        threshold=_psi_threshold(alert),
    )
    categorical = config.get("categorical_features")
    space, name, version = _entity(config)
    return PsiDriftProfile(
        features=features,
        config=PsiDriftConfig(
            space=space,
            name=name,
            version=version,
            alert_config=alert_config,
            feature_map=_feature_map(config),
            drift_type=_config_drift_type(config, "Psi"),
            categorical_features=None if categorical is None else _str_list("config.categorical_features", categorical),
        ),
        scouter_version=_str("scouter_version", _get("", root, "scouter_version")),
        raw=root,
    )


def _psi_feature(path: str, value: object) -> PsiFeatureProfile:
    feature = _object(path, value)
    raw_bins = _get(path, feature, "bins")
    if type(raw_bins) is not list or not raw_bins:
        raise ProfileError(f"{path}.bins: expected a non-empty list of bins, got {_show(raw_bins)}")
    bins = tuple(_psi_bin(f"{path}.bins[{position}]", raw) for position, raw in enumerate(raw_bins))
    ids = [psi_bin.id for psi_bin in bins]
    if len(set(ids)) != len(ids):
        duplicate = next(bin_id for bin_id in ids if ids.count(bin_id) > 1)
        raise ProfileError(f"{path}.bins: bin id {duplicate} appears more than once")
    return PsiFeatureProfile(
        id=_str(f"{path}.id", _get(path, feature, "id")),
        bins=bins,
        timestamp=_timestamp(f"{path}.timestamp", _get(path, feature, "timestamp")),
        bin_type=_one_of(f"{path}.bin_type", _get(path, feature, "bin_type"), BIN_TYPES),
    )


def _psi_bin(path: str, value: object) -> PsiBin:
    raw = _object(path, value)
    proportion = _float(f"{path}.proportion", _get(path, raw, "proportion"))
    if not 0.0 <= proportion <= 1.0:
        raise ProfileError(f"{path}.proportion: must be within [0, 1], got {proportion!r}")
    return PsiBin(
        id=_uint(f"{path}.id", _get(path, raw, "id")),
        lower_limit=_limit(f"{path}.lower_limit", _get(path, raw, "lower_limit")),
        upper_limit=_limit(f"{path}.upper_limit", _get(path, raw, "upper_limit")),
        proportion=proportion,
    )


def _limit(path: str, value: object) -> float | None:
    """A bin limit: null, a finite number, or a string the client's parser takes ("inf", "-inf", "1.5")."""
    if value is None:
        return None
    if type(value) is str:
        # float() also takes surrounding blanks and digit underscores, which the client's parser refuses.
        if value == value.strip() and "_" not in value:
            try:
                number = float(value)
            except ValueError:
                pass
            else:
                if not math.isnan(number):
                    return number
        raise ProfileError(f'{path}: expected a number, a numeric string, "inf", "-inf" or null, got {_show(value)}')
    return _float(path, value)


def _psi_threshold(alert: dict[str, Any]) -> PsiThreshold:
    path = "config.alert_config.threshold"
    raw = alert.get("threshold")
    if raw is None and "psi_threshold" in alert:
        # scouter <= 0.5.4 had a bare `psi_threshold: f64`; rewrite it to the 0.6.4 form so the client can read it.
        value = _float("config.alert_config.psi_threshold", alert.pop("psi_threshold"))
        alert["threshold"] = {"Fixed": {"threshold": value}}
        return PsiThreshold("Fixed", value)
    if raw is None:
        raise ProfileError(f"{path}: missing field" if "threshold" not in alert else f"{path}: must not be null")
    kind, body = _variant(path, raw)
    _one_of(path, kind, PSI_THRESHOLD_KINDS, what="threshold kind")
    body = _object(f"{path}.{kind}", body)
    if kind == "Fixed":
        return PsiThreshold(kind, _float(f"{path}.Fixed.threshold", _get(f"{path}.Fixed", body, "threshold")))
    alpha = _float(f"{path}.{kind}.alpha", _get(f"{path}.{kind}", body, "alpha"))
    if not 0.0 <= alpha < 1.0:
        raise ProfileError(f"{path}.{kind}.alpha: must be within [0, 1), got {alpha!r}")
    return PsiThreshold(kind, alpha)


def _custom_profile(root: dict[str, Any]) -> CustomDriftProfile:
    config = _object("config", _get("", root, "config"))
    alert = _object("config.alert_config", _get("config", config, "alert_config"))
    raw_conditions = alert.get("alert_conditions")
    conditions = None
    if raw_conditions is not None:
        conditions = {
            key: _condition(f"config.alert_config.alert_conditions.{key}", value)
            for key, value in _object("config.alert_config.alert_conditions", raw_conditions).items()
        }
    space, name, version = _entity(config)
    return CustomDriftProfile(
        config=CustomDriftConfig(
            sample_size=_uint("config.sample_size", _get("config", config, "sample_size")),
            space=space,
            name=name,
            version=version,
            alert_config=CustomAlertConfig(
                dispatch_config=_dispatch(alert), schedule=_schedule(alert), alert_conditions=conditions
            ),
            drift_type=_config_drift_type(config, "Custom"),
        ),
        metrics={
            key: _float(f"metrics.{key}", value) for key, value in _object("metrics", _get("", root, "metrics")).items()
        },
        scouter_version=_str("scouter_version", _get("", root, "scouter_version")),
        raw=root,
    )


def _condition(path: str, value: object) -> CustomAlertCondition:
    raw = _object(path, value)
    threshold_value = raw.get("alert_threshold_value")
    return CustomAlertCondition(
        alert_threshold=_one_of(f"{path}.alert_threshold", _get(path, raw, "alert_threshold"), ALERT_THRESHOLDS),
        alert_threshold_value=None
        if threshold_value is None
        else _float(f"{path}.alert_threshold_value", threshold_value),
    )


# --- shared pieces ------------------------------------------------------------------------------------------------


def _entity(config: dict[str, Any]) -> tuple[str, str, str]:
    values = []
    for key in ("space", "name", "version"):
        value = _get("config", config, key)
        try:
            check_entity_name(f"config.{key}", value)
        except DecodeError as exc:
            raise ProfileError(exc.reason) from None
        values.append(value)
    return values[0], values[1], values[2]


def _config_drift_type(config: dict[str, Any], expected: str) -> str:
    value = config.get("drift_type", expected)  # optional; serde defaults it to the profile's own type
    if value != expected:
        raise ProfileError(f'config.drift_type: expected "{expected}" (the request\'s drift_type), got {_show(value)}')
    return expected


def _schedule(alert: dict[str, Any]) -> str:
    # The cron syntax itself is checked where the next run is computed.
    return _str("config.alert_config.schedule", _get("config.alert_config", alert, "schedule"))


def _features_to_monitor(alert: dict[str, Any]) -> tuple[str, ...]:
    path = "config.alert_config.features_to_monitor"
    return _str_list(path, _get("config.alert_config", alert, "features_to_monitor"))


def _dispatch(alert: dict[str, Any]) -> DispatchConfig:
    path = "config.alert_config.dispatch_config"
    raw = _get("config.alert_config", alert, "dispatch_config")
    kind, body = _variant(path, raw)
    if kind == "Console":
        body = _object(f"{path}.Console", body)
        return ConsoleDispatch(_bool(f"{path}.Console.enabled", _get(f"{path}.Console", body, "enabled")))
    if kind == "Slack":
        body = _object(f"{path}.Slack", body)
        return SlackDispatch(_str(f"{path}.Slack.channel", _get(f"{path}.Slack", body, "channel")))
    if kind == "OpsGenie":
        body = _object(f"{path}.OpsGenie", body)
        return OpsGenieDispatch(
            team=_str(f"{path}.OpsGenie.team", _get(f"{path}.OpsGenie", body, "team")),
            priority=_str(f"{path}.OpsGenie.priority", _get(f"{path}.OpsGenie", body, "priority")),
        )
    copy: dict[str, Any] = orjson.loads(orjson.dumps(raw))
    return copy


def _feature_map(config: dict[str, Any]) -> dict[str, dict[str, int]]:
    raw = config.get("feature_map")
    if raw is None and "feature_map" not in config:
        return {}
    outer = _object("config.feature_map", raw)
    features = _object("config.feature_map.features", _get("config.feature_map", outer, "features"))
    result: dict[str, dict[str, int]] = {}
    for feature, categories in features.items():
        path = f"config.feature_map.features.{feature}"
        result[feature] = {
            category: _uint(f"{path}.{category}", code) for category, code in _object(path, categories).items()
        }
    return result


def _variant(path: str, value: object) -> tuple[str, Any]:
    """An externally tagged enum value with data: ``{"Variant": {...}}``."""
    raw = _object(path, value)
    if len(raw) != 1:
        raise ProfileError(f'{path}: expected exactly one variant like {{"Name": {{...}}}}, got {_show(raw)}')
    ((kind, body),) = raw.items()
    return kind, body


def _json_copy(path: str, value: object) -> Any:
    """An owned deep copy of plain JSON data, refusing what jsonb cannot store: NaN, ±inf, NUL in strings."""
    if type(value) is str:
        if "\x00" in value:
            raise ProfileError(f"{path}: must not contain NUL, got {_show(value)}")
        return value
    if type(value) is dict:
        for key in value:
            if type(key) is not str or "\x00" in key:
                raise ProfileError(f"{path}: object keys must be strings without NUL, got {_show(key)}")
        return {key: _json_copy(f"{path}.{key}" if path != "profile" else key, item) for key, item in value.items()}
    if type(value) is list:
        return [_json_copy(f"{path}[{position}]", item) for position, item in enumerate(value)]
    if type(value) is float and not math.isfinite(value):
        raise ProfileError(f"{path}: must be a finite number, got {value!r}")
    if value is None or type(value) in (int, float, bool):
        return value
    raise ProfileError(f"{path}: not JSON data: {value!r}")


# --- scalar readers -----------------------------------------------------------------------------------------------


def _get(path: str, obj: Mapping[str, Any], key: str) -> Any:
    if key not in obj:
        raise ProfileError(f"{path}.{key}: missing field" if path else f"{key}: missing field")
    return obj[key]


def _object(path: str, value: object) -> dict[str, Any]:
    if type(value) is not dict:
        raise ProfileError(f"{path}: expected an object, got {_show(value)}")
    return value


def _str(path: str, value: object) -> str:
    if type(value) is not str:
        raise ProfileError(f"{path}: expected a string, got {_show(value)}")
    return value


def _str_list(path: str, value: object) -> tuple[str, ...]:
    if type(value) is not list:
        raise ProfileError(f"{path}: expected a list of strings, got {_show(value)}")
    return tuple(_str(f"{path}[{position}]", item) for position, item in enumerate(value))


def _one_of(path: str, value: object, allowed: tuple[str, ...], what: str = "value") -> str:
    if value not in allowed or type(value) is not str:
        choices = ", ".join(f'"{choice}"' for choice in allowed)
        raise ProfileError(f"{path}: unknown {what} {_show(value)}, expected one of {choices}")
    return value


def _float(path: str, value: object) -> float:
    # Booleans are not numbers; ints are (serde reads 10 as 10.0 for an f64).
    if type(value) is int:
        return float(value)
    if type(value) is not float:
        raise ProfileError(f"{path}: expected a number, got {_show(value)}")
    if not math.isfinite(value):
        raise ProfileError(f"{path}: must be a finite number, got {value!r}")
    return value


def _uint(path: str, value: object) -> int:
    if type(value) is not int or value < 0:
        raise ProfileError(f"{path}: must be a non-negative integer, got {_show(value)}")
    return value


def _bool(path: str, value: object) -> bool:
    if type(value) is not bool:
        raise ProfileError(f"{path}: expected true or false, got {_show(value)}")
    return value


def _timestamp(path: str, value: object) -> datetime:
    text = _str(path, value)
    try:
        return parse_rfc3339(text)
    except ValueError as exc:
        raise ProfileError(f"{path}: {exc}, got {_show(text)}") from None


def _show(value: object, limit: int = 80) -> str:
    """A short JSON rendering of a bad value for an error message."""
    try:
        text = orjson.dumps(value).decode()
    except TypeError:
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
