"""ServerRecords wire codec: bytes in, typed records (and COPY-ready rows) out, or a precise `DecodeError`.

The message is the same on every transport (HTTP body, Kafka payload, RabbitMQ body, Redis message)::

    {"records": [{"Spc": {...}} | {"Psi": {...}} | {"Custom": {...}} | {"Observability": {...}}, ...]}

A record names its entity by ``space``/``name``/``version`` (scouter-ml 0.6.4) or by ``uid`` alone (0.25,
server-v025.md §8): both flavours are accepted in one message. A record naming ``space``, ``name`` and ``version``
is read as 0.6.4 (even with a ``uid`` beside them); one with a ``uid`` and not all three as 0.25, kept in
`DecodedBatch.uid_rows` until `scouter.entities.resolve_uids` files it under its entity. Trace batches, tag records
and GenAI records (0.25 features this server does not serve) are counted in `DecodedBatch.dropped`, not stored and
not an error.

Choices that differ from upstream v0.6.4, on purpose:

* **Mixed kinds are accepted** and split by kind (`DecodedBatch.spc`, `.psi`, ...). Upstream rejected a message
  whose records were not all of the first record's kind; the client never sends one, and splitting loses nothing.
* **Unknown extra fields** inside a record, or next to ``records``, are ignored (forward compatibility, as serde
  does without ``deny_unknown_fields``). Unknown record *kinds* are an error.
* An **empty** ``records`` list decodes to an empty batch; the caller decides what that means.
* ``space``, ``name`` and ``version`` take any string upstream stores (``org/model``, ``..``, unicode, control
  characters): only the empty string (no entity) and NUL are rejected (`check_entity_name`). The archive encodes
  them into safe path segments (`scouter.archive.encode_segment`).
* Strings holding NUL are rejected: PostgreSQL ``text`` cannot store them, and the COPY would fail the whole batch.
* ``created_at`` must lie within `CreatedAtBounds`: not before 1970 and not more than ``SCOUTER_MAX_FUTURE_SECONDS``
  (default one day) ahead of the server's clock. Upstream stored anything; a record dated 9999 made daily partitions
  overflow and one message could create hundreds of partitions.

Every record shape is declared once, as a msgspec struct in `scouter.wire` (0.6.4: `scouter.wire.v064_records`,
0.25: `scouter.wire.v025`), and decoded by it. A message of one client's records is decoded in one pass by msgspec
(straight from the bytes, or converted from an already parsed document); anything else (mixed flavours, dropped
kinds, errors) takes the per-record path, which converts each record by its declaration and words msgspec's errors
the way the API always has (`scouter.wire.common.worded`). What a type cannot say (``created_at`` within bounds,
finite floats of parsed documents) is checked here.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, Final, TypeAlias

import attrs
import msgspec
import orjson

from scouter.wire.common import INT32_MAX, NAME_CHARS_ALWAYS_FIT, name_problem, show, text_fault, worded
from scouter.wire.timestamps import (
    DEFAULT_MAX_FUTURE,
    EARLIEST_CREATED_AT,
    CreatedAtBounds,
    parse_created_at,
    parse_created_at_fast,
    parse_rfc3339,
)
from scouter.wire.v025 import ServerRecordsV025, UidCustomRecord, UidPsiRecord, UidRecordItem, UidSpcRecord
from scouter.wire.v064_records import (
    CustomServerRecord,
    ObservabilityServerRecord,
    PsiServerRecord,
    RecordItem,
    ServerRecords,
    SpcServerRecord,
)

__all__ = [
    "CUSTOM_COLUMNS",
    "DEFAULT_MAX_FUTURE",
    "EARLIEST_CREATED_AT",
    "INT32_MAX",
    "OBSERVABILITY_COLUMNS",
    "PSI_COLUMNS",
    "SPC_COLUMNS",
    "CreatedAtBounds",
    "CustomRecord",
    "CustomRow",
    "DecodeError",
    "DecodedBatch",
    "ObservabilityRecord",
    "ObservabilityRow",
    "PsiRecord",
    "PsiRow",
    "Record",
    "SpcRecord",
    "SpcRow",
    "UidRow",
    "check_entity_name",
    "decode_records_data",
    "decode_server_records",
    "parse_rfc3339",
]


# Column order of the rows handed to COPY; the table columns of server.md §4.1.
SPC_COLUMNS: Final = ("created_at", "name", "space", "version", "feature", "value")
PSI_COLUMNS: Final = ("created_at", "name", "space", "version", "feature", "bin_id", "bin_count")
CUSTOM_COLUMNS: Final = ("created_at", "name", "space", "version", "metric", "value")
OBSERVABILITY_COLUMNS: Final = ("space", "name", "version", "request_count", "error_count", "route_metrics")


#: Each kind's one declaration: 0.6.4 records name their entity by space/name/version, 0.25 ones by uid only
#: (server-v025.md §8.1).
_SHAPES: Final[dict[str, type[Any]]] = {
    "Spc": SpcServerRecord,
    "Psi": PsiServerRecord,
    "Custom": CustomServerRecord,
    "Observability": ObservabilityServerRecord,
}
_UID_SHAPES: Final[dict[str, type[Any]]] = {"Spc": UidSpcRecord, "Psi": UidPsiRecord, "Custom": UidCustomRecord}
_DECODER: Final = msgspec.json.Decoder(ServerRecords)
_DECODER_V025: Final = msgspec.json.Decoder(ServerRecordsV025)
#: Record kinds of 0.25 features this server does not serve (§14): dropped with a count, never fatal to the batch.
_OUT_OF_SCOPE_PREFIX: Final = "GenAI"


SpcRow: TypeAlias = tuple[datetime, str, str, str, str, float]
PsiRow: TypeAlias = tuple[datetime, str, str, str, str, int, int]
CustomRow: TypeAlias = tuple[datetime, str, str, str, str, float]
ObservabilityRow: TypeAlias = tuple[str, str, str, int, int, str]
#: A 0.25 record before its uid is resolved: (kind, uid, created_at, feature or metric, value or bin_id, bin_count).
#: `scouter.entities.resolve_uids` turns these into the rows above once the uid's entity is known.
UidRow: TypeAlias = tuple[str, str, datetime, str, float | int, int | None]


class DecodeError(ValueError):
    """A ServerRecords message that cannot be decoded; the message names the path and the problem."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@attrs.frozen
