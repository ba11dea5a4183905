"""The ServerRecords message of scouter-ml 0.6.4 (server.md §2.9, client.md §3), declared once as msgspec structs.

The message is the same on every transport (HTTP body, Kafka payload, RabbitMQ body)::

    {"records": [{"Spc": {...}} | {"Psi": {...}} | {"Custom": {...}} | {"Observability": {...}}, ...]}

Each record names its entity by ``space``/``name``/``version``; the 0.25 records naming it by ``uid`` are declared in
`scouter.wire.v025`. Field order is the client's. Unknown fields inside a record are ignored (serde does the same
without ``deny_unknown_fields``); `scouter.records` decodes with these structs and words their errors.
"""

from __future__ import annotations

from typing import Annotated, Final

from msgspec import Meta, Struct

from scouter.wire.common import Count, Count64, EntityName, Number, StatusCode, Text, Timestamp

__all__ = [
    "RECORD_ITEMS",
    "CustomItem",
    "CustomServerRecord",
    "LatencyMetrics",
    "ObservabilityItem",
    "ObservabilityServerRecord",
    "PsiItem",
    "PsiServerRecord",
    "RecordItem",
    "RouteMetrics",
    "ServerRecords",
    "SpcItem",
    "SpcServerRecord",
]

Name = Annotated[EntityName, Meta(extra_json_schema={"examples": ["model"]})]
Version = Annotated[EntityName, Meta(extra_json_schema={"examples": ["1.0.0"]})]


class SpcServerRecord(Struct, gc=False):
    """One SPC sample mean of one feature."""

    created_at: Timestamp
    space: EntityName
    name: Name
    version: Version
    feature: Text
    value: float


class PsiServerRecord(Struct, gc=False):
    """The count of one PSI bin of one feature."""

    created_at: Timestamp
    space: EntityName
    name: Name
    version: Version
    feature: Text
    bin_id: Count
    bin_count: Count


class CustomServerRecord(Struct, gc=False):
    """One batch mean of one custom metric."""

    created_at: Timestamp
    space: EntityName
    name: Name
    version: Version
    metric: Text
    value: float


class LatencyMetrics(Struct, gc=False):
    """Latency percentiles of a route; integers stay integers in the stored JSON."""

    p5: Number
    p25: Number
    p50: Number
    p95: Number
    p99: Number


class RouteMetrics(Struct, gc=False):
    """Request metrics of one route; only these fields are stored (the jsonb column holds nothing else)."""

    route_name: Text
    metrics: LatencyMetrics
    request_count: Count64
    error_count: Count64
    error_latency: Number
    status_codes: dict[StatusCode, Count64]


class ObservabilityServerRecord(Struct, gc=False):
    """Request metrics of one service; no timestamp on the wire (the database stamps now())."""

    space: EntityName
    name: Name
    version: Version
    request_count: Count
    error_count: Count
    route_metrics: list[RouteMetrics]


class SpcItem(Struct, gc=False):
    """A ServerRecords element holding an SPC record (externally tagged by its kind)."""

    Spc: SpcServerRecord


class PsiItem(Struct, gc=False):
    Psi: PsiServerRecord


class CustomItem(Struct, gc=False):
    Custom: CustomServerRecord


class ObservabilityItem(Struct, gc=False):
    Observability: ObservabilityServerRecord


#: The 0.6.4 members of the ServerRecords ``records`` union.
RECORD_ITEMS: Final = (SpcItem, PsiItem, CustomItem, ObservabilityItem)


class RecordItem(Struct, forbid_unknown_fields=True, gc=False):
    """Any 0.6.4 ServerRecords element, for the decoder's one-pass path: exactly one key is present (the decoder
    checks); an unknown key fails and sends the message to the per-record path, which words every error."""

    Spc: SpcServerRecord | None = None
    Psi: PsiServerRecord | None = None
    Custom: CustomServerRecord | None = None
    Observability: ObservabilityServerRecord | None = None


class ServerRecords(Struct, gc=False):
    """Drift records, each externally tagged by its kind; a 0.6.4 record names its entity by space/name/version, a
    0.25 record by `uid` (`scouter.wire.v025`). Write permission is checked on every record's space."""

    records: list[RecordItem]
