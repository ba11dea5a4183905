"""SQL text of the SPC write-time summaries (`scouter.drift.spc_summary`, migration 380).

Two tables, both written in the transaction that stores the rows:

* ``spc_segment``, by statement triggers on ``spc_drift``, whatever path stores the rows (the writer for every
  transport, a hand-written COPY, maintenance moving rows out of the default partition): per statement, entity and
  feature, the rows' count and first/last ``created_at``. A DELETE or UPDATE adds a segment (``n`` the negative
  count) over the rows it removed or changed. Every row stored since the horizon lies inside some segment, so a check
  that reads raw every time range not covered by a usable summary misses nothing.
* ``spc_summary``, by the writer: per transaction, entity and feature, the summary of that transaction's rows
  (sorted by created_at, then value) judged with the entity's SPC profile at write time, and the stamp of the limits
  and rule it was judged with.

A summary is used only when its segment is the only one of its transaction and feature, they agree on count and
first/last, it lies wholly inside the check's window, no other segment of the feature overlaps it (closed
intervals: an equal timestamp at an edge is an overlap), and its stamp is the profile's. Everything else is read
raw, by created_at ranges on the entity index.

``spc_summary_horizon.since``: windows that start before it are judged from the raw rows alone (rows stored before
the migration have no segment; maintenance raises it when it drops old rows, whose segments it then deletes).
"""

from __future__ import annotations

from typing import Final

from ._poller import late_arrivals, late_rows

SPC_SUMMARY_COLUMNS: Final = (
    "space", "name", "version", "feature", "first_at", "last_at", "n", "stamp", "fired", "newest", "oldest",
)  # fmt: skip

_SEGMENT_FUNCTION = """
CREATE FUNCTION scouter.log_spc_segments() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO scouter.spc_segment (space, name, version, feature, written_xid, first_at, last_at, n)
        SELECT space, name, version, feature, coalesce(written_xid, pg_current_xact_id()), min(created_at),
               max(created_at), count(*)
        FROM stored GROUP BY space, name, version, feature, written_xid;
    ELSE
        INSERT INTO scouter.spc_segment (space, name, version, feature, written_xid, first_at, last_at, n)
        SELECT space, name, version, feature, pg_current_xact_id(), min(created_at), max(created_at), -count(*)
        FROM gone GROUP BY space, name, version, feature;
        IF TG_OP = 'UPDATE' THEN
            INSERT INTO scouter.spc_segment (space, name, version, feature, written_xid, first_at, last_at, n)
            SELECT space, name, version, feature, pg_current_xact_id(), min(created_at), max(created_at), -count(*)
            FROM stored GROUP BY space, name, version, feature;
        END IF;
    END IF;
    RETURN NULL;
END
$$;
"""

# The triggers are created before the horizon is read: CREATE TRIGGER waits for the transactions storing rows to
# commit, and keeps new ones out until the migration commits, so every row stored after the horizon has a segment.
SPC_SUMMARY_TABLES: Final = (
    """
CREATE TABLE scouter.spc_segment (
    space text NOT NULL,
    name text NOT NULL,
    version text NOT NULL,
    feature text NOT NULL,
    written_xid xid8 NOT NULL,
    first_at timestamptz NOT NULL,
    last_at timestamptz NOT NULL,
    n bigint NOT NULL
);
CREATE INDEX spc_segment_entity ON scouter.spc_segment (space, name, version, last_at);

CREATE TABLE scouter.spc_summary (
    space text NOT NULL,
    name text NOT NULL,
    version text NOT NULL,
    feature text NOT NULL,
    written_xid xid8 NOT NULL DEFAULT pg_current_xact_id(),
    first_at timestamptz NOT NULL,
    last_at timestamptz NOT NULL,
    n bigint NOT NULL,
    stamp bigint NOT NULL,
    fired smallint NOT NULL,
    newest bytea NOT NULL,
    oldest bytea NOT NULL
);
CREATE INDEX spc_summary_entity ON scouter.spc_summary (space, name, version, last_at);
"""
    + _SEGMENT_FUNCTION
    + """
CREATE TRIGGER spc_drift_segments AFTER INSERT ON scouter.spc_drift REFERENCING NEW TABLE AS stored
    FOR EACH STATEMENT EXECUTE FUNCTION scouter.log_spc_segments();
CREATE TRIGGER spc_drift_segments_gone AFTER DELETE ON scouter.spc_drift REFERENCING OLD TABLE AS gone
    FOR EACH STATEMENT EXECUTE FUNCTION scouter.log_spc_segments();
CREATE TRIGGER spc_drift_segments_changed AFTER UPDATE ON scouter.spc_drift
    REFERENCING OLD TABLE AS gone NEW TABLE AS stored
    FOR EACH STATEMENT EXECUTE FUNCTION scouter.log_spc_segments();

CREATE TABLE scouter.spc_summary_horizon (since timestamptz NOT NULL);
INSERT INTO scouter.spc_summary_horizon
SELECT greatest(now(), (SELECT max(created_at) + interval '1 microsecond' FROM scouter.spc_drift));
"""
)

