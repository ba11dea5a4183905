"""The archive's layout and rules (server.md §8): which rows go, where each object lives, what a query reads.

Pure values and functions; the archiver and the read-back in ``actors/`` do the I/O.

* Rows older than ``DATA_RETENTION_PERIOD`` days are archived by whole UTC hours: the cut-off is floored to the
  hour, so an hour is normally written once, as one object per (record kind, entity, hour).
* Objects follow upstream's Hive layout (`object_key`) with a deterministic name: the kind, the hour and a *part*
  number. Part 0 holds the hour's rows; rows that arrive late for an hour already archived go to the next part
  (never into a rewrite of a committed object: committed objects are immutable, so a reader and the
  ``archive_log`` manifest can never disagree). A pass that crashes after uploading a part but before committing it
  writes the same part number again on the re-run, overwriting the orphan instead of duplicating it.
* Space, name and version become path segments. Whatever reached the database, `segment_problem` refuses anything
  that could leave the storage root or that object stores mangle; the archiver quarantines such rows.
* Once a UTC day is complete (wholly before the cut-off) its objects are compacted into one per (kind, entity,
  day), `day_object_key`, in the day's folder (no ``hour=`` level); ``archive_log`` then lists that object alone.
* A drift query consults the archive only when its window begins before `archive_boundary`: archived rows are all
  older than the archiver's cut-off, which is never later than that boundary.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Final

import attrs

from scouter.records import DecodeError, check_path_segment

__all__ = [
    "KINDS",
    "MAX_SEGMENT_BYTES",
    "ArchiveKind",
    "UnsafeSegment",
    "archive_boundary",
    "archive_cutoff",
    "day_object_key",
    "floor_day",
    "floor_hour",
    "kind_named",
    "object_key",
    "object_name",
    "segment_problem",
]

#: Longest path segment most file systems take (NAME_MAX), in UTF-8 bytes.
MAX_SEGMENT_BYTES: Final = 255


@attrs.frozen
class ArchiveKind:
    """One record type: its table, its folder in the layout, and its Parquet columns after the entity's."""

    name: str  # "spc", "psi", "custom": the folder and the archive_log kind
    table: str  # in schema scouter
    key: str  # "feature" or "metric"
    values: tuple[str, ...]  # ("value",) or ("bin_id", "bin_count")

    @property
    def columns(self) -> tuple[str, ...]:
        """Every column of its Parquet files, in order (server.md §8.1)."""
        return ("created_at", "space", "name", "version", self.key, *self.values)


#: In upstream's order: Spc, Psi, Custom.
KINDS: Final = (
    ArchiveKind("spc", "spc_drift", "feature", ("value",)),
    ArchiveKind("psi", "psi_drift", "feature", ("bin_id", "bin_count")),
    ArchiveKind("custom", "custom_drift", "metric", ("value",)),
)


def kind_named(name: str) -> ArchiveKind:
    """The kind whose folder is `name`; KeyError for anything else."""
    for kind in KINDS:
        if kind.name == name:
            return kind
    raise KeyError(name)


class UnsafeSegment(ValueError):
    """A space, name or version that cannot be a path segment of the archive."""


def segment_problem(value: str) -> str | None:
    """Why `value` cannot be one folder name of the archive, or None when it can.

    The ingest codec's rule (no empty string, ``.``, ``..``, ``/``, ``\\`` or control character) plus a length limit;
    the archiver applies it again because rows may reach the table by other roads than the codec.
    """
    try:
        check_path_segment("segment", value)
    except DecodeError as exc:
        return exc.reason.removeprefix("segment: ")
    if len(value.encode("utf-8", "surrogatepass")) > MAX_SEGMENT_BYTES:
        return f"longer than {MAX_SEGMENT_BYTES} bytes"
    return None


def floor_hour(moment: datetime) -> datetime:
    """The start of `moment`'s UTC hour, timezone-aware."""
    moment = moment.astimezone(UTC)
    return moment.replace(minute=0, second=0, microsecond=0)


def archive_cutoff(now: datetime, retention_days: int) -> datetime:
    """Rows created before this are archived: ``now - retention`` floored to the UTC hour (whole hours only)."""
    return floor_hour(now - timedelta(days=retention_days))


def archive_boundary(now: datetime, retention_days: int) -> datetime:
    """A query window beginning before this may reach archived rows (server.md §2.10)."""
    return now - timedelta(days=retention_days)


def object_name(kind: ArchiveKind, hour: datetime, part: int) -> str:
    """``spc-2026070305-0000.parquet``: deterministic per (kind, hour, part), so a re-run overwrites."""
    if part < 0:
        raise ValueError(f"part must not be negative, got {part}")
    return f"{kind.name}-{floor_hour(hour):%Y%m%d%H}-{part:04d}.parquet"


def object_key(kind: ArchiveKind, space: str, name: str, version: str, hour: datetime, part: int) -> str:
    """The object's path under the storage root, in upstream's layout (no zero padding in partition values):
    ``{space}/{name}/{version}/{kind}/year=YYYY/month=M/day=D/hour=H/<object_name>``.

    Raises `UnsafeSegment` when space, name or version cannot be a path segment.
    """
    for field, value in (("space", space), ("name", name), ("version", version)):
        problem = segment_problem(value)
        if problem is not None:
            raise UnsafeSegment(f"{field}: {problem}, got {value!r}")
    h = floor_hour(hour)
    partition = f"year={h.year}/month={h.month}/day={h.day}/hour={h.hour}"
    return f"{space}/{name}/{version}/{kind.name}/{partition}/{object_name(kind, h, part)}"


def floor_day(moment: datetime) -> datetime:
    """The start of `moment`'s UTC day, timezone-aware."""
    return floor_hour(moment).replace(hour=0)


def day_object_key(kind: ArchiveKind, space: str, name: str, version: str, day: datetime, part: int) -> str:
    """A compacted day's object: the day's folder of `object_key` (no ``hour=`` level, so the Hive layout stays
    ``year=/month=/day=``) and ``spc-20260703-0001.parquet``, deterministic per (kind, entity, day, part) like an
    hourly object's. Raises `UnsafeSegment` as `object_key` does."""
    d = floor_day(day)
    hourly = object_key(kind, space, name, version, d, part)
    folder = hourly.rpartition(f"/hour={d.hour}/")[0]
    return f"{folder}/{kind.name}-{d:%Y%m%d}-{part:04d}.parquet"
