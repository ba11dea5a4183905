"""Field types every wire declaration shares, and the one place msgspec's errors are worded the house way.

Each wire shape (both client versions) is declared once as a msgspec struct in `scouter.wire`; the same struct
decodes (`msgspec.json.decode` of raw bytes, `msgspec.convert` of parsed JSON), encodes (`msgspec.json.encode`) and
documents (the HTTP layer feeds the structs to quart-schema, which asks `msgspec.json.schema_components`).

The constraints live in the field types below, so decoding enforces exactly what the OpenAPI document promises:
names are any non-empty text without NUL (PostgreSQL ``text`` cannot store NUL; ``/``, ``..`` and unicode are
fine), counts fit the postgres ``integer`` columns. What a type cannot say (``created_at`` within the decode-time
`scouter.records.CreatedAtBounds`, finite floats of parsed documents) is checked after decoding.
"""

from __future__ import annotations

import re
from datetime import datetime
from types import NoneType, UnionType
from typing import Annotated, Any, Final, Literal, NamedTuple, TypeVar, Union, get_args, get_origin

import msgspec
import orjson
from msgspec import Meta

__all__ = [
    "INT32_MAX",
    "INT64_MAX",
    "MAX_NAME_BYTES",
    "NAME_CHARS_ALWAYS_FIT",
    "NO_NUL",
    "AwareDatetime",
    "Count",
    "Count64",
    "DateTime",
    "DriftTypeName",
    "EntityName",
    "Fault",
    "FaultyBody",
    "Int32",
    "Number",
    "ShapeError",
    "StatusCode",
    "Text",
    "Timestamp",
    "Uid",
    "convert_body",
    "decode",
    "encode",
    "name_problem",
    "show",
    "text_fault",
    "worded",
]

INT32_MAX: Final = 2**31 - 1  # bin_id, bin_count, request_count, error_count are postgres `integer`
INT64_MAX: Final = 2**63 - 1  # counts inside route_metrics (jsonb; i64 upstream)

Int32 = Annotated[int, Meta(ge=-(2**31), le=INT32_MAX)]
Count = Annotated[int, Meta(ge=0, le=INT32_MAX)]
Count64 = Annotated[int, Meta(ge=0, le=INT64_MAX)]
#: A JSON number kept as given (an integer stays an integer in the stored JSON).
Number = int | float
AwareDatetime = Annotated[datetime, Meta(tz=True)]
#: An RFC 3339 date-time in the document (msgspec names the format of timezone-aware datetimes only).
DateTime = Annotated[datetime, Meta(extra_json_schema={"format": "date-time"})]
#: RFC 3339 text kept as text: `scouter.records` parses it (nanoseconds truncated, not rounded) and bounds it; answers
#: carry it as `scouter.binned.rfc3339` renders it.
Timestamp = Annotated[str, Meta(extra_json_schema={"format": "date-time"})]
#: The JSON-schema pattern of text PostgreSQL can store (anything but NUL). It is documented, not enforced by
#: msgspec: a regex run on every string would cost more than half the records' decode rate, so `scouter.records`
#: rejects NUL itself after decoding (`text_fault`).
NO_NUL: Final = r"^[^\u0000]*$"
Text = Annotated[str, Meta(extra_json_schema={"pattern": NO_NUL})]
#: A space, name or version: any text upstream stores (``org/model``, ``..``, unicode), not empty, no NUL; the
#: archive percent-encodes it into one folder name.
EntityName = Annotated[str, Meta(min_length=1, extra_json_schema={"pattern": NO_NUL, "examples": ["cap"]})]
Uid = Annotated[
    str,
    Meta(
        min_length=1,
        extra_json_schema={"pattern": NO_NUL, "examples": ["01a24ebd-608d-73a9-be09-51cfaa661a3e"]},
    ),
]
#: An HTTP status code as a JSON object key.
StatusCode = Annotated[str, Meta(pattern="^[0-9]+$")]
DriftTypeName = Literal["Spc", "Psi", "Custom"]

T = TypeVar("T")


