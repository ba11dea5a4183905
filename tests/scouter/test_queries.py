"""DriftRequest and ObservabilityMetricRequest query strings: validation, windows and real bucket widths."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from scouter.queries import (
    MAX_DATA_POINTS,
    MIN_BUCKET,
    TIME_INTERVALS,
    QueryError,
    Window,
    bucket_width,
    parse_drift_query,
    parse_observability_query,
)

NOW = datetime(2026, 11, 22, 17, 6, 43, 634961, tzinfo=UTC)


def _args(**extra: str) -> dict[str, str]:
    args = {
        "space": "cap",
        "name": "model",
        "version": "1.0.0",
        "time_interval": "FiveMinutes",
        "max_data_points": "100",
        "drift_type": "Spc",
    }
    args.update(extra)
    return {k: v for k, v in args.items() if v != "<omit>"}


def test_bucket_width_is_window_over_points() -> None:
    """Five minutes over 100 points is 3 s; one hour over 7 points keeps the microsecond remainder truncated."""
    assert timedelta(seconds=3) == bucket_width(timedelta(minutes=5), 100)
    assert timedelta(microseconds=3600 * 10**6 // 7) == bucket_width(timedelta(hours=1), 7)


def test_bucket_width_has_a_floor_of_one_second() -> None:
    """Many points over a short window never give buckets under one second."""
    assert MIN_BUCKET == bucket_width(timedelta(minutes=5), 10_000)
    assert timedelta(seconds=1) == MIN_BUCKET


@pytest.mark.parametrize("points", [0, -1])
def test_bucket_width_rejects_non_positive_points(points: int) -> None:
    """max_data_points <= 0 is an error, never a division by zero."""
    with pytest.raises(ValueError, match="max_data_points"):
        bucket_width(timedelta(minutes=5), points)


@pytest.mark.parametrize(("points", "clamped"), [("0", 1), ("-3", 1), ("-2147483648", 1), ("2147483647", 10_000)])
def test_max_data_points_is_clamped(points: str, clamped: int) -> None:
    """Zero or below means one bucket (upstream answers 200 for them); above MAX_DATA_POINTS means MAX_DATA_POINTS."""
    query = parse_drift_query(_args(max_data_points=points), NOW)
    assert (clamped, max(timedelta(minutes=5) // clamped, MIN_BUCKET)) == (query.max_data_points, query.bucket)
    assert MAX_DATA_POINTS == 10_000


def test_client_request_without_custom_interval() -> None:
    """The captured SPC request: window [now - 5 min, now], 3 s buckets."""
    query = parse_drift_query(_args(), NOW)
    assert ("cap", "model", "1.0.0", "Spc") == (query.space, query.name, query.version, query.drift_type)
    assert Window(NOW - timedelta(minutes=5), NOW) == query.window
    assert timedelta(seconds=3) == query.bucket
    assert 100 == query.max_data_points


@pytest.mark.parametrize(("name", "minutes"), list(TIME_INTERVALS.items()))
def test_every_time_interval(name: str, minutes: int) -> None:
    """Each TimeInterval variant name maps to its upstream length in minutes."""
    query = parse_drift_query(_args(time_interval=name, max_data_points="1"), NOW)
    assert timedelta(minutes=minutes) == query.window.length
    assert timedelta(minutes=minutes) == query.bucket


def test_custom_interval_is_used_exactly() -> None:
    """begin/end (both present) are the window itself, and the width derives from its length (§12 #2, #1)."""
    query = parse_drift_query(
        _args(
            max_data_points="10",
            begin_custom_datetime="2026-11-22T16:06:43.634961Z",
            end_custom_datetime="2026-11-22T17:06:43.634961Z",
        ),
        NOW + timedelta(days=3),
    )
    assert Window(NOW - timedelta(hours=1), NOW) == query.window
    assert timedelta(minutes=6) == query.bucket


def test_one_custom_datetime_alone_is_ignored() -> None:
    """Only begin given: the relative window applies, as upstream."""
    query = parse_drift_query(_args(begin_custom_datetime="2026-11-20T00:00:00Z"), NOW)
    assert Window(NOW - timedelta(minutes=5), NOW) == query.window


def test_custom_datetimes_with_nanoseconds_and_offsets() -> None:
    """Nanosecond fractions are truncated; offsets (even a '+' decoded to a space) become UTC."""
    query = parse_drift_query(
        _args(
            begin_custom_datetime="2026-11-22T18:00:00.123456789+01:00",
            end_custom_datetime="2026-11-22T19:00:00 01:00",
        ),
        NOW,
    )
    assert datetime(2026, 11, 22, 17, 0, 0, 123456, tzinfo=UTC) == query.window.begin
    assert datetime(2026, 11, 22, 18, 0, 0, tzinfo=UTC) == query.window.end


@pytest.mark.parametrize("value", ["org/model", "..", "a\\b", "%2e%2e", "名前", "tab\there"])
def test_names_upstream_accepts_can_be_asked_for(value: str) -> None:
    """Whatever name could be stored can be queried (the query string decoded by the framework)."""
    query = parse_drift_query(_args(space=value, name=value, version=value), NOW)
    assert (value, value, value) == (query.space, query.name, query.version)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"space": "<omit>"}, "space: missing field"),
        ({"name": ""}, "name: must not be empty"),
        ({"version": "a\x00b"}, "version: must not contain NUL"),
        ({"time_interval": "<omit>"}, "time_interval: missing field"),
        ({"time_interval": "TenMinutes"}, "time_interval: unknown interval 'TenMinutes'"),
        ({"max_data_points": "<omit>"}, "max_data_points: missing field"),
        ({"max_data_points": "ten"}, "max_data_points: expected an integer"),
        ({"max_data_points": "1.5"}, "max_data_points: expected an integer"),
        ({"max_data_points": "2147483648"}, "max_data_points: must be a 32-bit integer"),
        ({"max_data_points": "-2147483649"}, "max_data_points: must be a 32-bit integer"),
        ({"begin_custom_datetime": "1677-09-21T23:59:59Z"}, "begin_custom_datetime: must be between 1677-09-22"),
        ({"end_custom_datetime": "2262-04-11T00:00:01Z"}, "end_custom_datetime: must be between 1677-09-22"),
        ({"drift_type": "<omit>"}, "drift_type: missing field"),
        ({"drift_type": "spc"}, "drift_type: unknown drift type 'spc'"),
        ({"begin_custom_datetime": "2026-11-22T17:00:00"}, "begin_custom_datetime: timestamp has no timezone"),
        ({"end_custom_datetime": "yesterday"}, "end_custom_datetime: not an RFC 3339 timestamp"),
    ],
)
def test_bad_fields_are_named(extra: dict[str, str], message: str) -> None:
    """Every malformed or missing field raises QueryError naming it."""
    with pytest.raises(QueryError) as caught:
        parse_drift_query(_args(**extra), NOW)
    assert caught.value.reason.startswith(message)