# $1..$11 one array per column of `SPC_SUMMARY_COLUMNS`: the writer's summaries of its transaction. One statement
# of one round trip (a COPY of these few rows would cost two, and more than the summaries' computing).
INSERT_SPC_SUMMARIES: Final = """
INSERT INTO scouter.spc_summary (space, name, version, feature, first_at, last_at, n, stamp, fired, newest, oldest)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::timestamptz[],
                     $7::bigint[], $8::bigint[], $9::smallint[], $10::bytea[], $11::bytea[])
"""

# No parameters. Windows starting before it are judged from the raw rows alone.
SPC_SUMMARY_SINCE: Final = "SELECT since FROM scouter.spc_summary_horizon"

# $1 the retention cut-off: rows before it may be gone (dropped partitions, no trigger fires), so windows starting
# before it are judged raw from now on, and the segments and summaries wholly before it go. One reaching past it
# stays: a window starting at or after the cut-off still needs it to know its rows there.
PRUNE_SPC_SUMMARIES: Final = """
WITH horizon AS (UPDATE scouter.spc_summary_horizon SET since = greatest(since, $1) RETURNING since),
     segments AS (DELETE FROM scouter.spc_segment WHERE last_at < $1 RETURNING 1),
     summaries AS (DELETE FROM scouter.spc_summary WHERE last_at < $1 RETURNING 1)
SELECT (SELECT count(*) FROM segments) + (SELECT count(*) FROM summaries)
"""

# $1 space, $2 name, $3 version, $4 window start, $5 window end (exclusive), $6 features (empty: all). How many
# segments reach into the window and how many points they stored (whether summaries are worth reading).
SPC_SEGMENT_COUNT: Final = """
SELECT count(*) AS segments, coalesce(sum(greatest(n, 0)), 0)::bigint AS points
FROM scouter.spc_segment
WHERE space = $1 AND name = $2 AND version = $3 AND last_at >= $4 AND first_at < $5
  AND (cardinality($6::text[]) = 0 OR feature = ANY($6::text[]))
"""

# $1 space, $2 name, $3 version, $4 window start, $5 window end (exclusive), $6 features (empty: all). Every segment
# of the entity reaching into the window, with its transaction's summary of the feature when there is one, and how
# many (segment, summary) pairs that transaction and feature have (a summary is usable only when that is 1).
SPC_SEGMENTS: Final = """
SELECT g.feature, g.first_at, g.last_at, g.n,
       count(*) OVER (PARTITION BY g.feature, g.written_xid) AS pairs,
       s.stamp, s.fired, s.newest, s.oldest, s.n AS summary_n, s.first_at AS summary_first, s.last_at AS summary_last
FROM scouter.spc_segment AS g
LEFT JOIN scouter.spc_summary AS s
       ON s.space = $1 AND s.name = $2 AND s.version = $3 AND s.last_at >= $4 AND s.first_at < $5
      AND s.feature = g.feature AND s.written_xid = g.written_xid
WHERE g.space = $1 AND g.name = $2 AND g.version = $3 AND g.last_at >= $4 AND g.first_at < $5
  AND (cardinality($6::text[]) = 0 OR g.feature = ANY($6::text[]))
"""

# $1 space, $2 name, $3 version, $4 span starts, $5 span ends (exclusive): disjoint time spans, each read once on
# the entity index; $6 each range's span (1-based), $7 its feature, $8 its start, $9 its end (exclusive). Per range
# (1-based position), the feature's values in it, newest first (ties in created_at by value, as the raw check).
SPC_RANGE_VALUES: Final = """
SELECT r.k, array_agg(d.value ORDER BY d.created_at DESC, d.value DESC) AS values
FROM unnest($4::timestamptz[], $5::timestamptz[]) WITH ORDINALITY AS u(lo, hi, i)
CROSS JOIN LATERAL (
    SELECT feature, created_at, value FROM scouter.spc_drift
    WHERE space = $1 AND name = $2 AND version = $3 AND created_at >= u.lo AND created_at < u.hi
) AS d
JOIN unnest($6::bigint[], $7::text[], $8::timestamptz[], $9::timestamptz[])
     WITH ORDINALITY AS r(span, feature, lo, hi, k)
  ON r.span = u.i AND r.feature = d.feature AND d.created_at >= r.lo AND d.created_at < r.hi
GROUP BY r.k
"""

# $1 space, $2 name, $3 version, $4 window start, $5 the previous check's snapshot (text), $6 features (empty: all).
# Per feature, the late rows (before the window, stored by transactions that snapshot did not show), newest first.
SPC_LATE_VALUES: Final = f"""
WITH {late_arrivals("Spc", "$4", "$5")}
SELECT feature, array_agg(value ORDER BY created_at DESC, value DESC) AS values
FROM scouter.spc_drift
WHERE space = $1 AND name = $2 AND version = $3 AND {late_rows("$4")}
  AND (cardinality($6::text[]) = 0 OR feature = ANY($6::text[]))
GROUP BY feature
"""

# $1 (space, name, version) triples as three text arrays: $1 spaces, $2 names, $3 versions. The SPC profiles of
# those entities (the writer's limits cache).
SPC_PROFILES_OF: Final = """
SELECT p.space, p.name, p.version, p.profile::text AS profile
FROM unnest($1::text[], $2::text[], $3::text[]) AS e(space, name, version)
JOIN scouter.drift_profile AS p
  ON p.space = e.space AND p.name = e.name AND p.version = e.version AND p.drift_type = 'Spc'
"""