class SpcRecord:
    """One SPC sample mean of one feature."""

    created_at: datetime
    space: str
    name: str
    version: str
    feature: str
    value: float


@attrs.frozen
class PsiRecord:
    """The count of one PSI bin of one feature."""

    created_at: datetime
    space: str
    name: str
    version: str
    feature: str
    bin_id: int
    bin_count: int


@attrs.frozen
class CustomRecord:
    """One batch mean of one custom metric."""

    created_at: datetime
    space: str
    name: str
    version: str
    metric: str
    value: float


@attrs.frozen
class ObservabilityRecord:
    """Request metrics of one service; no timestamp on the wire (the database stamps now())."""

    space: str
    name: str
    version: str
    request_count: int
    error_count: int
    # Validated route metric objects (known fields only), the JSON data that goes into the jsonb column.
    route_metrics: tuple[dict[str, Any], ...]


Record: TypeAlias = SpcRecord | PsiRecord | CustomRecord | ObservabilityRecord


class DecodedBatch(msgspec.Struct, frozen=True, gc=False):
    """A decoded message split by record kind.

    Rows (tuples in the ``*_COLUMNS`` order) are the stored form because they are what COPY consumes and tuples are
    several times cheaper to build than frozen attrs instances; the typed records are built from them on access.
    ``first_space`` is the space of the message's first record (for the write-permission check, server.md §2.9).

    A msgspec struct, not an attrs class: one is built per broker message, and a frozen attrs instance took a fifth of
    the decoding of a small message to build. Untracked by the garbage collector: it holds tuples, never a cycle.
    """

    spc_rows: tuple[SpcRow, ...] = ()
    psi_rows: tuple[PsiRow, ...] = ()
    custom_rows: tuple[CustomRow, ...] = ()
    observability_rows: tuple[ObservabilityRow, ...] = ()  # route_metrics as JSON text, asyncpg's jsonb input
    first_space: str | None = None
    #: 0.25 records (named by uid) still to be resolved to their entity; never handed to the writer.
    uid_rows: tuple[UidRow, ...] = ()
    #: Out-of-scope payloads received and dropped: (kind, count) pairs, e.g. ("trace", 1), ("GenAIEval", 3).
    dropped: tuple[tuple[str, int], ...] = ()

    @classmethod
    def from_records(cls, records: Iterable[Record]) -> DecodedBatch:
        """A batch holding `records` in order (for producers other than the decoder, and tests)."""
        spc: list[SpcRow] = []
        psi: list[PsiRow] = []
        custom: list[CustomRow] = []
        observability: list[ObservabilityRow] = []
        first_space: str | None = None
        for record in records:
            match record:
                case SpcRecord(created_at, space, name, version, feature, value):
                    spc.append((created_at, name, space, version, feature, value))
                case PsiRecord(created_at, space, name, version, feature, bin_id, bin_count):
                    psi.append((created_at, name, space, version, feature, bin_id, bin_count))
                case CustomRecord(created_at, space, name, version, metric, value):
                    custom.append((created_at, name, space, version, metric, value))
                case ObservabilityRecord(space, name, version, request_count, error_count, routes):
                    routes_json = orjson.dumps(routes).decode()
                    observability.append((space, name, version, request_count, error_count, routes_json))
                case _:
                    raise TypeError(f"not a record: {record!r}")
            if first_space is None:
                first_space = record.space
        return cls(tuple(spc), tuple(psi), tuple(custom), tuple(observability), first_space)

    @property
    def total(self) -> int:
        """Number of records of every kind, resolved (unresolved 0.25 records are in `uid_rows`)."""
        return len(self.spc_rows) + len(self.psi_rows) + len(self.custom_rows) + len(self.observability_rows)

    @property
    def spc(self) -> tuple[SpcRecord, ...]:
        """The SPC records (built on each access)."""
        return tuple(SpcRecord(c, s, n, v, f, x) for c, n, s, v, f, x in self.spc_rows)

    @property
    def psi(self) -> tuple[PsiRecord, ...]:
        """The PSI records (built on each access)."""
        return tuple(PsiRecord(c, s, n, v, f, i, k) for c, n, s, v, f, i, k in self.psi_rows)

    @property
    def custom(self) -> tuple[CustomRecord, ...]:
        """The custom-metric records (built on each access)."""
        return tuple(CustomRecord(c, s, n, v, m, x) for c, n, s, v, m, x in self.custom_rows)

    @property
    def observability(self) -> tuple[ObservabilityRecord, ...]:
        """The observability records (built on each access)."""
        return tuple(
            ObservabilityRecord(s, n, v, requests, errors, tuple(orjson.loads(routes)))
            for s, n, v, requests, errors, routes in self.observability_rows
        )


