"""``created_at`` on the wire: RFC 3339 text, parsed to an aware UTC datetime and kept within decode-time bounds.

The wire declarations keep ``created_at`` as text (`scouter.wire.common.Timestamp`) because msgspec's own datetime
parsing rounds nanoseconds; the clients send nanoseconds and a record is stored truncated to microseconds (the
timestamptz precision), never rounded into the next second.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Final

import attrs

__all__ = [
    "DEFAULT_MAX_FUTURE",
    "EARLIEST_CREATED_AT",
    "CreatedAtBounds",
    "parse_created_at",
    "parse_created_at_fast",
    "parse_rfc3339",
]

#: No record is older than the Unix epoch: earlier values are clock or client bugs (0001-01-01 is stored as
#: -infinity by asyncpg), and the archive's nanosecond timestamps end in 1677 anyway.
EARLIEST_CREATED_AT: Final = datetime(1970, 1, 1, tzinfo=UTC)
#: How far ahead of the server's clock a record may be dated unless configured (SCOUTER_MAX_FUTURE_SECONDS).
DEFAULT_MAX_FUTURE: Final = timedelta(days=1)

_CLIENT_FORM: Final = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{9}Z").fullmatch
_fromisoformat: Final = datetime.fromisoformat


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


def parse_created_at_fast(value: str) -> datetime | None:
    """The clients' own form ``YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ`` parsed, truncated to microseconds; None for anything
    else, or a value out of range (`parse_created_at` takes those, and words what is wrong)."""
    # The pattern pins the form (fromisoformat alone takes week dates, basic forms, spaces) and every digit, which
    # fromisoformat does not check past the microseconds it keeps (it truncates the rest, since Python 3.11); it
    # checks the ranges.
    if _CLIENT_FORM(value) is not None:
        try:
            return _fromisoformat(value)  # 'Z' yields tzinfo=UTC
        except ValueError:
            return None
    return None


def parse_created_at(value: str) -> datetime:
    """`parse_rfc3339`, with `parse_created_at_fast`'s fast path for the clients' own form."""
    parsed = parse_created_at_fast(value)
    return parsed if parsed is not None else parse_rfc3339(value)