class ShapeError(ValueError):
    """A value that does not have the declared shape; ``reason`` names the path (``$.records[0].uid``) and why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def decode(data: Any, shape: type[T], *, from_text: bool = False) -> T:
    """``data`` (parsed JSON, or query-string text values when `from_text`) as `shape`, or `ShapeError`."""
    try:
        return msgspec.convert(data, shape, strict=not from_text)
    except msgspec.ValidationError as exc:
        raise ShapeError(str(exc)) from None


def encode(value: Any) -> bytes:
    """JSON bytes of a struct (or of plain data holding structs)."""
    return msgspec.json.encode(value)


#: Longest text a record is filed under (space, name, version, feature, metric, uid), in UTF-8 bytes. The rollups'
#: keys hold four such texts in one PostgreSQL B-tree row, which takes ~2.7 KB: longer incompressible names failed
#: the COPY (a 500 for a whole group commit), so they are refused at decode time instead.
MAX_NAME_BYTES: Final = 512
#: So many characters always fit MAX_NAME_BYTES (UTF-8 takes at most 4 bytes per character): the cheap check.
NAME_CHARS_ALWAYS_FIT: Final = MAX_NAME_BYTES // 4


def name_problem(value: str) -> str | None:
    """Why `value` cannot be a name a record is filed under (NUL, too long), or None."""
    if "\x00" in value:
        return "must not contain NUL"
    if len(value) > NAME_CHARS_ALWAYS_FIT and (size := len(value.encode())) > MAX_NAME_BYTES:
        return f"must be at most {MAX_NAME_BYTES} bytes of UTF-8, got {size} bytes"
    return None


def text_fault(record: msgspec.Struct, skip: frozenset[str] = frozenset({"created_at"})) -> tuple[str, str] | None:
    """The first string field of `record` that cannot be stored and filed (`name_problem`) and why, or None."""
    for field in record.__struct_fields__:
        value = getattr(record, field)
        if type(value) is str and field not in skip and (problem := name_problem(value)) is not None:
            return field, problem
    return None


class Fault(NamedTuple):
    """The first thing wrong with a body converted to a struct, in the struct's field order."""

    field: str  # the field's wire name, with a path inside it when the fault is nested (`items[0].x`)
    missing: bool
    value: Any  # the offending value (None when missing)
    expected: str  # msgspec's account of it, e.g. "Expected `int`, got `str`"


class FaultyBody(ValueError):
    """A body that does not have its declared shape; `fault` says where first, for the caller to word."""

    def __init__(self, fault: Fault) -> None:
        super().__init__(f"{fault.field}: {'missing field' if fault.missing else fault.expected}")
        self.fault = fault


def convert_body(data: dict[str, Any], shape: type[T]) -> T:
    """``data`` (a parsed JSON object) as the struct `shape`, or `FaultyBody` naming the first fault the way a
    hand-written parser would: every missing required field first, then each field's value, in declaration order
    (msgspec alone reports in the order of the body's keys)."""
    try:
        return msgspec.convert(data, shape)
    except msgspec.ValidationError as exc:
        error = exc
    fields = msgspec.structs.fields(shape)  # type: ignore[arg-type]
    for field in fields:
        if field.required and field.encode_name not in data:
            raise FaultyBody(Fault(field.encode_name, True, None, "missing"))
    for field in fields:
        if field.encode_name not in data:
            continue
        value = data[field.encode_name]
        try:
            msgspec.convert(value, field.type)
        except msgspec.ValidationError as exc:
            head, _, where = str(exc).partition(" - at `")
            inner = where.rstrip("`").removeprefix("$")
            raise FaultyBody(Fault(field.encode_name + inner, False, value, head)) from None
    raise FaultyBody(Fault("", False, data, str(error)))  # pragma: no cover - a field above fails first


# --- msgspec's errors in the house wording --------------------------------------------------------------------------

#: Fields whose type problem is worded after what the field is rather than after its JSON type.
_EXPECTED_BY_FIELD: Final = {
    "created_at": "expected an RFC 3339 timestamp string",
    "route_name": "expected a string without NUL",
}
_PATH: Final = re.compile(r"\.([A-Za-z_][A-Za-z0-9_]*)|\[(\d+|\.\.\.)\]")
_BOUND: Final = re.compile(r"<= (\d+)")