# --- public helpers ---------------------------------------------------------------------------------------------


def check_entity_name(field: str, value: object) -> None:
    """Raise `DecodeError` naming `field` unless `value` can be a space, name or version.

    Rejected: non-strings, the empty string, NUL (PostgreSQL ``text`` cannot hold it; upstream fails on it too) and
    more than `MAX_NAME_BYTES` of UTF-8 (no index row could hold it: upstream answers 500). Everything else is
    accepted as upstream does: ``/``, ``\\``, ``.`` and ``..``, control characters, unicode.
    """
    if type(value) is not str:
        raise DecodeError(f"{field}: expected a string, got {show(value)}")
    problem = "must not be empty" if not value else name_problem(value)
    if problem is not None:
        raise DecodeError(f"{field}: {problem}, got {show(value)}")


# --- decoding ---------------------------------------------------------------------------------------------------


def decode_server_records(
    body: bytes | bytearray | memoryview | str, bounds: CreatedAtBounds | None = None
) -> DecodedBatch:
    """Decode a ServerRecords JSON message; raise `DecodeError` naming the first problem and its path.

    ``bounds`` limits ``created_at``; None means `CreatedAtBounds.around` the current time with the default horizon.
    """
    if bounds is None:
        bounds = CreatedAtBounds.around(datetime.now(UTC))
    try:
        batch = _one_pass(_DECODER.decode(body).records, bounds)
    except msgspec.MsgspecError:
        try:
            batch = _one_pass_v025(_DECODER_V025.decode(body).records, bounds)
        except msgspec.MsgspecError:
            batch = None
    if batch is not None:
        return batch
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise DecodeError(f"body is not valid JSON: {exc}") from None
    return _per_record(data, bounds)


