"""SQL of the archive (server.md §8): the archiver's statements (PostgreSQL) and the read-back (DataFusion).

Table names come only from `scouter.archive.KINDS`; every value is a bind parameter. The DataFusion statements run
over one registered table, ``archive``, and bind ``$1``… through ``param_values`` (never keyword arguments, which
DataFusion substitutes as text: dependencies.md §4.8).
"""

from __future__ import annotations

from typing import Final

from scouter.archive import ArchiveKind

#: pg_try_advisory_lock key held for a whole archive pass ("scoutarc"): one replica archives at a time.
ARCHIVE_LOCK_KEY: Final = 0x73636F7574617263

# --- the archiver (PostgreSQL) ---------------------------------------------------------------------------------------


def archive_plan(kind: ArchiveKind) -> str:
    """(space, name, version, hour, rows) of every group still to archive; $1 the cut-off (exclusive).

    Uses the partial index on unarchived rows (migration 30), so a pass finds its work without reading the
    partitions already archived. ``date_bin`` on timestamptz is epoch-aligned: UTC hours whatever the session zone.
    """
    return f"""
SELECT space, name, version,
       date_bin('1 hour', created_at, TIMESTAMPTZ '1970-01-01 00:00:00+00') AS hour, count(*) AS rows
FROM scouter.{kind.table}
WHERE NOT archived AND created_at < $1
GROUP BY 1, 2, 3, 4
ORDER BY 1, 2, 3, 4
"""


#: One group: $1 space, $2 name, $3 version, $4 hour start (inclusive), $5 hour end (exclusive).
_GROUP = "space = $1 AND name = $2 AND version = $3 AND created_at >= $4 AND created_at < $5 AND NOT archived"


def archive_rows(kind: ArchiveKind) -> str:
    """The group's unarchived rows, oldest first: created_at in epoch microseconds (exact: extract gives numeric
    since PostgreSQL 14), then the key and value columns; the entity is known to the caller."""
    columns = ", ".join((kind.key, *kind.values))
    return f"""
SELECT (extract(epoch FROM created_at) * 1000000)::bigint AS created_us, {columns}
FROM scouter.{kind.table}
WHERE {_GROUP}
ORDER BY created_at
"""


def mark_archived(kind: ArchiveKind) -> str:
    """Flag the group's rows archived. Run in the REPEATABLE READ transaction that selected them, it touches exactly
    the rows that were written (rows committed meanwhile are not in its snapshot)."""
    return f"UPDATE scouter.{kind.table} SET archived = true, updated_at = now() WHERE {_GROUP}"


def delete_group(kind: ArchiveKind) -> str:
    """Remove the group's rows (after copying them to scouter.quarantine, same transaction and snapshot)."""
    return f"DELETE FROM scouter.{kind.table} WHERE {_GROUP}"


#: $1 kind, $2 space, $3 name, $4 version, $5 hour.
NEXT_PART: Final = """
SELECT coalesce(max(part) + 1, 0) FROM scouter.archive_log
WHERE kind = $1 AND space = $2 AND name = $3 AND version = $4 AND hour = $5
"""

#: $1 kind, $2 space, $3 name, $4 version, $5 hour, $6 part, $7 object_path, $8 rows, $9 bytes.
#:
#: Also takes the object off archive_retired. A compaction retires a day's hourly entries, so late rows for one of
#: those hours get the part number, hence the name, of a retired object; if that object is still listed there (its
#: compaction stopped before deleting it), the upload has just replaced it: it is garbage no more, and the next
#: compaction must not delete it as a leftover.
INSERT_ARCHIVE_LOG: Final = """
WITH unretired AS (DELETE FROM scouter.archive_retired WHERE object_path = $7)
INSERT INTO scouter.archive_log (kind, space, name, version, hour, part, object_path, rows, bytes)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
"""

#: $1 reason, $2 the rows as JSON (bytes).
INSERT_QUARANTINE: Final = "INSERT INTO scouter.quarantine (source, reason, raw) VALUES ('archiver', $1, $2)"

#: The committed objects that may hold rows of a window: $1 kind, $2 space, $3 name, $4 version, $5 first hour,
#: $6 window end. An entry covers [hour, hour + span): an hour, or a whole day once compacted (whose start may be up
#: to a day before the first hour; the first condition keeps the primary key's range scan).
ARCHIVE_MANIFEST: Final = """
SELECT object_path, rows, bytes, hour, span FROM scouter.archive_log
WHERE kind = $1 AND space = $2 AND name = $3 AND version = $4
  AND hour > $5::timestamptz - interval '1 day' AND hour + span > $5 AND hour <= $6
ORDER BY hour, part
"""

# --- read-back (DataFusion over table "archive") -------------------------------------------------------------------
# $1 bucket width (ns), $2 window begin, $3 window end (epoch ns, both inclusive). Buckets are epoch-aligned like
# PostgreSQL's date_bin (floored, also before 1970) and come back as epoch ns. No entity filter: every object holds
# the rows of one entity, the one archive_log lists it under, so the manifest query has already chosen the entity;
# the read-back then decodes neither space, name nor version (a third of the cold query's decoding).
_NS = "arrow_cast(created_at, 'Int64')"
_BUCKET = f"({_NS} - ((({_NS} % $1) + $1) % $1))"
_WHERE = f"{_NS} >= $2 AND {_NS} <= $3"

# feature, bucket, count, mean
ARCHIVE_SPC_BUCKETS: Final = f"""
SELECT feature, {_BUCKET} AS bucket, count(*) AS count, avg(value) AS mean
FROM archive WHERE {_WHERE}
GROUP BY feature, bucket
"""

# metric, bucket, count, mean, sample variance (NULL for one value -> 0)
ARCHIVE_CUSTOM_BUCKETS: Final = f"""
SELECT metric, {_BUCKET} AS bucket, count(*) AS count, avg(value) AS mean,
       coalesce(var_samp(value), 0.0) AS variance
FROM archive WHERE {_WHERE}
GROUP BY metric, bucket
"""

# feature, bucket, bin_id, count (features outside the profile are dropped when the response is shaped)
ARCHIVE_PSI_BUCKETS: Final = f"""
SELECT feature, {_BUCKET} AS bucket, bin_id, sum(bin_count) AS count
FROM archive WHERE {_WHERE}
GROUP BY feature, bucket, bin_id
"""

#: The aggregate statement of each kind.
ARCHIVE_BUCKETS: Final = {"spc": ARCHIVE_SPC_BUCKETS, "psi": ARCHIVE_PSI_BUCKETS, "custom": ARCHIVE_CUSTOM_BUCKETS}
