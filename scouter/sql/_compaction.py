"""SQL of the archive's daily compaction (`actors.archive_compactor`): the statements on ``scouter.archive_log``.

An ``archive_log`` entry covers ``[hour, hour + span)``: one hour for the archiver's objects, one day for a
compacted one (migration 310). Retired objects, whose entries were replaced by a daily object in the same
transaction, are listed in ``scouter.archive_retired`` until they are deleted from the store, so a crash between
the commit and the deletion leaves the next pass a list to finish, never an unlisted duplicate in the store.
"""

from __future__ import annotations

from typing import Final

#: The (kind, space, name, version, day) to compact: days wholly before $1 (the archiver's cut-off) that have hourly
#: entries (a compacted day has none until late rows add one; the partial index of migration 310 keeps this scan to
#: those few entries, however long the archive). $2 the kinds. Entries are aligned on UTC hours, so a day's entries
#: are exactly those whose hour floors to it. (objects, rows): the hourly entries' only, for the log.
COMPACTION_PLAN: Final = """
SELECT kind, space, name, version,
       date_bin('1 day', hour, TIMESTAMPTZ '1970-01-01 00:00:00+00') AS day,
       count(*) AS objects, sum(rows) AS rows
FROM scouter.archive_log
WHERE span = interval '1 hour' AND kind = ANY($2::text[])
GROUP BY 1, 2, 3, 4, 5
HAVING date_bin('1 day', max(hour), TIMESTAMPTZ '1970-01-01 00:00:00+00') + interval '1 day' <= $1
ORDER BY 1, 2, 3, 4, 5
"""

#: The entries of one day, oldest first: $1 kind, $2 space, $3 name, $4 version, $5 day start.
DAY_ENTRIES: Final = """
SELECT hour, part, span, object_path, rows, bytes FROM scouter.archive_log
WHERE kind = $1 AND space = $2 AND name = $3 AND version = $4
  AND hour >= $5::timestamptz AND hour < $5::timestamptz + interval '1 day'
ORDER BY hour, part
"""

#: The part number of the day's object: the next free one among the entries starting at the day's first hour (the
#: primary key is (kind, entity, hour, part)), the same on a re-run after a crash, so that run overwrites the orphan.
NEXT_DAY_PART: Final = """
SELECT coalesce(max(part) + 1, 0) FROM scouter.archive_log
WHERE kind = $1 AND space = $2 AND name = $3 AND version = $4 AND hour = $5
"""

#: Retire the listed entries ($5 the object paths) of one day; the caller checks every one was still there.
RETIRE_ENTRIES: Final = """
DELETE FROM scouter.archive_log
WHERE kind = $1 AND space = $2 AND name = $3 AND version = $4 AND object_path = ANY($5::text[])
RETURNING object_path
"""

#: $1 kind, $2 space, $3 name, $4 version, $5 day start, $6 part, $7 object_path, $8 rows, $9 bytes. Also takes the
#: object off archive_retired, where it was listed just before its upload (see `actors.archive_compactor`).
INSERT_DAY_ENTRY: Final = """
WITH written AS (DELETE FROM scouter.archive_retired WHERE object_path = $7)
INSERT INTO scouter.archive_log (kind, space, name, version, hour, part, span, object_path, rows, bytes)
VALUES ($1, $2, $3, $4, $5, $6, interval '1 day', $7, $8, $9)
"""

#: $1 the object paths retired (or, one at a time, a daily object about to be written: garbage unless its day commits).
INSERT_RETIRED: Final = """
INSERT INTO scouter.archive_retired (object_path) SELECT unnest($1::text[]) ON CONFLICT DO NOTHING
"""

#: Objects still to delete from the store: retired ones, and daily ones whose day never committed (left by a pass
#: that stopped before deleting them).
LIST_RETIRED: Final = "SELECT object_path FROM scouter.archive_retired ORDER BY object_path"

#: $1 the object paths now deleted from the store.
FORGET_RETIRED: Final = "DELETE FROM scouter.archive_retired WHERE object_path = ANY($1::text[])"