def decode_records_data(data: object, bounds: CreatedAtBounds | None = None) -> DecodedBatch:
    """Decode an already parsed ServerRecords document (as `decode_server_records`, without the JSON step)."""
    if bounds is None:
        bounds = CreatedAtBounds.around(datetime.now(UTC))
    try:
        batch = _one_pass(msgspec.convert(data, ServerRecords).records, bounds)
    except msgspec.ValidationError:
        try:
            batch = _one_pass_v025(msgspec.convert(data, ServerRecordsV025).records, bounds)
        except msgspec.ValidationError:
            batch = None
    return batch if batch is not None else _per_record(data, bounds)


def _one_pass(items: Sequence[RecordItem], bounds: CreatedAtBounds) -> DecodedBatch | None:
    """The batch of a message msgspec decoded whole as 0.6.4 records; None when an element holds no kind or several
    (the per-record path words that)."""
    spc: list[SpcRow] = []
    psi: list[PsiRow] = []
    custom: list[CustomRow] = []
    observability: list[ObservabilityRow] = []
    earliest, latest = bounds.earliest, bounds.latest
    for index, item in enumerate(items):
        record: Any = item.Spc
        kinds = (record is not None) + (item.Psi is not None) + (item.Custom is not None)
        if kinds + (item.Observability is not None) != 1:
            return None
        if record is not None:
            space, name, version, feature = record.space, record.name, record.version, record.feature
            value = record.value
            if _suspect(space + name + version + feature):
                _check_texts(index, "Spc", record)
            if value - value != 0.0:  # NaN or ±inf: only a parsed document can hold them
                raise _not_finite(index, "Spc", value)
            created = parse_created_at_fast(record.created_at)
            if created is None or not earliest <= created <= latest:
                created = _created_at(index, "Spc", record.created_at, bounds)
            spc.append((created, name, space, version, feature, value))
        elif (record := item.Psi) is not None:
            space, name, version, feature = record.space, record.name, record.version, record.feature
            if _suspect(space + name + version + feature):
                _check_texts(index, "Psi", record)
            created = parse_created_at_fast(record.created_at)
            if created is None or not earliest <= created <= latest:
                created = _created_at(index, "Psi", record.created_at, bounds)
            psi.append((created, name, space, version, feature, record.bin_id, record.bin_count))
        elif (record := item.Custom) is not None:
            space, name, version, metric = record.space, record.name, record.version, record.metric
            value = record.value
            if _suspect(space + name + version + metric):
                _check_texts(index, "Custom", record)
            if value - value != 0.0:
                raise _not_finite(index, "Custom", value)
            created = parse_created_at_fast(record.created_at)
            if created is None or not earliest <= created <= latest:
                created = _created_at(index, "Custom", record.created_at, bounds)
            custom.append((created, name, space, version, metric, value))
        else:
            observability.append(_observability_row(index, item.Observability))
    first = items[0] if items else None
    first_space = None if first is None else (first.Spc or first.Psi or first.Custom or first.Observability).space
    return DecodedBatch(tuple(spc), tuple(psi), tuple(custom), tuple(observability), first_space)


