"""Drift schedules: upstream's seconds-first cron strings (Rust `cron` 0.15 semantics, spec §6.2), fired in UTC.

Format: `sec min hour day-of-month month day-of-week [year]`, or one of `@yearly @monthly @weekly @daily @hourly`.
Each field is a comma list of `*`, `N`, `N-M`, names (`JAN`, `SUN`, case-insensitive, months and weekdays only),
`NAME-NAME`, and `<any of those>/step`; `?` means `*` in the two day fields.

The string is parsed here with the Rust crate's rules (ranges, names, steps, validation), then each field is handed
to croniter as an explicit list, seconds first, because the two disagree in three places:

* day of week: Rust counts 1 = Sunday … 7 = Saturday, croniter 0 = Sunday … 6 = Saturday (and treats 7 as Sunday);
* day of month and day of week must **both** match in Rust; croniter ORs them unless `day_or=False`;
* the year field: croniter 7.0 accepts it but fails to find dates such as `0 0 0 1 1 * 2027`, so years are
  handled here by skipping to the next allowed year. As in Rust, years run from 1970 to 2100.

"Next firing" is strictly after the given instant.
"""

from __future__ import annotations

import datetime as dt
import re

import attrs
from croniter import CroniterError, croniter

__all__ = ["CronSchedule", "ScheduleError", "next_fire", "parse_cron", "validate_cron"]


class ScheduleError(ValueError):
    """A cron string is invalid, or never fires again."""


@attrs.frozen
class _Unit:
    name: str
    low: int
    high: int
    names: dict[str, int] | None = None
    allows_any: bool = False


_MONTH_NAMES = {
    **dict.fromkeys(("jan", "january"), 1), **dict.fromkeys(("feb", "february"), 2),
    **dict.fromkeys(("mar", "march"), 3), **dict.fromkeys(("apr", "april"), 4), "may": 5,
    **dict.fromkeys(("jun", "june"), 6), **dict.fromkeys(("jul", "july"), 7),
    **dict.fromkeys(("aug", "august"), 8), **dict.fromkeys(("sep", "september"), 9),
    **dict.fromkeys(("oct", "october"), 10), **dict.fromkeys(("nov", "november"), 11),
    **dict.fromkeys(("dec", "december"), 12),
}  # fmt: skip
_WEEKDAY_NAMES = {
    **dict.fromkeys(("sun", "sunday"), 1), **dict.fromkeys(("mon", "monday"), 2),
    **dict.fromkeys(("tue", "tues", "tuesday"), 3), **dict.fromkeys(("wed", "wednesday"), 4),
    **dict.fromkeys(("thu", "thurs", "thursday"), 5), **dict.fromkeys(("fri", "friday"), 6),
    **dict.fromkeys(("sat", "saturday"), 7),
}  # fmt: skip

_UNITS = (
    _Unit("seconds", 0, 59),
    _Unit("minutes", 0, 59),
    _Unit("hours", 0, 23),
    _Unit("day of month", 1, 31, allows_any=True),
    _Unit("month", 1, 12, names=_MONTH_NAMES),
    _Unit("day of week", 1, 7, names=_WEEKDAY_NAMES, allows_any=True),
    _Unit("year", 1970, 2100),
)
_SHORTHANDS = {
    "@yearly": "0 0 0 1 1 *",
    "@monthly": "0 0 0 1 * *",
    "@weekly": "0 0 0 * * 1",  # Rust: day-of-week ordinal 1, Sunday
    "@daily": "0 0 0 * * *",
    "@hourly": "0 0 * * * *",
}
_ITEM = re.compile(r"(?P<base>[^/]+)(?:/(?P<step>[0-9]+))?")
_NUMBER = re.compile(r"[0-9]+")
_NAME = re.compile(r"[A-Za-z]+")


def _ordinal(token: str, unit: _Unit) -> int:
    if _NUMBER.fullmatch(token):
        return int(token)
    if _NAME.fullmatch(token):
        if unit.names is None:
            raise ScheduleError(f"the {unit.name} field does not accept names ({token!r})")
        try:
            return unit.names[token.lower()]
        except KeyError:
            raise ScheduleError(f"{token!r} is not a valid {unit.name} name") from None
    raise ScheduleError(f"{token!r} is not a number or a name in the {unit.name} field")


def _check(value: int, unit: _Unit) -> int:
    if not unit.low <= value <= unit.high:
        raise ScheduleError(f"{unit.name} must be between {unit.low} and {unit.high}, got {value}")
    return value


