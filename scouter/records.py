"""ServerRecords wire codec: bytes in, typed records (and COPY-ready rows) out, or a precise `DecodeError`.

The message is the same on every transport (HTTP body, Kafka payload, RabbitMQ body, Redis message)::

    {"records": [{"Spc": {...}} | {"Psi": {...}} | {"Custom": {...}} | {"Observability": {...}}, ...]}

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

The hot path is plain Python over the dicts orjson returns: exact ``type(x) is ...`` checks (so booleans are not
numbers), per-message caches for the few distinct entity and feature names, and no regex.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Final, TypeAlias

import attrs
import orjson

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
    "check_entity_name",
    "decode_records_data",
    "decode_server_records",
    "parse_rfc3339",
]

INT32_MAX: Final = 2**31 - 1  # bin_id, bin_count, request_count, error_count are postgres `integer`
_INT64_MAX: Final = 2**63 - 1  # counts inside route_metrics (jsonb; i64 upstream)

# Column order of the rows handed to COPY; the table columns of server.md §4.1.
SPC_COLUMNS: Final = ("created_at", "name", "space", "version", "feature", "value")
PSI_COLUMNS: Final = ("created_at", "name", "space", "version", "feature", "bin_id", "bin_count")
CUSTOM_COLUMNS: Final = ("created_at", "name", "space", "version", "metric", "value")
OBSERVABILITY_COLUMNS: Final = ("space", "name", "version", "request_count", "error_count", "route_metrics")

_SEPARATORS: Final = operator.itemgetter(4, 7, 10, 13, 16, 19, 29)
_NANOS_Z: Final = ("-", "-", "T", ":", ":", ".", "Z")
_fromisoformat: Final = datetime.fromisoformat

_KINDS: Final = frozenset(("Spc", "Psi", "Custom", "Observability"))

#: No record is older than the Unix epoch: earlier values are clock or client bugs (0001-01-01 is stored as
#: -infinity by asyncpg), and the archive's nanosecond timestamps end in 1677 anyway.
EARLIEST_CREATED_AT: Final = datetime(1970, 1, 1, tzinfo=UTC)
#: How far ahead of the server's clock a record may be dated unless configured (SCOUTER_MAX_FUTURE_SECONDS).
DEFAULT_MAX_FUTURE: Final = timedelta(days=1)

SpcRow: TypeAlias = tuple[datetime, str, str, str, str, float]
PsiRow: TypeAlias = tuple[datetime, str, str, str, str, int, int]
CustomRow: TypeAlias = tuple[datetime, str, str, str, str, float]
ObservabilityRow: TypeAlias = tuple[str, str, str, int, int, str]


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


@attrs.frozen
class CreatedAtBounds:
    """The ``created_at`` values a decoded record may carry: ``earliest <= created_at <= latest``."""

    earliest: datetime
    latest: datetime
    max_future: timedelta  # what ``latest`` is ahead of the clock, for the error message

    @classmethod
    def around(cls, now: datetime, max_future: timedelta = DEFAULT_MAX_FUTURE) -> CreatedAtBounds:
        """From the epoch to ``max_future`` after ``now`` (the server's clock when the message is decoded)."""
        return cls(EARLIEST_CREATED_AT, now + max_future, max_future)

    def problem(self, value: datetime) -> str | None:
        """Why ``value`` is out of bounds, naming the bound; None when it is within."""
        if value < self.earliest:
            return f"must not be before {_iso(self.earliest)}"
        if value > self.latest:
            ahead = _duration(self.max_future)
            return f"must not be more than {ahead} in the future (after {_iso(self.latest)})"
        return None


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _duration(span: timedelta) -> str:
    seconds = span.total_seconds()
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = int(seconds // size)
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds:g} seconds"


@attrs.frozen
class DecodedBatch:
    """A decoded message split by record kind.

    Rows (tuples in the ``*_COLUMNS`` order) are the stored form because they are what COPY consumes and tuples are
    several times cheaper to build than frozen attrs instances; the typed records are built from them on access.
    ``first_space`` is the space of the message's first record (for the write-permission check, server.md §2.9).
    """

    spc_rows: tuple[SpcRow, ...] = ()
    psi_rows: tuple[PsiRow, ...] = ()
    custom_rows: tuple[CustomRow, ...] = ()
    observability_rows: tuple[ObservabilityRow, ...] = ()  # route_metrics as JSON text, asyncpg's jsonb input
    first_space: str | None = None

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
        """Number of records of every kind."""
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

    Rejected: non-strings, the empty string, and NUL (PostgreSQL ``text`` cannot hold it; upstream fails on it too).
    Everything else is accepted as upstream does: ``/``, ``\\``, ``.`` and ``..``, control characters, unicode.
    """
    if type(value) is not str:
        raise DecodeError(f"{field}: expected a string, got {_show(value)}")
    problem = _name_problem(value)
    if problem is not None:
        raise DecodeError(f"{field}: {problem}, got {_show(value)}")


def parse_rfc3339(value: str) -> datetime:
    """Parse an RFC 3339 timestamp (``Z`` or ``±HH:MM``, 0-9 fractional digits) to an aware UTC datetime.

    The fraction is truncated to microseconds (timestamptz precision). Raises ``ValueError`` with a short reason;
    a timestamp without an offset (naive) is an error.
    """
    # datetime.fromisoformat alone is too lenient for RFC 3339 (it takes '20261122T170550Z', '17:05Z', naive
    # times, ',5' fractions), so the separators are pinned here and fromisoformat does the digits and ranges.
    if not value.isascii():
        raise ValueError("not an RFC 3339 timestamp")
    n = len(value)
    if n < 19 or value[4] != "-" or value[7] != "-" or value[10] != "T" or value[13] != ":" or value[16] != ":":
        raise ValueError("not an RFC 3339 timestamp (expected YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM))")
    last = value[-1]
    if last == "Z":
        zone_at = n - 1
    elif n >= 25 and value[-6] in "+-" and value[-3] == ":":
        zone_at = n - 6
        if not (value[-5:-3].isdigit() and value[-2:].isdigit() and value[-2] < "6"):
            raise ValueError("invalid UTC offset")
    elif n == 19 or value[19] == ".":
        raise ValueError("timestamp has no timezone (naive); expected Z or an offset")
    else:
        raise ValueError("not an RFC 3339 timestamp")
    text = value
    if zone_at != 19:
        fraction = value[20:zone_at]
        if value[19] != "." or not 1 <= len(fraction) <= 9 or not fraction.isdigit():
            raise ValueError("invalid fractional seconds (expected 1 to 9 digits)")
        if len(fraction) > 6:
            # Truncate to microseconds ourselves: do not rely on a Python version's rounding choice.
            text = value[:26] + value[zone_at:]
    try:
        parsed = datetime.fromisoformat(text)
        return parsed if parsed.tzinfo is UTC else parsed.astimezone(UTC)
    except (ValueError, OverflowError) as exc:
        raise ValueError(f"invalid timestamp ({exc})") from None


# --- decoding ---------------------------------------------------------------------------------------------------


def decode_server_records(
    body: bytes | bytearray | memoryview | str, bounds: CreatedAtBounds | None = None
) -> DecodedBatch:
    """Decode a ServerRecords JSON message; raise `DecodeError` naming the first problem and its path.

    ``bounds`` limits ``created_at``; None means `CreatedAtBounds.around` the current time with the default horizon.
    """
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise DecodeError(f"body is not valid JSON: {exc}") from None
    return decode_records_data(data, bounds)


def decode_records_data(data: object, bounds: CreatedAtBounds | None = None) -> DecodedBatch:
    """Decode an already parsed ServerRecords document (as `decode_server_records`, without the JSON step)."""
    if bounds is None:
        bounds = CreatedAtBounds.around(datetime.now(UTC))
    earliest, latest = bounds.earliest, bounds.latest
    if type(data) is not dict:
        raise DecodeError(f'body: expected an object with a "records" list, got {_show(data)}')
    if "records" not in data:
        raise DecodeError("records: missing field")
    items = data["records"]
    if type(items) is not list:
        raise DecodeError(f"records: expected a list, got {_show(items)}")
    spc: list[SpcRow] = []
    psi: list[PsiRow] = []
    custom: list[CustomRow] = []
    observability: list[ObservabilityRow] = []
    names: set[str] = set()  # space/name/version values already checked in this message
    texts: set[str] = set()  # feature/metric values already checked in this message
    kind = ""
    index = 0
    try:
        for index, item in enumerate(items):
            if type(item) is not dict or len(item) != 1:
                raise DecodeError(_item_problem(index, item))
            ((kind, body),) = item.items()
            if kind not in _KINDS:
                raise DecodeError(f"records[{index}]: unknown record kind {_show(kind)}")
            if type(body) is not dict:
                raise _Invalid("", f"expected an object, got {_show(body)}")
            if kind == "Spc":
                space, name, version = body["space"], body["name"], body["version"]
                if space not in names or name not in names or version not in names:
                    _check_names(body, names)
                feature = body["feature"]
                if feature not in texts:
                    _check_text("feature", feature, texts)
                value = body["value"]
                if type(value) is not float:
                    value = _to_float("value", value)
                elif value - value != 0.0:  # NaN or ±inf (orjson never yields them; decode_records_data could)
                    raise _Invalid("value", f"must be a finite number, got {value!r}")
                created = _created_at(body["created_at"])
                if not earliest <= created <= latest:
                    raise _out_of_bounds(body["created_at"], created, bounds)
                spc.append((created, name, space, version, feature, value))
            elif kind == "Psi":
                space, name, version = body["space"], body["name"], body["version"]
                if space not in names or name not in names or version not in names:
                    _check_names(body, names)
                feature = body["feature"]
                if feature not in texts:
                    _check_text("feature", feature, texts)
                bin_id = body["bin_id"]
                if type(bin_id) is not int or not 0 <= bin_id <= INT32_MAX:
                    raise _Invalid("bin_id", _int_problem(bin_id, INT32_MAX))
                bin_count = body["bin_count"]
                if type(bin_count) is not int or not 0 <= bin_count <= INT32_MAX:
                    raise _Invalid("bin_count", _int_problem(bin_count, INT32_MAX))
                created = _created_at(body["created_at"])
                if not earliest <= created <= latest:
                    raise _out_of_bounds(body["created_at"], created, bounds)
                psi.append((created, name, space, version, feature, bin_id, bin_count))
            elif kind == "Custom":
                space, name, version = body["space"], body["name"], body["version"]
                if space not in names or name not in names or version not in names:
                    _check_names(body, names)
                metric = body["metric"]
                if metric not in texts:
                    _check_text("metric", metric, texts)
                value = body["value"]
                if type(value) is not float:
                    value = _to_float("value", value)
                elif value - value != 0.0:
                    raise _Invalid("value", f"must be a finite number, got {value!r}")
                created = _created_at(body["created_at"])
                if not earliest <= created <= latest:
                    raise _out_of_bounds(body["created_at"], created, bounds)
                custom.append((created, name, space, version, metric, value))
            else:  # "Observability": rare and small, so the readable path
                observability.append(_observability(body, names))
    except _Invalid as exc:
        suffix = f".{exc.field}" if exc.field else ""
        raise DecodeError(f"records[{index}].{kind}{suffix}: {exc.message}") from None
    except KeyError as exc:  # only the record-body lookups above can raise it
        raise DecodeError(f"records[{index}].{kind}.{exc.args[0]}: missing field") from None
    except TypeError:  # an unhashable value (list/object) met a cache lookup: find and name the field
        raise DecodeError(_unhashable_problem(index, kind, items[index][kind])) from None
    return DecodedBatch(
        spc_rows=tuple(spc),
        psi_rows=tuple(psi),
        custom_rows=tuple(custom),
        observability_rows=tuple(observability),
        first_space=next(iter(items[0].values()))["space"] if items else None,
    )


class _Invalid(Exception):
    """A bad field inside the current record; the decode loop prefixes the record path."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(field, message)
        self.field = field
        self.message = message


def _created_at(value: object) -> datetime:
    # Fast path for the client's own form, 'YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ': pinning these separators leaves
    # fromisoformat only RFC 3339 to accept; it checks the remaining digits and ranges.
    if (
        type(value) is str
        and len(value) == 30
        and _SEPARATORS(value) == _NANOS_Z
        and value.isascii()
        and value[26:29].isdigit()
    ):
        try:
            return _fromisoformat(value[:26] + "Z")  # 'Z' yields tzinfo=UTC; the slice truncates to microseconds
        except ValueError:
            pass  # the general parser below words the error
    if type(value) is not str:
        raise _Invalid("created_at", f"expected an RFC 3339 timestamp string, got {_show(value)}")
    try:
        return parse_rfc3339(value)
    except ValueError as exc:
        raise _Invalid("created_at", f"{exc}, got {_show(value)}") from None


def _out_of_bounds(raw: object, value: datetime, bounds: CreatedAtBounds) -> _Invalid:
    return _Invalid("created_at", f"{bounds.problem(value)}, got {_show(raw)}")


def _to_float(field: str, value: object) -> float:
    """The slow path of a float field: ints are accepted, booleans and everything else are not."""
    if type(value) is int:
        try:
            return float(value)
        except OverflowError:  # not from orjson (64-bit ints at most), but decode_records_data takes any int
            raise _Invalid(field, f"is too large for a float, got an integer of {value.bit_length()} bits") from None
    if type(value) is float:
        raise _Invalid(field, f"must be a finite number, got {value!r}")
    raise _Invalid(field, f"expected a number, got {_show(value)}")


def _int_problem(value: object, maximum: int) -> str:
    if type(value) is int and value > maximum:
        return f"must be at most {maximum}, got {value}"
    return f"must be a non-negative integer, got {_show(value)}"


def _check_names(body: Mapping[str, Any], names: set[str]) -> None:
    for field in ("space", "name", "version"):
        value = body[field]
        if type(value) is not str:
            raise _Invalid(field, f"expected a string, got {_show(value)}")
        problem = _name_problem(value)
        if problem is not None:
            raise _Invalid(field, f"{problem}, got {_show(value)}")
        names.add(value)


def _check_text(field: str, value: object, texts: set[str]) -> None:
    if type(value) is not str:
        raise _Invalid(field, f"expected a string, got {_show(value)}")
    if "\x00" in value:
        raise _Invalid(field, f"must not contain NUL, got {_show(value)}")
    texts.add(value)


def _name_problem(value: str) -> str | None:
    if not value:
        return "must not be empty"
    if "\x00" in value:
        return "must not contain NUL"
    return None


def _observability(body: Mapping[str, Any], names: set[str]) -> ObservabilityRow:
    _check_names(body, names)
    counts = []
    for field in ("request_count", "error_count"):
        value = body[field]
        if type(value) is not int or not 0 <= value <= INT32_MAX:
            raise _Invalid(field, _int_problem(value, INT32_MAX))
        counts.append(value)
    routes = body["route_metrics"]
    if type(routes) is not list:
        raise _Invalid("route_metrics", f"expected a list, got {_show(routes)}")
    kept = [_route(f"route_metrics[{position}]", route) for position, route in enumerate(routes)]
    routes_json = orjson.dumps(kept).decode()
    return (body["space"], body["name"], body["version"], counts[0], counts[1], routes_json)


def _route(path: str, route: object) -> dict[str, Any]:
    """Validate one RouteMetrics object (upstream's struct) and keep only its known fields.

    The jsonb column then only ever holds well-formed data: unknown extra fields are dropped rather than stored, so
    nothing postgres cannot hold in jsonb (a NUL in some string) sneaks in through them.
    """
    route = _object(path, route)
    route_name = _member(path, route, "route_name")
    if type(route_name) is not str or "\x00" in route_name:
        raise _Invalid(f"{path}.route_name", f"expected a string without NUL, got {_show(route_name)}")
    metrics = _object(f"{path}.metrics", _member(path, route, "metrics"))
    percentiles = {
        key: _number(f"{path}.metrics.{key}", _member(f"{path}.metrics", metrics, key))
        for key in ("p5", "p25", "p50", "p95", "p99")
    }
    counts = {}
    for key in ("request_count", "error_count"):
        value = _member(path, route, key)
        if type(value) is not int or not 0 <= value <= _INT64_MAX:
            raise _Invalid(f"{path}.{key}", _int_problem(value, _INT64_MAX))
        counts[key] = value
    error_latency = _number(f"{path}.error_latency", _member(path, route, "error_latency"))
    codes = _object(f"{path}.status_codes", _member(path, route, "status_codes"))
    for code, count in codes.items():
        if type(code) is not str or not (code.isascii() and code.isdigit()):
            raise _Invalid(f"{path}.status_codes", f"keys must be status codes (digits), got {_show(code)}")
        if type(count) is not int or not 0 <= count <= _INT64_MAX:
            raise _Invalid(f"{path}.status_codes.{code}", _int_problem(count, _INT64_MAX))
    return {
        "route_name": route_name,
        "metrics": percentiles,
        **counts,
        "error_latency": error_latency,
        "status_codes": dict(codes),
    }


def _object(path: str, value: object) -> dict[str, Any]:
    if type(value) is not dict:
        raise _Invalid(path, f"expected an object, got {_show(value)}")
    return value


def _member(path: str, obj: Mapping[str, Any], key: str) -> Any:
    if key not in obj:
        raise _Invalid(f"{path}.{key}", "missing field")
    return obj[key]


def _number(path: str, value: object) -> float | int:
    if type(value) is int:
        return value  # kept as given: it is stored as JSON, not as a float column
    if type(value) is not float:
        raise _Invalid(path, f"expected a number, got {_show(value)}")
    if not math.isfinite(value):
        raise _Invalid(path, f"must be a finite number, got {value!r}")
    return value


def _item_problem(index: int, item: object) -> str:
    if type(item) is not dict:
        return f'records[{index}]: expected an object like {{"Spc": {{...}}}}, got {_show(item)}'
    if not item:
        return f"records[{index}]: expected exactly one record kind, got an empty object"
    kinds = ", ".join(_show(key) for key in item)
    return f"records[{index}]: expected exactly one record kind, got {len(item)} ({kinds})"


def _unhashable_problem(index: int, kind: str, body: Mapping[str, Any]) -> str:
    # Reached when a list or object sat where a string was expected: the cache lookups hash before type-checking.
    for field in ("space", "name", "version", "feature", "metric"):
        value = body.get(field)
        if value is not None and type(value) is not str:
            return f"records[{index}].{kind}.{field}: expected a string, got {_show(value)}"
    return f"records[{index}].{kind}: malformed record"  # pragma: no cover - every lookup above is covered


def _show(value: object, limit: int = 80) -> str:
    """A short JSON rendering of a bad value for an error message."""
    try:
        text = orjson.dumps(value).decode()
    except TypeError:
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
