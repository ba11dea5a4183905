"""Query-string requests of the binned read routes (server.md §2.10, §2.12): parsing, time windows, bucket widths.

`GET /scouter/drift/{spc,psi,custom}` carries a ``DriftRequest`` and `GET /scouter/observability/metrics` an
``ObservabilityMetricRequest``, both as flat ``key=value`` pairs (client.md §3). Parsing is strict and every problem
raises `QueryError` naming the field; the caller answers 400.

Differences from upstream v0.6.4, on purpose (server.md §12):

* the bucket width is the window divided by ``max_data_points`` (upstream's SQL always used one minute, #1), floored
  at `MIN_BUCKET`; ``max_data_points`` is clamped to ``1 ..`` `MAX_DATA_POINTS` (upstream answers 200 for values
  ``<= 0``; a huge value would make the answer grow with the raw row count);
* custom datetimes must lie within `QUERY_RANGE`, what nanoseconds since 1970 in 64 bits (the archive's read-back)
  hold: a window starting before 1677 is a 400, not a 500;
* a custom interval queries exactly ``[begin, end]`` (upstream queried ``now() - (end - begin)``, #2), and
  ``begin >= end`` is a 400 rather than a 500;
* one bucket grid (width and epoch alignment) serves the whole window, so when archived data is merged in later the
  buckets of both parts line up.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Final

import attrs

from scouter.records import DecodeError, check_entity_name, parse_rfc3339

__all__ = [
    "DRIFT_TYPES",
    "EPOCH",
    "INT32_MAX",
    "MAX_DATA_POINTS",
    "MIN_BUCKET",
    "OBSERVABILITY_INTERVALS",
    "QUERY_RANGE",
    "TIME_INTERVALS",
    "DriftQuery",
    "ObservabilityQuery",
    "QueryError",
    "Window",
    "bucket_width",
    "parse_drift_query",
    "parse_observability_query",
]

#: `TimeInterval` variant names and their length in minutes.
TIME_INTERVALS: Final[Mapping[str, int]] = {
    "FiveMinutes": 5,
    "FifteenMinutes": 15,
    "ThirtyMinutes": 30,
    "OneHour": 60,
    "ThreeHours": 180,
    "SixHours": 360,
    "TwelveHours": 720,
    "TwentyFourHours": 1440,
    "TwoDays": 2880,
    "FiveDays": 7200,
}

#: The observability route's interval strings (minutes); anything else means six hours, as upstream.
OBSERVABILITY_INTERVALS: Final[Mapping[str, int]] = {
    "5minute": 5,
    "15minute": 15,
    "30minute": 30,
    "1hour": 60,
    "3hour": 180,
    "6hour": 360,
    "12hour": 720,
    "24hour": 1440,
    "2day": 2880,
    "5day": 7200,
}
_OBSERVABILITY_DEFAULT_MINUTES: Final = 360

DRIFT_TYPES: Final = ("Spc", "Psi", "Custom")
INT32_MAX: Final = 2**31 - 1  # max_data_points is an i32 upstream
#: Most buckets one binned query answers with (documented in the README); larger max_data_points are clamped to it.
MAX_DATA_POINTS: Final = 10_000
#: Custom datetimes a query may name: nanoseconds since 1970 fit a signed 64-bit integer within this (whole days).
QUERY_RANGE: Final = (datetime(1677, 9, 22, tzinfo=UTC), datetime(2262, 4, 11, tzinfo=UTC))
MIN_BUCKET: Final = timedelta(seconds=1)
#: Buckets are aligned to the Unix epoch: ``date_bin(width, created_at, EPOCH)``.
EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


class QueryError(ValueError):
    """A query string that cannot be served; the message names the field and the problem."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@attrs.frozen
class Window:
    """The closed time range ``[begin, end]`` a query covers."""

    begin: datetime
    end: datetime

    @property
    def length(self) -> timedelta:
        return self.end - self.begin


@attrs.frozen
class DriftQuery:
    """A validated DriftRequest: which entity, which window, how wide each bucket is."""

    space: str
    name: str
    version: str
    drift_type: str
    window: Window
    bucket: timedelta
    max_data_points: int


@attrs.frozen
class ObservabilityQuery:
    """A validated ObservabilityMetricRequest."""

    space: str
    name: str
    version: str
    window: Window
    bucket: timedelta


