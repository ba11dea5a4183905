"""The drift profile documents (server.md §3, client.md §4), each declared once as msgspec structs: the stored
profile, externally tagged by its drift type, as `GET /scouter/profile` answers it and `POST /scouter/profile` takes
it (as JSON text in ``profile``). `scouter.profiles` decodes the documents with these structs (after screening the
whole document for what jsonb cannot store) and checks what a type cannot say: entity names, unique bin ids, the
tagged variants of ``dispatch_config`` and ``threshold`` (whose bodies are declared here too).

Unknown fields are allowed and kept (the 0.25 superset adds ``config.uid``, PSI ``binning_strategy`` and a second
spelling of custom alert conditions; see `scouter.profile_superset`).
"""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal

from msgspec import Meta, Struct

from scouter.wire.common import Timestamp

__all__ = [
    "DISPATCH_VARIANTS",
    "SHAPES",
    "TAGGED_DRIFT_PROFILES",
    "TAGGED_DRIFT_PROFILE_EXAMPLE",
    "THRESHOLD_VARIANTS",
    "CustomDriftProfile",
    "CustomTagged",
    "PsiDriftProfile",
    "PsiTagged",
    "SpcDriftProfile",
    "SpcTagged",
]

Zone = Literal["Zone1", "Zone2", "Zone3", "Zone4", "NotApplicable"]
NonNegative = Annotated[int, Meta(ge=0)]


class SpcAlertRule(Struct):
    rule: Annotated[str, Meta(examples=["8 16 4 8 2 4 1 1"])]
    zones_to_monitor: list[Zone]


class SpcAlertConfig(Struct):
    rule: SpcAlertRule
    schedule: Annotated[str, Meta(description="Cron, seconds first.", examples=["0 0 0 * * *"])]
    features_to_monitor: list[str]
    dispatch_config: Annotated[
        dict[str, Any],
        Meta(description='`{"Console": {"enabled": true}}`, `{"Slack": {"channel": …}}` or `{"OpsGenie": {…}}`.'),
    ]


class ConsoleDispatch(Struct):
    enabled: bool


class SlackDispatch(Struct):
    channel: str


class OpsGenieDispatch(Struct):
    team: str
    priority: str


#: The body of each ``dispatch_config`` variant this server knows (an unknown variant is kept as it is).
DISPATCH_VARIANTS: Final[dict[str, type[Struct]]] = {
    "Console": ConsoleDispatch,
    "Slack": SlackDispatch,
    "OpsGenie": OpsGenieDispatch,
}


class AlphaThreshold(Struct):
    alpha: float


class FixedThreshold(Struct):
    threshold: float


#: The body of each PSI ``threshold`` variant.
THRESHOLD_VARIANTS: Final[dict[str, type[Struct]]] = {
    "ChiSquare": AlphaThreshold,
    "Normal": AlphaThreshold,
    "Fixed": FixedThreshold,
}


class FeatureMap(Struct):
    features: dict[str, dict[str, int]]


class SpcDriftConfig(Struct):
    sample_size: NonNegative
    sample: bool
    space: str
    name: str
    version: str
    alert_config: SpcAlertConfig
    feature_map: FeatureMap | None = None
    drift_type: Literal["Spc"] | None = None


class SpcFeatureDriftProfile(Struct):
    id: str
    center: float
    one_ucl: float
    one_lcl: float
    two_ucl: float
    two_lcl: float
    three_ucl: float
    three_lcl: float
    timestamp: Timestamp


class SpcDriftProfile(Struct):
    """An SPC profile: control limits per feature."""

    features: dict[str, SpcFeatureDriftProfile]
    config: SpcDriftConfig
    scouter_version: str


BinLimit = float | str | None


class PsiBin(Struct):
    id: NonNegative
    lower_limit: Annotated[BinLimit, Meta(description='A number, `"-inf"`, or null for a category.')]
    upper_limit: Annotated[BinLimit, Meta(description='A number, `"inf"`, or null for a category.')]
    proportion: Annotated[float, Meta(ge=0, le=1)]


class PsiFeatureDriftProfile(Struct):
    id: str
    bins: Annotated[list[PsiBin], Meta(min_length=1)]
    timestamp: Timestamp
    bin_type: Literal["Numeric", "Category"]


class PsiAlertConfig(Struct):
    schedule: str
    features_to_monitor: list[str]
    dispatch_config: dict[str, Any]
    threshold: Annotated[
        dict[str, Any],
        Meta(
            description='`{"ChiSquare": {"alpha": 0.05}}`, `{"Normal": {"alpha": …}}` or `{"Fixed": {"threshold": …}}`.'
        ),
    ]


class PsiDriftConfig(Struct):
    space: str
    name: str
    version: str
    alert_config: PsiAlertConfig
    feature_map: FeatureMap | None = None
    drift_type: Literal["Psi"] | None = None
    categorical_features: list[str] | None = None


class PsiDriftProfile(Struct):
    """A PSI profile: reference bins per feature."""

    features: dict[str, PsiFeatureDriftProfile]
    config: PsiDriftConfig
    scouter_version: str


class CustomAlertCondition(Struct):
    """A metric's condition in either spelling: 0.6.4 ``alert_threshold_value``, 0.25 ``delta`` (the same margin)
    and ``baseline_value``."""

    alert_threshold: Literal["Below", "Above", "Outside"]
    alert_threshold_value: float | None = None
    delta: float | None = None
    baseline_value: float | None = None


class CustomAlertConfig(Struct):
    dispatch_config: dict[str, Any]
    schedule: str
    alert_conditions: dict[str, CustomAlertCondition] | None = None


class CustomDriftConfig(Struct):
    sample_size: NonNegative
    space: str
    name: str
    version: str
    alert_config: CustomAlertConfig
    drift_type: Literal["Custom"] | None = None


class CustomDriftProfile(Struct):
    """A custom-metrics profile: reference values per metric."""

    config: CustomDriftConfig
    metrics: dict[str, float]
    scouter_version: str


class SpcTagged(Struct, forbid_unknown_fields=True):
    Spc: SpcDriftProfile


class PsiTagged(Struct, forbid_unknown_fields=True):
    Psi: PsiDriftProfile


class CustomTagged(Struct, forbid_unknown_fields=True):
    Custom: CustomDriftProfile


#: The stored profile is one of these: externally tagged by its drift type.
TAGGED_DRIFT_PROFILES: Final = (SpcTagged, PsiTagged, CustomTagged)

TAGGED_DRIFT_PROFILE_EXAMPLE: Final[dict[str, Any]] = {
    "Custom": {
        "config": {
            "sample_size": 25,
            "space": "demo",
            "name": "model",
            "version": "1.0.0",
            "alert_config": {
                "dispatch_config": {"Console": {"enabled": True}},
                "schedule": "*/5 * * * * *",
                "alert_conditions": {
                    "accuracy": {"alert_threshold": "Below", "alert_threshold_value": 0.1},
                    "mae": {"alert_threshold": "Above", "alert_threshold_value": 0.5},
                },
            },
            "drift_type": "Custom",
        },
        "metrics": {"mae": 1.0, "accuracy": 0.9},
        "scouter_version": "0.6.4",
    }
}

#: Every struct whose schema the OpenAPI document needs (the rest are reached through these).
SHAPES: Final = TAGGED_DRIFT_PROFILES
