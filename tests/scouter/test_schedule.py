"""Seconds-first cron strings with Rust `cron` semantics, fired strictly after an instant in UTC (spec §6.2, §3.2)."""

import datetime as dt

import pytest

from scouter.schedule import ScheduleError, next_fire, parse_cron, validate_cron

UTC = dt.UTC
WEDNESDAY = dt.datetime(2025, 7, 9, 12, 34, 56, tzinfo=UTC)


def at(*parts: int) -> dt.datetime:
    return dt.datetime(*parts, tzinfo=UTC)


@pytest.mark.parametrize(
    ("cron", "expected"),
    [
        ("0 * * * * * *", at(2025, 7, 9, 12, 35, 0)),  # Every1Minute
        ("0 0,5,10,15,20,25,30,35,40,45,50,55 * * * * *", at(2025, 7, 9, 12, 35, 0)),  # Every5Minutes
        ("0 0,15,30,45 * * * * *", at(2025, 7, 9, 12, 45, 0)),  # Every15Minutes
        ("0 0,30 * * * * *", at(2025, 7, 9, 13, 0, 0)),  # Every30Minutes
        ("0 0 * * * *", at(2025, 7, 9, 13, 0, 0)),  # EveryHour
        ("0 0 */6 * * *", at(2025, 7, 9, 18, 0, 0)),  # Every6Hours
        ("0 0 */12 * * *", at(2025, 7, 10, 0, 0, 0)),  # Every12Hours
        ("0 0 0 * * *", at(2025, 7, 10, 0, 0, 0)),  # EveryDay
        ("0 0 0 * * SUN", at(2025, 7, 13, 0, 0, 0)),  # EveryWeek
        ("*/5 * * * * *", at(2025, 7, 9, 12, 35, 0)),
    ],
)
def test_common_crons(cron: str, expected: dt.datetime) -> None:
    """Every CommonCrons string (and */5 seconds) fires at the expected next instant after a Wednesday 12:34:56."""
    assert expected == next_fire(cron, WEDNESDAY)


def test_every_five_seconds_sequence() -> None:
    """`*/5 * * * * *` fires every 5 seconds."""
    fires, t = [], at(2025, 7, 9, 12, 34, 56)
    for _ in range(3):
        t = next_fire("*/5 * * * * *", t)
        fires.append(t)
    assert [at(2025, 7, 9, 12, 35, 0), at(2025, 7, 9, 12, 35, 5), at(2025, 7, 9, 12, 35, 10)] == fires


def test_every_day_fires_at_utc_midnight() -> None:
    """`0 0 0 * * *` fires at 00:00:00 UTC, whatever the input's time zone."""
    tokyo = dt.timezone(dt.timedelta(hours=9))
    after = dt.datetime(2025, 7, 10, 8, 0, 0, tzinfo=tokyo)  # 2025-07-09 23:00 UTC
    fired = next_fire("0 0 0 * * *", after)
    assert (at(2025, 7, 10, 0, 0, 0), dt.timedelta(0)) == (fired, fired.utcoffset())


def test_strictly_after_an_exact_firing() -> None:
    """At an exact firing instant the next firing is the following one; a microsecond before, it is that one."""
    instant = at(2025, 7, 10, 0, 0, 0)
    assert (at(2025, 7, 11, 0, 0, 0), instant) == (
        next_fire("0 0 0 * * *", instant),
        next_fire("0 0 0 * * *", instant - dt.timedelta(microseconds=1)),
    )


@pytest.mark.parametrize(
    ("cron", "expected"),
    [
        ("0 0 0 * * 1", at(2025, 7, 13)),  # 1 = Sunday
        ("0 0 0 * * 2", at(2025, 7, 14)),  # 2 = Monday
        ("0 0 0 * * 7", at(2025, 7, 12)),  # 7 = Saturday
        ("0 0 0 * * 4", at(2025, 7, 16)),  # 4 = Wednesday: today's midnight has passed
        ("0 0 0 * * 2-6", at(2025, 7, 10)),  # Monday to Friday
        ("0 0 0 * * 1,7", at(2025, 7, 12)),  # weekend
        ("0 0 0 * * sat,sunday", at(2025, 7, 12)),  # names are case-insensitive, long forms too
        ("0 0 0 * * MON-FRI/2", at(2025, 7, 11)),  # Mon, Wed, Fri
        ("0 0 0 * * 2/3", at(2025, 7, 10)),  # Mon, Thu, ... from Rust ordinal 2 in steps of 3
        ("0 0 0 * * */2", at(2025, 7, 10)),  # Rust ordinals 1,3,5,7: Sun, Tue, Thu, Sat
    ],
)
def test_weekday_numbers_are_rust_style(cron: str, expected: dt.datetime) -> None:
    """Numeric weekdays count 1 = Sunday … 7 = Saturday, in points, ranges, lists and steps."""
    assert expected == next_fire(cron, WEDNESDAY)


