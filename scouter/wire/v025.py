"""The wire shapes scouter-ml 0.25 added (server-v025.md §5, §8, §9, §10), each declared once as a msgspec struct.

One declaration serves three purposes: decoding (`msgspec.convert` of the already parsed JSON, or
`msgspec.json.decode` of raw bytes), encoding (`msgspec.json.encode`) and the OpenAPI document (the HTTP layer feeds
the structs to quart-schema, which asks `msgspec.json.schema_components` for their schemas; `SHAPES` lists every
struct whose schema the document needs). Field order is the wire order the client writes or expects.

What the client always sends is required here; what it may leave null is optional with a null default. Unknown
fields are ignored (the client's serde does the same), so a newer client's extra fields do not break decoding.
"""

from __future__ import annotations

from typing import Annotated, Final, Literal

from msgspec import Meta, Struct

from scouter.wire.common import (
    INT32_MAX,
    AwareDatetime,
    Count,
    DriftTypeName,
    Int32,
    ShapeError,
    Text,
    Timestamp,
    Uid,
    decode,
    encode,
)

__all__ = [
    "SHAPES",
    "UID_RECORD_ITEMS",
    "AlertCursor",
    "AlertItem",
    "AlertMap",
    "CustomAlertBody",
    "DriftAlertPaginationRequest",
    "DriftAlertPaginationResponse",
    "DriftQueryParams",
    "PsiAlertBody",
    "RegisterProfileRequest",
    "RegisteredProfileResponse",
    "ServerRecordsV025",
    "ShapeError",
    "SpcAlertBody",
    "UidCustomItem",
    "UidCustomRecord",
    "UidPsiItem",
    "UidPsiRecord",
    "UidRecordItem",
    "UidSpcItem",
    "UidSpcRecord",
    "VersionRequest",
    "decode",
    "encode",
]

VersionType = Literal["Major", "Minor", "Patch", "Pre", "Build", "PreBuild"]


# --- registration (§5) ----------------------------------------------------------------------------------------------


class VersionRequest(Struct, kw_only=True):
    """How the server picks the version: bump the highest existing version inside `version`'s bounds."""

    version: str | None = None
    version_type: VersionType = "Minor"
    pre_tag: str | None = None
    build_tag: str | None = None


class RegisterProfileRequest(Struct, kw_only=True):
    """`POST /scouter/profile`. With `version_request` (scouter-ml 0.25) the server chooses the version and applies
    `active`/`deactivate_others`; without it (0.6.4) the profile's own version is stored, inactive."""

    space: str
    drift_type: DriftTypeName
    profile: Annotated[str, Meta(description="The profile document as JSON text.")]
    version_request: VersionRequest | None = None
    active: bool = False
    deactivate_others: bool = False


class RegisteredProfileResponse(Struct, kw_only=True):
    """The superset answer both clients accept: 0.6.4 reads `status`/`message`, 0.25 requires the rest."""

    status: Literal["success"]
    message: str
    space: str
    name: str
    version: str
    uid: str
    active: bool


# --- ingest (§8) ----------------------------------------------------------------------------------------------------


class UidSpcRecord(Struct, kw_only=True, gc=False):
    """An SPC sample mean of a 0.25 queue: the entity is named by `uid` only; `entity_id` (always 0) is ignored."""

    created_at: Timestamp
    uid: Uid
    feature: Text
    value: float
    entity_id: int = 0


class UidPsiRecord(Struct, kw_only=True, gc=False):
    """A PSI bin count of a 0.25 queue."""

    created_at: Timestamp
    uid: Uid
    feature: Text
    bin_id: Count
    bin_count: Count
    entity_id: int = 0


class UidCustomRecord(Struct, kw_only=True, gc=False):
    """A custom-metric batch mean of a 0.25 queue."""

    created_at: Timestamp
    uid: Uid
    metric: Text
    value: float
    entity_id: int = 0


class UidSpcItem(Struct, gc=False):
    """A ServerRecords element holding a 0.25 SPC record (externally tagged, as every record)."""

    Spc: UidSpcRecord


class UidPsiItem(Struct, gc=False):
    Psi: UidPsiRecord


class UidCustomItem(Struct, gc=False):
    Custom: UidCustomRecord


#: The 0.25 members of the ServerRecords ``records`` union (the 0.6.4 members are documented beside them).
UID_RECORD_ITEMS: Final = (UidSpcItem, UidPsiItem, UidCustomItem)


