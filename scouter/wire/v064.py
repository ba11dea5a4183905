"""The scouter-ml 0.6.4 wire shapes of the query and answer bodies (server.md §2–§3, client.md §3), each declared once
as a msgspec struct: health, errors, drift and observability queries and answers, alerts, profile status and lists.

The ServerRecords message is in `scouter.wire.v064_records`, the profile documents in `scouter.wire.v064_profiles`,
authentication and users in `scouter.wire.v064_accounts`. A struct marked ``forbid_unknown_fields`` is an answer
whose every key is listed (its schema says ``additionalProperties: false``); its date-times are `Timestamp` text
already rendered the way upstream prints them (``2026-11-22T17:06:39.000000Z``: always six digits, which msgspec's
own datetime encoding drops when they are zero). ``EXAMPLES`` (a class variable, not a
field) is a whole-body example the HTTP layer adds to the struct's schema.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Final, Literal

from msgspec import Meta, Struct

from scouter.wire.common import INT32_MAX, DateTime, DriftTypeName, EntityName, Int32, Text, Timestamp

__all__ = [
    "SHAPES",
    "Alert",
    "AlertUpdated",
    "Alerts",
    "Alive",
    "AuthErrorBody",
    "BinnedCustomMetrics",
    "BinnedPsiFeatureMetrics",
    "CustomMetricSeries",
    "CustomStats",
    "DriftAlertRequest",
    "ErrorBody",
    "GetProfileRequest",
    "ObservabilityMetricRequest",
    "ObservabilityMetrics",
    "ProfileList",
    "ProfileListRequest",
    "ProfileStatusRequest",
    "ProfileSummary",
    "PsiFeatureSeries",
    "Ready",
    "RouteSeries",
    "ScouterResponse",
    "SpcDriftFeatures",
    "SpcFeatureSeries",
    "StatusErrorBody",
    "UpdateAlertStatus",
]

Name = Annotated[EntityName, Meta(examples=["model"])]
Version = Annotated[EntityName, Meta(examples=["1.0.0"])]


# --- error bodies ---------------------------------------------------------------------------------------------------


class ErrorBody(Struct):
    """An error: `{"error": "<message>"}` (some answers add a `message`)."""

    error: str


class AuthErrorBody(Struct):
    """Authentication failed: `{"error": "Unauthorized", "message": "<why>"}`."""

    error: Annotated[str, Meta(examples=["Unauthorized"])]
    message: Annotated[str, Meta(examples=["No access token provided"])]


class StatusErrorBody(Struct):
    """An error of the observability route: `{"status": "error", "message": "<why>"}`."""

    status: Literal["error"]
    message: str


# --- plain success bodies -------------------------------------------------------------------------------------------


class ScouterResponse(Struct, forbid_unknown_fields=True):
    """Success: `{"status": "success", "message": "<what was done>"}`."""

    EXAMPLES: ClassVar[list[dict[str, Any]]] = [{"status": "success", "message": "Drift records queued for processing"}]

    status: Literal["success"]
    message: Annotated[str, Meta(examples=["Drift profile inserted successfully"])]


class Alive(Struct, forbid_unknown_fields=True, omit_defaults=True):
    """Liveness: `{"alive": true}`, or `{"alive": false, "status": "draining"}` (503) while shutting down."""

    alive: bool
    status: Literal["draining"] | None = None


class Ready(Struct, forbid_unknown_fields=True, omit_defaults=True):
    """Readiness: `{"ready": true}`, or `{"ready": false, "problems": {component: problem}}` (503)."""

    ready: bool
    problems: dict[str, str] | None = None


# --- query strings --------------------------------------------------------------------------------------------------


class GetProfileRequest(Struct):
    """Which profile to download."""

    space: EntityName
    name: Name
    version: Version
    drift_type: DriftTypeName


class DriftAlertRequest(Struct):
    """Which alerts to list: newest first; `active=true` keeps the active ones only (`false` means every alert)."""

    name: Annotated[Text, Meta(examples=["model"])]
    space: Annotated[Text, Meta(examples=["cap"])]
    version: Annotated[Text, Meta(examples=["1.0.0"])]
    limit_datetime: Annotated[DateTime | None, Meta(description="Only alerts created at or after this.")] = None
    active: bool | None = None
    limit: Annotated[int, Meta(ge=0, le=INT32_MAX)] | None = None


class ObservabilityMetricRequest(Struct):
    """An observability query: the entity, the last `time_interval` (anything else means six hours), points."""

    space: EntityName
    name: Name
    version: Version
    time_interval: Annotated[str, Meta(examples=["1hour"])]
    max_data_points: Annotated[
        Int32, Meta(description="Clamped to 1 … 10 000 buckets (0 or below: one).", examples=[100])
    ]


class ProfileListRequest(Struct):
    """Restrict the list to one space (a space the caller may not read lists nothing)."""

    space: Text | None = None


# --- profiles (status and list) -------------------------------------------------------------------------------------


class ProfileStatusRequest(Struct):
    """Activate or deactivate a profile (every drift type of the version when `drift_type` is null), optionally
    deactivating the other versions of the same space and name."""

    EXAMPLES: ClassVar[list[dict[str, Any]]] = [
        {
            "name": "model",
            "space": "cap",
            "version": "1.0.0",
            "active": True,
            "drift_type": "Custom",
            "deactivate_others": False,
        }
    ]

    space: EntityName
    name: Name
    version: Version
    active: bool
    drift_type: DriftTypeName | None = None
    deactivate_others: bool = False


class ProfileSummary(Struct, forbid_unknown_fields=True):
    space: str
    name: str
    version: str
    drift_type: DriftTypeName
    uid: Annotated[str, Meta(description="The entity uid (scouter-ml 0.25 names the profile by it).")]
    active: bool
    schedule: str
    next_run: Timestamp | None
    previous_run: Timestamp | None
    updated_at: Timestamp | None


class ProfileList(Struct, forbid_unknown_fields=True):
    """The profiles of the spaces the caller may read."""

    profiles: list[ProfileSummary]


# --- binned drift and observability answers -------------------------------------------------------------------------


class SpcFeatureSeries(Struct, forbid_unknown_fields=True):
    created_at: Annotated[list[Timestamp], Meta(description="Bucket starts, newest first.")]
    values: Annotated[list[float], Meta(description="The mean of each bucket.")]


class SpcDriftFeatures(Struct, forbid_unknown_fields=True):
    """Per feature, the mean value of each bucket, newest first (`{"features": {}}` when there is no data)."""

    EXAMPLES: ClassVar[list[dict[str, Any]]] = [
        {"features": {"feature_0": {"created_at": ["2026-11-22T17:06:39.000000Z"], "values": [-0.0403]}}}
    ]

    features: dict[str, SpcFeatureSeries]


class PsiFeatureSeries(Struct, forbid_unknown_fields=True):
    created_at: list[Timestamp]
    psi: list[float]
    overall_psi: float
    bins: Annotated[dict[str, float], Meta(description="Overall proportion per bin id (the id as a string).")]


class BinnedPsiFeatureMetrics(Struct, forbid_unknown_fields=True):
    """Per profile feature, the PSI of each bucket (buckets of more than 100 observations), newest first."""

    EXAMPLES: ClassVar[list[dict[str, Any]]] = [
        {
            "features": {
                "feature_0": {
                    "created_at": ["2026-11-22T17:06:36.000000Z"],
                    "psi": [0.0365],
                    "overall_psi": 0.0365,
                    "bins": {"1": 0.116, "2": 0.096, "3": 0.092, "4": 0.104, "5": 0.1, "6": 0.084},
                }
            }
        }
    ]

    features: dict[str, PsiFeatureSeries]


class CustomStats(Struct, forbid_unknown_fields=True):
    avg: float
    lower_bound: float
    upper_bound: float


class CustomMetricSeries(Struct, forbid_unknown_fields=True):
    metric: str
    created_at: list[Timestamp]
    stats: list[CustomStats]


class BinnedCustomMetrics(Struct, forbid_unknown_fields=True):
    """Per metric, the mean ∓ the sample standard deviation of each bucket, newest first."""

    EXAMPLES: ClassVar[list[dict[str, Any]]] = [
        {
            "metrics": {
                "mae": {
                    "metric": "mae",
                    "created_at": ["2026-11-22T17:06:36.000000Z"],
                    "stats": [{"avg": 4.5, "lower_bound": 4.0, "upper_bound": 5.0}],
                }
            }
        }
    ]

    metrics: dict[str, CustomMetricSeries]


class RouteSeries(Struct, forbid_unknown_fields=True):
    route_name: str
    created_at: list[Timestamp]
    p5: list[float]
    p25: list[float]
    p50: list[float]
    p95: list[float]
    p99: list[float]
    total_request_count: list[int]
    total_error_count: list[int]
    error_latency: list[float]
    status_counts: list[dict[str, int]]


class ObservabilityMetrics(Struct, forbid_unknown_fields=True):
    """Per route, bucket aggregates newest first."""

    status: Literal["success"]
    data: list[RouteSeries]


# --- alerts ---------------------------------------------------------------------------------------------------------


class Alert(Struct, forbid_unknown_fields=True):
    EXAMPLES: ClassVar[list[dict[str, Any]]] = [
        {
            "created_at": "2026-11-22T17:06:43.680899Z",
            "name": "model",
            "space": "cap",
            "version": "1.0.0",
            "entity_name": "feature_0",
            "alert": {"zone": "Zone 4", "kind": "Out of bounds", "entity_name": "feature_0"},
            "id": 1,
            "drift_type": "Spc",
            "active": True,
        }
    ]

    created_at: Timestamp
    name: str
    space: str
    version: str
    entity_name: str
    alert: Annotated[dict[str, str], Meta(description="Every value is a string.")]
    id: int
    drift_type: str
    active: bool


class Alerts(Struct, forbid_unknown_fields=True):
    """The alerts, newest first."""

    alerts: list[Alert]


class UpdateAlertStatus(Struct):
    """Set an alert's `active` flag; `space` must be the alert's own."""

    id: Int32
    active: bool
    space: Text


class AlertUpdated(Struct, forbid_unknown_fields=True):
    """The alert now has the requested status."""

    updated: Literal[True]


#: Every struct above, for the OpenAPI document's components.
SHAPES: Final = (
    ErrorBody,
    AuthErrorBody,
    StatusErrorBody,
    ScouterResponse,
    Alive,
    Ready,
    GetProfileRequest,
    DriftAlertRequest,
    ObservabilityMetricRequest,
    ProfileListRequest,
    ProfileStatusRequest,
    ProfileSummary,
    ProfileList,
    SpcFeatureSeries,
    SpcDriftFeatures,
    PsiFeatureSeries,
    BinnedPsiFeatureMetrics,
    CustomStats,
    CustomMetricSeries,
    BinnedCustomMetrics,
    RouteSeries,
    ObservabilityMetrics,
    Alert,
    Alerts,
    UpdateAlertStatus,
    AlertUpdated,
)