def test_day_of_month_and_weekday_must_both_match() -> None:
    """Like Rust `cron`, a day-of-month and a weekday restriction are ANDed: Friday the 13th."""
    assert at(2026, 2, 13) == next_fire("0 0 0 13 * FRI", WEDNESDAY)


def test_year_field() -> None:
    """A 7th field restricts years: a sparse date in a later year and a leap day within a year range."""
    assert (at(2027, 1, 1), at(2028, 2, 29), at(2025, 7, 9, 12, 35)) == (
        next_fire("0 0 0 1 1 * 2027", WEDNESDAY),
        next_fire("0 0 0 29 2 * 2025-2030", WEDNESDAY),
        next_fire("0 * * * * * 2025", WEDNESDAY),
    )


def test_shorthands() -> None:
    """Rust's @daily / @weekly / @hourly shorthands are understood (@weekly is Sunday midnight)."""
    assert (at(2025, 7, 10), at(2025, 7, 13), at(2025, 7, 9, 13)) == (
        next_fire("@daily", WEDNESDAY),
        next_fire("@weekly", WEDNESDAY),
        next_fire("@hourly", WEDNESDAY),
    )


def test_parse_cron_translation() -> None:
    """The croniter expression keeps seconds first, shifts weekdays to 0..6 and drops the year."""
    assert ("0 0 0,6,12,18 * * 0,6", (2026, 2027)) == (
        parse_cron("0 0 */6 * * 1,7 2026-2027").croniter_expr,
        parse_cron("0 0 */6 * * 1,7 2026-2027").years,
    )


@pytest.mark.parametrize(
    ("cron", "message"),
    [
        ("0 0 * * *", "expected 6 or 7 fields"),
        ("0 0 0 * * * 2025 1", "expected 6 or 7 fields"),
        ("", "expected 6 or 7 fields"),
        ("60 * * * * *", "seconds must be between 0 and 59"),
        ("0 0 24 * * *", "hours must be between 0 and 23"),
        ("0 0 0 0 * *", "day of month must be between 1 and 31"),
        ("0 0 0 * 13 *", "month must be between 1 and 12"),
        ("0 0 0 * * 0", "day of week must be between 1 and 7"),
        ("0 0 0 * * 8", "day of week must be between 1 and 7"),
        ("0 0 0 * * FUN", "not a valid day of week name"),
        ("0 0 0 * FOO *", "not a valid month name"),
        ("0 MON 0 * * *", "does not accept names"),
        ("*/0 * * * * *", "step must be between 1 and 59"),
        ("0 0 0 * * 5-2", "invalid day of week range"),
        ("0 0 0 * * * 1969", "year must be between 1970 and 2100"),
        ("0 0 ? * * *", "not a number or a name"),
        ("0 0 0 * * MON/2", "a step needs a number"),
        ("0,,5 * * * * *", "malformed seconds item"),
        ("0 0 0 L * *", "day of month field does not accept names"),
    ],
)
def test_invalid_cron_strings(cron: str, message: str) -> None:
    """Invalid strings raise ScheduleError with a message naming the problem."""
    with pytest.raises(ScheduleError, match=message):
        validate_cron(cron)


def test_question_mark_in_day_fields() -> None:
    """`?` stands for "any" in the day-of-month and day-of-week fields."""
    assert at(2025, 7, 10) == next_fire("0 0 0 ? * ?", WEDNESDAY)


def test_never_firing_schedule() -> None:
    """A schedule with no future firing raises ScheduleError from next_fire (validation only checks syntax)."""
    validate_cron("0 0 0 30 2 *")
    with pytest.raises(ScheduleError, match="no firing"):
        next_fire("0 0 0 30 2 *", WEDNESDAY)
    with pytest.raises(ScheduleError, match="no firing"):
        next_fire("0 0 0 * * * 2024", WEDNESDAY)


def test_naive_datetime_is_rejected() -> None:
    """next_fire needs an aware datetime."""
    with pytest.raises(ValueError, match="timezone-aware"):
        next_fire("0 0 0 * * *", dt.datetime(2025, 7, 9))