def bucket_width(window: timedelta, max_data_points: int) -> timedelta:
    """``window / max_data_points``, truncated to whole microseconds and never below `MIN_BUCKET`.

    ValueError when ``max_data_points <= 0`` or the window is not positive.
    """
    if max_data_points <= 0:
        raise ValueError(f"max_data_points must be positive, got {max_data_points}")
    if window <= timedelta(0):
        raise ValueError(f"the window must be positive, got {window}")
    # timedelta // int floors to whole microseconds, exactly (no float rounding)
    return max(window // max_data_points, MIN_BUCKET)


def parse_drift_query(args: Mapping[str, str], now: datetime) -> DriftQuery:
    """Parse a DriftRequest query (``args`` maps each field to its first value); `now` is timezone-aware.

    The window is ``[now - time_interval, now]``, or ``[begin, end]`` when both custom datetimes are given (one
    alone is ignored, as upstream; a malformed one is still an error).
    """
    space, name, version = _entity(args)
    interval = _required(args, "time_interval")
    if interval not in TIME_INTERVALS:
        choices = ", ".join(TIME_INTERVALS)
        raise QueryError(f"time_interval: unknown interval {interval!r}, expected one of {choices}")
    max_points = _max_data_points(args)
    drift_type = _required(args, "drift_type")
    if drift_type not in DRIFT_TYPES:
        raise QueryError(f'drift_type: unknown drift type {drift_type!r}, expected "Spc", "Psi" or "Custom"')
    begin = _optional_datetime(args, "begin_custom_datetime")
    end = _optional_datetime(args, "end_custom_datetime")
    if begin is not None and end is not None:
        if begin >= end:
            raise QueryError(
                f"begin_custom_datetime must be before end_custom_datetime, got {_iso(begin)} and {_iso(end)}"
            )
        window = Window(begin, end)
    else:
        window = Window(now - timedelta(minutes=TIME_INTERVALS[interval]), now)
    return DriftQuery(
        space=space,
        name=name,
        version=version,
        drift_type=drift_type,
        window=window,
        bucket=bucket_width(window.length, max_points),
        max_data_points=max_points,
    )


def parse_observability_query(args: Mapping[str, str], now: datetime) -> ObservabilityQuery:
    """Parse an ObservabilityMetricRequest; an unknown ``time_interval`` string means six hours, as upstream."""
    space, name, version = _entity(args)
    interval = _required(args, "time_interval")
    minutes = OBSERVABILITY_INTERVALS.get(interval, _OBSERVABILITY_DEFAULT_MINUTES)
    max_points = _max_data_points(args)
    window = Window(now - timedelta(minutes=minutes), now)
    return ObservabilityQuery(space, name, version, window, bucket_width(window.length, max_points))


# --- helpers -------------------------------------------------------------------------------------------------------


def _required(args: Mapping[str, str], field: str) -> str:
    value = args.get(field)
    if value is None:
        raise QueryError(f"{field}: missing field")
    return value


def _entity(args: Mapping[str, str]) -> tuple[str, str, str]:
    values = []
    for field in ("space", "name", "version"):
        value = _required(args, field)
        try:
            check_entity_name(field, value)  # what could never be stored can never be asked for
        except DecodeError as exc:
            raise QueryError(exc.reason) from None
        values.append(value)
    return values[0], values[1], values[2]


def _max_data_points(args: Mapping[str, str]) -> int:
    text = _required(args, "max_data_points")
    body = text[1:] if text[:1] in "+-" else text
    if not (body.isascii() and body.isdigit()):
        raise QueryError(f"max_data_points: expected an integer, got {text!r}")
    value = int(text)
    if not -INT32_MAX - 1 <= value <= INT32_MAX:  # upstream's i32 refuses it too
        raise QueryError(f"max_data_points: must be a 32-bit integer, got {value}")
    return min(max(value, 1), MAX_DATA_POINTS)


def _optional_datetime(args: Mapping[str, str], field: str) -> datetime | None:
    text = args.get(field)
    if text is None:
        return None
    # An unencoded '+' offset arrives as a space after form decoding; nothing else may hold one.
    if len(text) >= 6 and text[-6] == " ":
        text = f"{text[:-6]}+{text[-5:]}"
    try:
        moment = parse_rfc3339(text)
    except ValueError as exc:
        raise QueryError(f"{field}: {exc}, got {text!r}") from None
    first, last = QUERY_RANGE
    if not first <= moment <= last:
        raise QueryError(f"{field}: must be between {_iso(first)} and {_iso(last)}, got {text!r}")
    return moment


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")