def _one_pass_v025(items: Sequence[UidRecordItem], bounds: CreatedAtBounds) -> DecodedBatch | None:
    """The batch of a message msgspec decoded whole as 0.25 records (named by uid); None as `_one_pass`."""
    rows: list[UidRow] = []
    for index, item in enumerate(items):
        if (item.Spc is not None) + (item.Psi is not None) + (item.Custom is not None) != 1:
            return None
        rows.append(_uid_row(index, item.Spc or item.Psi or item.Custom, bounds))
    return DecodedBatch(uid_rows=tuple(rows))


def _per_record(data: object, bounds: CreatedAtBounds) -> DecodedBatch:
    """Any document, record by record: mixed flavours and kinds, dropped kinds, and the precise first error."""
    if type(data) is not dict:
        raise DecodeError(f'body: expected an object with a "records" list, got {show(data)}')
    if "records" not in data:
        # The other members of 0.25's MessageRecord union, out of scope here (§14): recognised by their keys.
        if "request" in data:
            return DecodedBatch(dropped=(("trace", 1),))
        if "entity_type" in data and "key" in data:
            return DecodedBatch(dropped=(("tag", 1),))
        raise DecodeError("records: missing field")
    items = data["records"]
    if type(items) is not list:
        raise DecodeError(f"records: expected a list, got {show(items)}")
    rows: dict[str, list[Any]] = {"Spc": [], "Psi": [], "Custom": [], "Observability": [], "uid": []}
    dropped: dict[str, int] = {}
    for index, item in enumerate(items):
        if type(item) is not dict or len(item) != 1:
            raise DecodeError(_item_problem(index, item))
        ((kind, body),) = item.items()
        if kind not in _SHAPES:
            if type(kind) is str and kind.startswith(_OUT_OF_SCOPE_PREFIX):
                dropped[kind] = dropped.get(kind, 0) + 1
                continue
            raise DecodeError(f"records[{index}]: unknown record kind {show(kind)}")
        by_uid = type(body) is dict and "uid" in body and kind in _UID_SHAPES and not _names_entity(body)
        record = _convert(index, kind, body, _UID_SHAPES[kind] if by_uid else _SHAPES[kind])
        if by_uid:
            rows["uid"].append(_uid_row(index, record, bounds))
        else:
            batch = _one_pass([RecordItem(**{kind: record})], bounds)
            assert batch is not None  # one record of one kind
            row = (batch.spc_rows or batch.psi_rows or batch.custom_rows or batch.observability_rows)[0]
            rows[kind].append(row)
    first_body = next(iter(items[0].values())) if items else None  # a dropped kind's body may be anything
    first = first_body.get("space") if type(first_body) is dict else None
    return DecodedBatch(
        spc_rows=tuple(rows["Spc"]),
        psi_rows=tuple(rows["Psi"]),
        custom_rows=tuple(rows["Custom"]),
        observability_rows=tuple(rows["Observability"]),
        first_space=first if type(first) is str else None,
        uid_rows=tuple(rows["uid"]),
        dropped=tuple(dropped.items()),
    )


def _names_entity(body: dict[str, Any]) -> bool:
    """A record naming space, name and version is read as 0.6.4 even when it also carries a uid."""
    return "space" in body and "name" in body and "version" in body


def _convert(index: int, kind: str, body: object, shape: type[Any]) -> Any:
    try:
        return msgspec.convert(body, shape)
    except msgspec.ValidationError as exc:
        path, problem = worded(exc, body, shape)
        raise DecodeError(f"records[{index}].{kind}{'.' if path else ''}{path}: {problem}") from None