def _expand_item(item: str, unit: _Unit) -> list[int]:
    match = _ITEM.fullmatch(item)
    if match is None:
        raise ScheduleError(f"malformed {unit.name} item {item!r}")
    base, step_text = match["base"], match["step"]
    if base == "*" or (base == "?" and unit.allows_any):
        values = list(range(unit.low, unit.high + 1))
    elif "-" in base:
        start_text, _, end_text = base.partition("-")
        start, end = _check(_ordinal(start_text, unit), unit), _check(_ordinal(end_text, unit), unit)
        if start > end:
            raise ScheduleError(f"invalid {unit.name} range {base!r}")
        values = list(range(start, end + 1))
    else:
        point = _check(_ordinal(base, unit), unit)
        # Rust: `N/step` runs from N to the field's maximum; a bare N is just N. Names take no step.
        if step_text is not None and not _NUMBER.fullmatch(base):
            raise ScheduleError(f"a step needs a number, range or * before it in {item!r}")
        values = list(range(point, unit.high + 1)) if step_text is not None else [point]
    if step_text is not None:
        step = int(step_text)
        if not 1 <= step <= unit.high:
            raise ScheduleError(f"{unit.name} step must be between 1 and {unit.high}, got {step}")
        values = values[::step]
    return values


def _expand_field(field: str, unit: _Unit) -> frozenset[int]:
    if field == "":
        raise ScheduleError(f"empty {unit.name} field")
    values: set[int] = set()
    for item in field.split(","):
        values.update(_expand_item(item, unit))
    return frozenset(values)


def _render(values: frozenset[int], unit: _Unit, shift: int = 0) -> str:
    if len(values) == unit.high - unit.low + 1:
        return "*"
    return ",".join(str(v + shift) for v in sorted(values))


@attrs.frozen
class CronSchedule:
    """A parsed schedule: the source text, the equivalent croniter expression (seconds first, weekdays 0..6, no
    year) and the allowed years."""

    source: str
    croniter_expr: str
    years: tuple[int, ...]


def parse_cron(cron: str) -> CronSchedule:
    """Parse an upstream cron string; `ScheduleError` names the problem."""
    text = cron.strip()
    fields = _SHORTHANDS.get(text, text).split()
    if len(fields) not in (6, 7):
        raise ScheduleError(
            f"invalid cron {cron!r}: expected 6 or 7 fields (sec min hour day-of-month month day-of-week [year]),"
            f" got {len(fields)}"
        )
    try:
        sets = [_expand_field(field, unit) for field, unit in zip(fields, _UNITS, strict=False)]
    except ScheduleError as exc:
        raise ScheduleError(f"invalid cron {cron!r}: {exc}") from None
    years = sets[6] if len(sets) == 7 else frozenset(range(_UNITS[6].low, _UNITS[6].high + 1))
    parts = [_render(values, unit) for values, unit in zip(sets[:5], _UNITS[:5], strict=True)]
    parts.append(_render(sets[5], _UNITS[5], shift=-1))  # Rust 1 = Sunday → croniter 0 = Sunday
    return CronSchedule(source=cron, croniter_expr=" ".join(parts), years=tuple(sorted(years)))


def validate_cron(cron: str) -> None:
    """Raise `ScheduleError` unless `cron` is a valid upstream cron string (syntax and ranges only)."""
    parse_cron(cron)


def next_fire(cron: str | CronSchedule, after: dt.datetime) -> dt.datetime:
    """The first firing strictly after `after` (timezone-aware), as an aware UTC datetime.

    `ScheduleError` if the string is invalid or the schedule never fires again (e.g. `0 0 0 30 2 *`, or only past
    years).
    """
    if after.tzinfo is None or after.utcoffset() is None:
        raise ValueError("next_fire needs a timezone-aware datetime")
    schedule = parse_cron(cron) if isinstance(cron, str) else cron
    start = after.astimezone(dt.UTC)
    while True:
        try:
            # day_or=False: Rust requires both day fields to match
            fire: dt.datetime = croniter(
                schedule.croniter_expr, start, second_at_beginning=True, day_or=False
            ).get_next(dt.datetime)
        except CroniterError as exc:
            raise ScheduleError(f"cron {schedule.source!r} has no firing after {start.isoformat()}: {exc}") from None
        if fire.year in schedule.years:
            return fire.astimezone(dt.UTC)
        later = [year for year in schedule.years if year > fire.year]
        if not later:
            raise ScheduleError(f"cron {schedule.source!r} has no firing after {after.isoformat()}")
        # firings are whole seconds, so "strictly after 23:59:59 on Dec 31" means "from Jan 1 00:00:00"
        start = dt.datetime(later[0], 1, 1, tzinfo=dt.UTC) - dt.timedelta(seconds=1)
