"""The archive's layout and rules: object keys, safe path segments, cut-off and boundary."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from scouter.archive import (
    KINDS,
    MAX_SEGMENT_BYTES,
    UnsafeSegment,
    archive_boundary,
    archive_cutoff,
    decode_segment,
    encode_segment,
    entity_tag,
    floor_hour,
    kind_named,
    object_key,
    object_name,
    segment_problem,
)
from scouter.sql import ARCHIVE_BUCKETS, archive_plan, archive_rows, delete_group, mark_archived

SPC, PSI, CUSTOM = KINDS


def _tag(space: str, name: str, version: str) -> str:
    return entity_tag(space, name, version)


def test_object_key_follows_upstreams_layout_without_zero_padding() -> None:
    """{space}/{name}/{version}/{kind}/year=/month=/day=/hour=/<kind>-<YYYYMMDDHH>-<part>-<entity tag>.parquet."""
    hour = datetime(2026, 7, 3, 5, tzinfo=UTC)
    tag = _tag("sp", "nm", "1.0.0")
    assert f"sp/nm/1.0.0/spc/year=2026/month=7/day=3/hour=5/spc-2026070305-0000-{tag}.parquet" == object_key(
        SPC, "sp", "nm", "1.0.0", hour, 0
    )
    assert f"a/b/c/psi/year=2026/month=12/day=31/hour=0/psi-2026123100-0012-{_tag('a', 'b', 'c')}.parquet" == (
        object_key(PSI, "a", "b", "c", datetime(2026, 12, 31, 0, tzinfo=UTC), 12)
    )


def test_object_key_uses_the_utc_hour() -> None:
    """A moment in another zone lands in its UTC hour's folder; minutes are floored away."""
    moment = datetime(2026, 7, 3, 1, 59, tzinfo=timezone(timedelta(hours=-5)))
    assert f"s/n/v/custom/year=2026/month=7/day=3/hour=6/custom-2026070306-0001-{_tag('s', 'n', 'v')}.parquet" == (
        object_key(CUSTOM, "s", "n", "v", moment, 1)
    )


def test_object_names_are_deterministic_per_hour_and_part() -> None:
    """The same (kind, hour, part, entity) always names the same object; another part another object."""
    hour = datetime(2026, 1, 2, 3, tzinfo=UTC)
    tag = _tag("s", "n", "v")
    assert object_name(SPC, hour, 0, tag) == object_name(SPC, hour + timedelta(minutes=59), 0, tag)
    assert object_name(SPC, hour, 0, tag) != object_name(SPC, hour, 1, tag)
    with pytest.raises(ValueError, match="part"):
        object_name(SPC, hour, -1, tag)


def test_names_differing_only_in_case_never_share_an_object_name() -> None:
    """On a case-insensitive file system 'Model' and 'model' (or '%2e' and '%2E') are one folder: their objects
    must still have different file names, or the second would overwrite the first."""
    hour = datetime(2026, 1, 2, 3, tzinfo=UTC)
    for a, b in (("Model", "model"), ("%2e%2e", "%2E%2E"), ("É", "é"), ("e\u0301", "\u00e9")):
        key_a, key_b = object_key(SPC, "s", a, "v", hour, 0), object_key(SPC, "s", b, "v", hour, 0)
        assert key_a.lower().rsplit("/", 1)[1] != key_b.lower().rsplit("/", 1)[1]


@pytest.mark.parametrize(
    ("value", "segment"),
    [
        ("org/model", "org%2Fmodel"),
        ("..", "%2E%2E"),
        (".", "%2E"),
        ("a\\b", "a%5Cb"),
        ("%2e%2e", "%252e%252e"),
        ("/etc", "%2Fetc"),
        ("tab\there", "tab%09here"),
        ("a\x85b", "a%C2%85b"),
        ("\x7f", "%7F"),
        ("名前", "名前"),
        ("...", "..."),
        ("a..b", "a..b"),
        ("1.0.0", "1.0.0"),
        ("my model", "my model"),
        ("x=1", "x=1"),
        ("~", "~"),
    ],
)
def test_segments_are_percent_encoded_where_needed(value: str, segment: str) -> None:
    """'%', '/', '\\' and control characters are percent-encoded (UTF-8, upper-case hex) and the dot names become
    '%2E' and '%2E%2E'; everything else is kept, so today's ordinary names keep their folders. A literal '%2e%2e'
    becomes '%252e%252e': no decoder can turn it into '..'."""
    assert segment == encode_segment(value)
    assert value == decode_segment(segment)


@pytest.mark.parametrize("value", ["é" * 200, "/" * 100, "a" * 300, "%" * 90 + "b"])
def test_long_names_are_cut_and_hashed_under_the_file_name_limit(value: str) -> None:
    """A segment over 255 bytes once encoded keeps a readable prefix and ends in a hash of the whole name; never
    half an escape, never two names on one segment."""
    segment = encode_segment(value)
    assert len(segment.encode()) <= MAX_SEGMENT_BYTES
    assert "/" not in segment
    assert segment not in (".", "..")
    assert segment != encode_segment(value + "x")
    assert decode_segment(segment) is None  # hashed: not reversible


@pytest.mark.parametrize("value", ["org/model", "..", ".", "a\\b", "%2e%2e", "/", "\x00", "\x1f", "é" * 200, "a" * 255])
def test_every_name_stays_one_segment_inside_the_root(value: str) -> None:
    """Whatever the name, each of space, name and version is exactly one segment of the key, never '.' or '..',
    never empty, without control characters."""
    key = object_key(SPC, value, value, value, datetime(2026, 1, 1, tzinfo=UTC), 0)
    parts = key.split("/")
    assert 9 == len(parts)
    assert [encode_segment(value)] * 3 == parts[:3]
    assert all(part not in ("", ".", "..") and part.isprintable() for part in parts)


def test_distinct_names_get_distinct_segments() -> None:
    """The encoding is one-to-one: names that look alike once decoded stay apart."""
    names = [
        "a/b",
        "a%2Fb",
        "a%2fb",
        "a%252Fb",
        "..",
        "%2E%2E",
        "%2e%2e",
        ".",
        "%2E",
        "a\\b",
        "a%5Cb",
        "é" * 200,
        "é" * 201,
        "é" * 199 + "e",
    ]
    assert len(names) == len({encode_segment(n) for n in names})


def test_only_the_empty_name_is_refused() -> None:
    """Rows with an empty space, name or version (they never pass the codec) cannot become a folder."""
    assert "must not be empty" == segment_problem("")
    for field, args in (("space", ("", "n", "v")), ("name", ("s", "", "v")), ("version", ("s", "n", ""))):
        with pytest.raises(UnsafeSegment, match=f"^{field}: must not be empty"):
            object_key(SPC, *args, datetime(2026, 1, 1, tzinfo=UTC), 0)


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
