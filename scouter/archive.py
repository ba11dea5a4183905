"""The archive's layout and rules (server.md §8): which rows go, where each object lives, what a query reads.

Pure values and functions; the archiver and the read-back in ``actors/`` do the I/O.

* Rows older than ``DATA_RETENTION_PERIOD`` days are archived by whole UTC hours: the cut-off is floored to the
  hour, so an hour is normally written once, as one object per (record kind, entity, hour).
* Objects follow upstream's Hive layout (`object_key`) with a deterministic name: the kind, the hour and a *part*
  number. Part 0 holds the hour's rows; rows that arrive late for an hour already archived go to the next part
  (never into a rewrite of a committed object: committed objects are immutable, so a reader and the
  ``archive_log`` manifest can never disagree). A pass that crashes after uploading a part but before committing it
  writes the same part number again on the re-run, overwriting the orphan instead of duplicating it.
* Space, name and version may be any text upstream stores (``org/model``, ``..``, control characters), so each is
  percent-encoded into exactly one path segment (`encode_segment`) and the object's file name carries a digest of
  the entity (`entity_tag`), so names that a case- or normalisation-insensitive file system folds together never
  share a file. Only the empty string cannot be a folder: the archiver quarantines such rows (`segment_problem`).
  Objects written before this encoding keep their recorded paths: the read-back follows ``archive_log``.
* Once a UTC day is complete (wholly before the cut-off) its objects are compacted into one per (kind, entity,
  day), `day_object_key`, in the day's folder (no ``hour=`` level); ``archive_log`` then lists that object alone.
* A drift query consults the archive only when its window begins before `archive_boundary`: archived rows are all
  older than the archiver's cut-off, which is never later than that boundary.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from datetime import UTC, datetime, timedelta
from typing import Final

import attrs
import orjson

__all__ = [
    "KINDS",
    "MAX_SEGMENT_BYTES",
    "ArchiveKind",
    "UnsafeSegment",
    "archive_boundary",
    "archive_cutoff",
    "day_object_key",
    "decode_segment",
    "encode_segment",
    "entity_tag",
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
    """Why `value` cannot be archived as a space, name or version, or None when it can: only the empty string (no
    route stores one, but rows may reach the table by other roads than the codec)."""
    return "must not be empty" if not value else None


#: Characters percent-encoded in a segment besides the control characters: '%' itself, so that no escape in a name
#: survives as one ('%2e%2e' becomes '%252e%252e', which decodes to '%2e%2e', never to '..'), and both separators.
_ESCAPED: Final = frozenset("%/\\")
#: Marks a segment cut to fit MAX_SEGMENT_BYTES; '%' followed by a non-hex digit never comes out of an escape.
_HASHED: Final = "%~"
_HASH_HEX: Final = 32  # 128 bits of SHA-256
_ESCAPE = re.compile(r"(?:%[0-9A-F]{2})+")


def _escape(char: str) -> str:
    return "".join(f"%{byte:02X}" for byte in char.encode("utf-8", "surrogatepass"))


def encode_segment(value: str) -> str:
    """`value` as one folder name: never empty, ``.``, ``..``, never holding ``/``, ``\\`` or a control character,
    at most MAX_SEGMENT_BYTES bytes, and one-to-one (distinct names give distinct segments).

    ``%``, ``/``, ``\\`` and control characters (Unicode Cc) are percent-encoded as UTF-8 with upper-case hex; the
    names ``.`` and ``..`` become ``%2E`` and ``%2E%2E``; everything else is kept, so ordinary names keep their
    folders. A segment still too long keeps a prefix of whole characters and escapes and ends in ``%~`` and a hash
    of the whole name.
    """
    if value in (".", ".."):
        return value.replace(".", "%2E")
    pieces = [_escape(c) if c in _ESCAPED or unicodedata.category(c) == "Cc" else c for c in value]
    segment = "".join(pieces)
    if len(segment.encode("utf-8", "surrogatepass")) <= MAX_SEGMENT_BYTES:
        return segment
    room = MAX_SEGMENT_BYTES - len(_HASHED) - _HASH_HEX
    prefix = []
    for piece in pieces:
        room -= len(piece.encode("utf-8", "surrogatepass"))
        if room < 0:
            break
        prefix.append(piece)
    digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:_HASH_HEX]
    return "".join(prefix) + _HASHED + digest


def decode_segment(segment: str) -> str | None:
    """The name `encode_segment` made `segment` from; None for a hashed (cut) segment, which cannot be reversed."""
    if _HASHED in segment:
        return None
    return _ESCAPE.sub(lambda m: bytes.fromhex(m.group().replace("%", "")).decode("utf-8", "surrogatepass"), segment)


def entity_tag(space: str, name: str, version: str) -> str:
    """16 hex digits of SHA-256 over the exact entity: part of every object's file name, so two entities whose
    folders a case-insensitive (or Unicode-normalising) file system folds into one never write the same file."""
    return hashlib.sha256(orjson.dumps([space, name, version])).hexdigest()[:16]


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


def object_name(kind: ArchiveKind, hour: datetime, part: int, tag: str) -> str:
    """``spc-2026070305-0000-<entity tag>.parquet``: deterministic per (kind, hour, part, entity), so a re-run
    overwrites. (Objects written before the tag was added have no tag; archive_log records their names.)"""
    if part < 0:
        raise ValueError(f"part must not be negative, got {part}")
    return f"{kind.name}-{floor_hour(hour):%Y%m%d%H}-{part:04d}-{tag}.parquet"


def object_key(kind: ArchiveKind, space: str, name: str, version: str, hour: datetime, part: int) -> str:
    """The object's path under the storage root, in upstream's layout (no zero padding in partition values), each of
    space, name and version encoded into one segment (`encode_segment`):
    ``{space}/{name}/{version}/{kind}/year=YYYY/month=M/day=D/hour=H/<object_name>``.

    Raises `UnsafeSegment` when space, name or version is empty.
    """
    entity = (("space", space), ("name", name), ("version", version))
    for field, value in entity:
        problem = segment_problem(value)
        if problem is not None:
            raise UnsafeSegment(f"{field}: {problem}, got {value!r}")
    folders = "/".join(encode_segment(value) for _, value in entity)
    h = floor_hour(hour)
    partition = f"year={h.year}/month={h.month}/day={h.day}/hour={h.hour}"
    return f"{folders}/{kind.name}/{partition}/{object_name(kind, h, part, entity_tag(space, name, version))}"


def floor_day(moment: datetime) -> datetime:
    """The start of `moment`'s UTC day, timezone-aware."""
    return floor_hour(moment).replace(hour=0)


def day_object_key(kind: ArchiveKind, space: str, name: str, version: str, day: datetime, part: int) -> str:
    """A compacted day's object: the day's folder of `object_key` (no ``hour=`` level, so the Hive layout stays
    ``year=/month=/day=``) and ``spc-20260703-0001-<entity tag>.parquet``, deterministic per (kind, entity, day,
    part) like an hourly object's. Raises `UnsafeSegment` as `object_key` does."""
    d = floor_day(day)
    hourly = object_key(kind, space, name, version, d, part)
    folder = hourly.rpartition(f"/hour={d.hour}/")[0]
    return f"{folder}/{kind.name}-{d:%Y%m%d}-{part:04d}-{entity_tag(space, name, version)}.parquet"