@pytest.mark.parametrize("end", ["2026-11-22T16:00:00Z", "2026-11-22T15:00:00Z"])
def test_begin_not_before_end_is_rejected(end: str) -> None:
    """begin >= end is a client error (upstream answered 500)."""
    with pytest.raises(QueryError, match="must be before"):
        parse_drift_query(_args(begin_custom_datetime="2026-11-22T16:00:00Z", end_custom_datetime=end), NOW)


def test_observability_intervals() -> None:
    """'1hour' is 60 minutes; an unknown interval string means six hours, as upstream."""
    args = {"space": "sp", "name": "nm", "version": "1", "time_interval": "1hour", "max_data_points": "60"}
    query = parse_observability_query(args, NOW)
    assert (Window(NOW - timedelta(hours=1), NOW), timedelta(minutes=1)) == (query.window, query.bucket)
    other = parse_observability_query({**args, "time_interval": "fortnight"}, NOW)
    assert timedelta(hours=6) == other.window.length


def test_observability_clamps_and_rejects_points() -> None:
    """max_data_points is clamped (0 means one bucket) and must be an integer on the observability route too."""
    args = {"space": "sp", "name": "nm", "version": "1", "time_interval": "1hour", "max_data_points": "0"}
    assert timedelta(hours=1) == parse_observability_query(args, NOW).bucket
    with pytest.raises(QueryError, match="max_data_points: expected an integer"):
        parse_observability_query({**args, "max_data_points": "x"}, NOW)
