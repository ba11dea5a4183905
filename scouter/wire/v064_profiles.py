"""The drift profile documents (server.md §3, client.md §4), as the OpenAPI document describes them: the stored
profile, externally tagged by its drift type, as `GET /scouter/profile` answers it and `POST /scouter/profile` takes
it (as JSON text in ``profile``).

Unknown fields are allowed (the 0.25 superset adds ``config.uid``, PSI ``binning_strategy`` and a second spelling of
custom alert conditions; see `scouter.profile_superset`). `scouter.profiles` reads the documents themselves.
"""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal

from msgspec import Meta, Struct

from scouter.wire.common import DateTime

__all__ = [
    "SHAPES",
    "TAGGED_DRIFT_PROFILES",
    "TAGGED_DRIFT_PROFILE_EXAMPLE",
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
    timestamp: DateTime


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
    bins: list[PsiBin]
    timestamp: DateTime
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
    alert_threshold: Literal["Below", "Above", "Outside"]
    alert_threshold_value: float | None = None


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