def worded(error: msgspec.ValidationError, data: object, shape: Any) -> tuple[str, str]:
    """``(path, problem)`` of a msgspec error met converting `data` to `shape`: the path as ``a.b[0].c`` (empty for
    the root) and the problem in the wording the API has always answered, ending with the offending value.

    msgspec says where (``- at `$.a[0]` ``) and what it expected; the value is looked up in `data`. A dict entry is
    reported by msgspec as ``[...]``: the entry at fault is found again (the first whose key or value does not
    convert to the dict's declared types) so the message names its key.
    """
    message = str(error)
    head, _, where = message.partition(" - at `")
    where = where.rstrip("`")
    bad_key = where.startswith("key` in `")  # msgspec names the dict
    where = where.removeprefix("key` in `")
    segments: list[str | int] = []
    value: Any = data
    kind: Any = shape
    for match in _PATH.finditer(where.removeprefix("$")):
        name, index = match.groups()
        kind = _bare(kind)
        if name is not None:
            segments.append(name)
            value = value[name]
            kind = {field.encode_name: field.type for field in msgspec.structs.fields(kind)}[name]
        elif index == "...":
            key_kind, kind = get_args(kind)
            key, value = next((k, v) for k, v in value.items() if not _converts(v, kind) or not _converts(k, key_kind))
            segments.append(key)
        else:
            segments.append(int(index))
            value = value[int(index)]
            kind = get_args(kind)[0]
    if bad_key:
        key_kind = get_args(_bare(kind))[0]
        key = next(key for key in value if not _converts(key, key_kind))
        return _join(segments), f"keys must be status codes (digits), got {show(key)}"
    if head.startswith("Object missing required field `"):
        segments.append(head.split("`")[1])
        return _join(segments), "missing field"
    return _join(segments), _problem(head, segments[-1] if segments else "", value)


def _bare(kind: Any) -> Any:
    """`kind` without its annotations, and without ``| None`` when one type is left."""
    while True:
        if get_origin(kind) is Annotated:
            kind = get_args(kind)[0]
        elif (
            get_origin(kind) in (Union, UnionType)
            and len(rest := [a for a in get_args(kind) if a is not NoneType]) == 1
        ):
            kind = rest[0]
        else:
            return kind


def _without_none(union: Any) -> list[Any]:
    return [member for member in get_args(union) if member is not NoneType]


def _converts(value: object, kind: Any) -> bool:
    try:
        msgspec.convert(value, kind)
    except msgspec.ValidationError:
        return False
    return True


def _problem(head: str, field: str | int, value: object) -> str:
    if field in _EXPECTED_BY_FIELD:
        expected = _EXPECTED_BY_FIELD[str(field)]
    elif head.startswith("Expected `str` of length >= 1"):
        expected = "must not be empty"
    elif head.startswith("Expected `str` matching regex"):
        expected = "must not contain NUL"
    elif head.startswith("Expected `str`"):
        expected = "expected a string"
    elif head.startswith("Expected `object`"):
        expected = "expected an object"
    elif head.startswith("Expected `array`"):
        expected = "expected a list"
    elif head.startswith("Expected `int`"):
        bound = _BOUND.search(head)
        at_most = bound is not None and type(value) is int
        expected = f"must be at most {bound.group(1)}" if at_most else "must be a non-negative integer"
    elif head == "Number out of range" and type(value) is int:
        return f"is too large for a float, got an integer of {value.bit_length()} bits"
    elif head.startswith(("Expected `float`", "Expected `int | float`")):
        expected = "expected a number"
    else:
        expected = head[:1].lower() + head[1:]
    return f"{expected}, got {show(value)}"


def _join(segments: list[str | int]) -> str:
    text = ""
    for segment in segments:
        text += f"[{segment}]" if type(segment) is int else f".{segment}"
    return text.removeprefix(".")


def show(value: object, limit: int = 80) -> str:
    """A short JSON rendering of a bad value for an error message."""
    try:
        text = orjson.dumps(value).decode()
    except TypeError:
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
