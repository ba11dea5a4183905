"""The archive's layout and rules: object keys, safe path segments, cut-off and boundary."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from scouter.archive import (
    KINDS,
    UnsafeSegment,
    archive_boundary,
    archive_cutoff,
    floor_hour,
    kind_named,
    object_key,
    object_name,
    segment_problem,
)
from scouter.sql import ARCHIVE_BUCKETS, archive_plan, archive_rows, delete_group, mark_archived

SPC, PSI, CUSTOM = KINDS


def test_object_key_follows_upstreams_layout_without_zero_padding() -> None:
    """{space}/{name}/{version}/{kind}/year=/month=/day=/hour=/<kind>-<YYYYMMDDHH>-<part>.parquet."""
    hour = datetime(2026, 7, 3, 5, tzinfo=UTC)
    assert "sp/nm/1.0.0/spc/year=2026/month=7/day=3/hour=5/spc-2026070305-0000.parquet" == object_key(
        SPC, "sp", "nm", "1.0.0", hour, 0
    )
    assert "a/b/c/psi/year=2026/month=12/day=31/hour=0/psi-2026123100-0012.parquet" == object_key(
        PSI, "a", "b", "c", datetime(2026, 12, 31, 0, tzinfo=UTC), 12
    )


def test_object_key_uses_the_utc_hour() -> None:
    """A moment in another zone lands in its UTC hour's folder; minutes are floored away."""
    moment = datetime(2026, 7, 3, 1, 59, tzinfo=timezone(timedelta(hours=-5)))
    assert "s/n/v/custom/year=2026/month=7/day=3/hour=6/custom-2026070306-0001.parquet" == object_key(
        CUSTOM, "s", "n", "v", moment, 1
    )


def test_object_names_are_deterministic_per_hour_and_part() -> None:
    """The same (kind, hour, part) always names the same object; another part another object."""
    hour = datetime(2026, 1, 2, 3, tzinfo=UTC)
    assert object_name(SPC, hour, 0) == object_name(SPC, hour + timedelta(minutes=59), 0)
    assert object_name(SPC, hour, 0) != object_name(SPC, hour, 1)
    with pytest.raises(ValueError, match="part"):
        object_name(SPC, hour, -1)


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("", "must not be empty"),
        (".", "must not be '.' or '..'"),
        ("..", "must not be '.' or '..'"),
        ("a/b", "must not contain '/' or '\\'"),
        ("/etc", "must not contain '/' or '\\'"),
        ("a\\b", "must not contain '/' or '\\'"),
        ("a\x00b", "must not contain control character U+0000"),
        ("a\nb", "must not contain control character U+000A"),
        ("a\x85b", "must not contain control character U+0085"),
        ("é" * 128, "longer than 255 bytes"),
    ],
)
def test_unsafe_segments_are_refused(value: str, problem: str) -> None:
    """Empty, dot names, separators, control characters and over-long names are refused, each saying why."""
    reason = segment_problem(value)
    assert reason is not None
    assert reason.startswith(problem)
    for field, args in (("space", (value, "n", "v")), ("name", ("s", value, "v")), ("version", ("s", "n", value))):
        with pytest.raises(UnsafeSegment, match=f"^{field}: "):
            object_key(SPC, *args, datetime(2026, 1, 1, tzinfo=UTC), 0)


@pytest.mark.parametrize("value", ["1.0.0", "my model", "año", "a..b", "...", "x=1", "%2F", "~", "é" * 127])
def test_ordinary_segments_are_kept_as_they_are(value: str) -> None:
    """Dots, spaces, unicode, '=' and '%' are fine: the segment is used verbatim."""
    assert segment_problem(value) is None
    assert object_key(SPC, value, "n", "v", datetime(2026, 1, 1, tzinfo=UTC), 0).startswith(f"{value}/n/v/spc/")


def test_cutoff_is_floored_to_the_hour_and_boundary_is_not() -> None:
    """Only whole hours are archived; queries consult the archive from exactly now - retention."""
    now = datetime(2026, 11, 23, 14, 37, 12, 5, tzinfo=UTC)
    assert datetime(2026, 10, 24, 14, tzinfo=UTC) == archive_cutoff(now, 30)
    assert now - timedelta(days=30) == archive_boundary(now, 30)
    assert archive_cutoff(now, 30) <= archive_boundary(now, 30)
    assert datetime(2026, 11, 23, 14, tzinfo=UTC) == floor_hour(now)


def test_kinds_in_upstream_order_with_their_columns() -> None:
    """Spc, Psi, Custom, with the §8.1 columns."""
    assert ["spc", "psi", "custom"] == [k.name for k in KINDS]
    assert ("created_at", "space", "name", "version", "feature", "bin_id", "bin_count") == PSI.columns
    assert ("created_at", "space", "name", "version", "metric", "value") == kind_named("custom").columns
    with pytest.raises(KeyError):
        kind_named("observability")


def test_archiver_sql_binds_every_value() -> None:
    """The archiver's statements take the entity and hours as parameters; table names come from the kinds only."""
    for kind in KINDS:
        for sql in (archive_rows(kind), mark_archived(kind), delete_group(kind)):
            assert "space = $1 AND name = $2 AND version = $3 AND created_at >= $4 AND created_at < $5" in sql
            assert "NOT archived" in sql
            assert f"scouter.{kind.table}" in sql
        assert "created_at < $1" in archive_plan(kind)
        # the read-back binds the bucket width and the window; the entity is the manifest's (one per object)
        assert "% $1)" in ARCHIVE_BUCKETS[kind.name]
        assert (
            "arrow_cast(created_at, 'Int64') >= $2 AND arrow_cast(created_at, 'Int64') <= $3"
            in ARCHIVE_BUCKETS[kind.name]
        )