def _uid_row(index: int, record: UidSpcRecord | UidPsiRecord | UidCustomRecord, bounds: CreatedAtBounds) -> UidRow:
    """One 0.25 record's row before its uid is resolved; the checks its declaration documents but leaves to us."""
    if type(record) is UidSpcRecord:
        kind, label, value, count = "Spc", record.feature, record.value, None
    elif type(record) is UidPsiRecord:
        kind, label, value, count = "Psi", record.feature, record.bin_id, record.bin_count
    else:
        kind, label, value, count = "Custom", record.metric, record.value, None
    if "\x00" in label or "\x00" in record.uid or max(len(label), len(record.uid)) > NAME_CHARS_ALWAYS_FIT:
        _check_texts(index, kind, record)
    if value - value != 0:  # NaN or ±inf: only a parsed document can hold them
        raise _not_finite(index, kind, value)
    return (kind, record.uid, _created_at(index, kind, record.created_at, bounds), label, value, count)


def _observability_row(index: int, record: ObservabilityServerRecord) -> ObservabilityRow:
    if _suspect(record.space + record.name + record.version):
        _check_texts(index, "Observability", record)
    for position, route in enumerate(record.route_metrics):
        if "\x00" in route.route_name:
            path = f"records[{index}].Observability.route_metrics[{position}].route_name"
            raise DecodeError(f"{path}: expected a string without NUL, got {show(route.route_name)}")
        metrics = route.metrics
        for key, number in (
            ("metrics.p5", metrics.p5),
            ("metrics.p25", metrics.p25),
            ("metrics.p50", metrics.p50),
            ("metrics.p95", metrics.p95),
            ("metrics.p99", metrics.p99),
            ("error_latency", route.error_latency),
        ):
            if number - number != 0:
                path = f"records[{index}].Observability.route_metrics[{position}].{key}"
                raise DecodeError(f"{path}: must be a finite number, got {number!r}")
    routes_json = msgspec.json.encode(record.route_metrics).decode()
    return (record.space, record.name, record.version, record.request_count, record.error_count, routes_json)


def _suspect(names: str) -> bool:
    """Whether a record's names, joined, may hold NUL or one too long: the cheap test every record takes (a joined
    length over `NAME_CHARS_ALWAYS_FIT` only sends the record to `_check_texts`, which words any real fault)."""
    return "\x00" in names or len(names) > NAME_CHARS_ALWAYS_FIT


def _check_texts(index: int, kind: str, record: msgspec.Struct) -> None:
    """Raise `DecodeError` naming the record's first name that cannot be stored and filed (NUL, too long)."""
    fault = text_fault(record)
    if fault is not None:
        field, problem = fault
        raise DecodeError(f"records[{index}].{kind}.{field}: {problem}, got {show(getattr(record, field))}")


def _not_finite(index: int, kind: str, value: float) -> DecodeError:
    return DecodeError(f"records[{index}].{kind}.value: must be a finite number, got {value!r}")


def _created_at(index: int, kind: str, value: str, bounds: CreatedAtBounds) -> datetime:
    """The record's created_at, parsed and within bounds, or a `DecodeError` naming the record."""
    try:
        created = parse_created_at(value)
    except ValueError as exc:
        raise DecodeError(f"records[{index}].{kind}.created_at: {exc}, got {show(value)}") from None
    if not bounds.earliest <= created <= bounds.latest:
        raise DecodeError(f"records[{index}].{kind}.created_at: {bounds.problem(created)}, got {show(value)}")
    return created


def _item_problem(index: int, item: object) -> str:
    if type(item) is not dict:
        return f'records[{index}]: expected an object like {{"Spc": {{...}}}}, got {show(item)}'
    if not item:
        return f"records[{index}]: expected exactly one record kind, got an empty object"
    kinds = ", ".join(show(key) for key in item)
    return f"records[{index}]: expected exactly one record kind, got {len(item)} ({kinds})"