class UidRecordItem(Struct, forbid_unknown_fields=True, gc=False):
    """Any 0.25 ServerRecords element, for the decoder's one-pass path over a message of 0.25 records only: exactly
    one key is present (the decoder checks); an unknown key fails and sends the message to the per-record path."""

    Spc: UidSpcRecord | None = None
    Psi: UidPsiRecord | None = None
    Custom: UidCustomRecord | None = None


class ServerRecordsV025(Struct):
    """A ServerRecords message of 0.25 records only (the document lists the element shapes one by one)."""

    records: list[UidRecordItem]


# --- binned drift queries (§9) --------------------------------------------------------------------------------------

TimeIntervalName = Literal[
    "FiveMinutes",
    "FifteenMinutes",
    "ThirtyMinutes",
    "OneHour",
    "ThreeHours",
    "FourHours",
    "SixHours",
    "TwelveHours",
    "TwentyFourHours",
    "TwoDays",
    "FiveDays",
    "SevenDays",
    "Custom",
]


class DriftQueryParams(Struct, kw_only=True):
    """A binned drift query of either client: by `uid` (0.25; `space` is checked against the entity's) or by
    `name`/`version`/`drift_type` (0.6.4). The window is the last `time_interval`, or [start, end) when both custom
    datetimes are given (`begin_custom_datetime` is 0.6.4's name for `start_custom_datetime`); `Custom` needs them."""

    space: str
    time_interval: TimeIntervalName
    max_data_points: Annotated[Int32, Meta(description="Clamped to 1 … 10 000 buckets.")]
    uid: str | None = None
    name: str | None = None
    version: str | None = None
    drift_type: DriftTypeName | None = None
    start_custom_datetime: AwareDatetime | None = None
    begin_custom_datetime: AwareDatetime | None = None
    end_custom_datetime: AwareDatetime | None = None


# --- alerts (§10) ---------------------------------------------------------------------------------------------------


class DriftAlertPaginationRequest(Struct, kw_only=True):
    """`POST /scouter/alerts`: the entity's alerts, newest first, one page at a time (keyset cursor on
    (created_at, id)). `active`: null every alert, true the active ones, false the inactive ones."""

    uid: Uid
    active: bool | None = None
    limit: Annotated[int, Meta(ge=0, le=INT32_MAX)] | None = None
    cursor_created_at: AwareDatetime | None = None
    cursor_id: int | None = None
    direction: Literal["next", "previous"] | None = None
    start_datetime: AwareDatetime | None = None
    end_datetime: AwareDatetime | None = None


class SpcAlertBody(Struct):
    feature: str
    kind: Literal["OutOfBounds", "Consecutive", "Alternating", "AllGood", "Trend"]
    zone: Literal["Zone1", "Zone2", "Zone3", "Zone4", "NotApplicable"]


class PsiAlertBody(Struct):
    feature: str
    drift: float
    threshold: float


class CustomAlertBody(Struct):
    metric_name: str
    baseline_value: float
    observed_value: float
    delta: float | None
    alert_threshold: Literal["Below", "Above", "Outside"]


class AlertMap(Struct, omit_defaults=True):
    """The typed alert, externally tagged: exactly one of the three keys is present."""

    Spc: SpcAlertBody | None = None
    Psi: PsiAlertBody | None = None
    Custom: CustomAlertBody | None = None


class AlertItem(Struct):
    created_at: AwareDatetime
    entity_name: str
    alert: AlertMap | Literal["None"]
    id: Int32
    active: bool


class AlertCursor(Struct):
    created_at: AwareDatetime
    id: int


class DriftAlertPaginationResponse(Struct):
    items: list[AlertItem]
    has_next: bool
    next_cursor: AlertCursor | None
    has_previous: bool
    previous_cursor: AlertCursor | None


#: Every struct above, for the OpenAPI document's components (quart-schema inlines only the top-level schema).
SHAPES: Final = (
    VersionRequest,
    RegisterProfileRequest,
    RegisteredProfileResponse,
    UidSpcRecord,
    UidPsiRecord,
    UidCustomRecord,
    *UID_RECORD_ITEMS,
    DriftQueryParams,
    DriftAlertPaginationRequest,
    SpcAlertBody,
    PsiAlertBody,
    CustomAlertBody,
    AlertMap,
    AlertItem,
    AlertCursor,
    DriftAlertPaginationResponse,
)
