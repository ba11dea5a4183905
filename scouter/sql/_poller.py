"""SQL text of the drift engine (spec §5.4, §6.2): claim a due profile as a lease, read the aggregates a check
needs, store its alerts and reschedule it.

A claim is a **lease**: the row is marked ``processing`` with an expiry and a fresh ``lease_token``. Every later
write about that check (alerts, reschedule, failure, release) first locks the row *by its token*, so a worker whose
lease expired and was taken over by another one writes nothing (the token is a fencing token): a check's alerts are
stored at most once per window, and an expired lease is simply claimable again (the stale-task reaper is the claim
itself).

Parameters are positional (asyncpg ``$n``); the comment above each statement lists them. The aggregate queries read
one check's window (below) and push the grouping into PostgreSQL.

**Windows.** Successive checks of one profile tile time: check *k* reads ``[start, end)`` on ``created_at``, where
``start`` is the bound the previous check stored (``previous_run``) and ``end`` its own bound, fixed when it starts
reading (`WINDOW_BOUND`) and stored with the reschedule in the closing, lease-fenced transaction. A late check reads
everything since the last bound once. ``created_at`` is the client's, so a row may be created before a bound and
committed after the check read (a transaction in flight at the bound, a client clock behind, a Kafka backlog days
old). Such a row is not lost and not judged twice: the check reads in one REPEATABLE READ snapshot, stores that
snapshot with its bound, and the next check also reads the rows *before* its start that were committed after that
snapshot (``written_xid``, the storing transaction, not visible in it: the transactional-outbox rule), counted as
late. By induction check *k* judges exactly the rows visible in its snapshot with ``created_at`` before its bound
that no earlier check judged. A settle lag on the bound was the other option; it was not taken because it only
covers writers faster than the lag, while created_at comes from clients (their clocks and queues), so no lag is long
enough, and a long one delays every alert by it. The time part stays a plain ``[start, end)`` so whole grains of
it can later be read from rollups; only the late part needs the raw rows, found through ``drift_arrivals`` (the
transactions that stored an entity's records, logged by a statement trigger) so that no index over every record
row is needed.
"""

from __future__ import annotations

from typing import Final

# $1 lease seconds (float), $2 worker id. One due, active profile; pending, or processing with an expired lease.
# A processing row without a lease can only come from before leases existed: it is claimable at once.
CLAIM_DUE_PROFILE: Final = """
WITH due AS (
    SELECT uid, status AS was_status, claimed_by AS was_claimed_by
    FROM scouter.drift_profile
    WHERE active
      AND next_run <= now()
      AND (status = 'pending' OR coalesce(lease_expires_at, '-infinity') < now())
    ORDER BY next_run
    LIMIT 1
    FOR UPDATE SKIP LOCKED
)
UPDATE scouter.drift_profile AS p
SET status = 'processing',
    processing_started_at = now(),
    lease_expires_at = now() + make_interval(secs => $1),
    claimed_by = $2,
    lease_token = gen_random_uuid(),
    updated_at = now()
FROM due
WHERE p.uid = due.uid
RETURNING p.uid, p.space, p.name, p.version, p.drift_type, p.profile, p.schedule, p.next_run, p.previous_run,
          p.previous_snapshot::text AS previous_snapshot, p.failures, p.lease_token, due.was_status, due.was_claimed_by
"""

# No parameters. Seconds until the earliest pending profile is due or the earliest lease expires (NULL: none).
SECONDS_UNTIL_DUE: Final = """
SELECT extract(epoch FROM least(
    (SELECT min(next_run) FROM scouter.drift_profile WHERE active AND status = 'pending'),
    (SELECT min(lease_expires_at) FROM scouter.drift_profile WHERE active AND status = 'processing')
) - now())::float8 AS seconds
"""

# $1 uid, $2 lease token. Locks the row for the closing transaction; no row: the lease was lost.
LOCK_LEASE: Final = """
SELECT schedule, next_run, failures, now() AS now
FROM scouter.drift_profile
WHERE uid = $1 AND lease_token = $2 AND status = 'processing'
FOR UPDATE
"""

# $1 space, $2 name, $3 version, $4 drift type, $5 jsonb array of alert maps. One row per map, in order;
# entity_name is the map's own or "NA" (spec §6.2).
INSERT_ALERTS: Final = """
INSERT INTO scouter.drift_alert (space, name, version, entity_name, alert, drift_type)
SELECT $1, $2, $3, coalesce(a.alert ->> 'entity_name', 'NA'), a.alert, $4
FROM jsonb_array_elements($5::jsonb) WITH ORDINALITY AS a(alert, position)
ORDER BY a.position
RETURNING id, created_at, alert
"""

# $1 uid, $2 lease token, $3 previous_run (the bound of the window just checked), $4 next_run, $5 note (NULL when all
# is well), $6 the snapshot the check read in (text).
RESCHEDULE: Final = """
UPDATE scouter.drift_profile
SET status = 'pending',
    previous_run = $3,
    previous_snapshot = $6::text::pg_snapshot,
    next_run = $4,
    processing_started_at = NULL,
    lease_expires_at = NULL,
    claimed_by = NULL,
    lease_token = NULL,
    failures = 0,
    last_error = $5,
    updated_at = now()
WHERE uid = $1 AND lease_token = $2
"""

# $1 uid, $2 lease token, $3 next_run (the retry), $4 error text. previous_run stays: the retry covers the same data.
RECORD_FAILURE: Final = """
UPDATE scouter.drift_profile
SET status = 'pending',
    next_run = $3,
    processing_started_at = NULL,
    lease_expires_at = NULL,
    claimed_by = NULL,
    lease_token = NULL,
    failures = failures + 1,
    last_error = $4,
    updated_at = now()
WHERE uid = $1 AND lease_token = $2
"""

# $1 uid, $2 lease token. A worker stopping mid-check hands the task back untouched: due again at once.
RELEASE_LEASE: Final = """
UPDATE scouter.drift_profile
SET status = 'pending',
    processing_started_at = NULL,
    lease_expires_at = NULL,
    claimed_by = NULL,
    lease_token = NULL,
    updated_at = now()
WHERE uid = $1 AND lease_token = $2 AND status = 'processing'
"""

# $1 the previous bound (NULL: never checked). First statement of a check's REPEATABLE READ transaction: its bound
# (never before the previous one, should the clock step back) and the snapshot every read of the check uses.
WINDOW_BOUND: Final = """
SELECT greatest(now(), $1::timestamptz) AS bound, pg_current_snapshot()::text AS snapshot
"""


_ENTITY = "space = $1 AND name = $2 AND version = $3"


def late_arrivals(drift_type: str, start: str, snapshot: str) -> str:
    """The CTE ``late_arrivals``: the transactions that stored rows of the entity ($1 space, $2 name, $3 version)
    dated before ``start`` (a placeholder, the window start) that the previous check's ``snapshot`` (a placeholder,
    its text) did not show; found through `drift_arrivals` (usually none). `late_rows` reads their rows."""
    return f"""late_arrivals AS (
    SELECT written_xid, oldest FROM scouter.drift_arrivals
    WHERE {_ENTITY} AND drift_type = '{drift_type}' AND oldest < {start}
      AND written_xid >= pg_snapshot_xmin({snapshot}::text::pg_snapshot)
      AND NOT pg_visible_in_snapshot(written_xid, {snapshot}::text::pg_snapshot)
)"""


def late_rows(start: str) -> str:
    """Beside the entity's condition: the rows dated before ``start`` stored by `late_arrivals`' transactions, read by
    the entity's created_at index between the oldest of them and ``start``."""
    return f"""created_at < {start} AND created_at >= (SELECT min(oldest) FROM late_arrivals)
      AND written_xid = ANY (ARRAY(SELECT written_xid FROM late_arrivals))"""


def _judged(table: str, drift_type: str, columns: str, restriction: str, select: str) -> str:
    """``WITH late_arrivals ... SELECT select FROM (...) AS judged``: over the rows one check judges, ``late``
    marking those committed after the previous check read.

    Parameters of every statement built on it: $1 space, $2 name, $3 version, $4 window start (NULL: from the
    beginning), $5 window end (exclusive), $6 the previous check's snapshot (text; NULL: judge by time alone),
    $7 the names the check is restricted to. The window's rows visible now, plus the late rows before the window."""
    return f"""
WITH {late_arrivals(drift_type, "$4", "$6")}
SELECT {select}
FROM (
    SELECT {columns}, false AS late FROM scouter.{table}
    WHERE {_ENTITY} AND created_at >= coalesce($4::timestamptz, '-infinity') AND created_at < $5 AND {restriction}
    UNION ALL
    SELECT {columns}, true AS late FROM scouter.{table}
    WHERE {_ENTITY} AND {late_rows("$4")} AND {restriction}
) AS judged"""


# Per feature, every value of the window, newest first (the columns are cut to the shortest afterwards), and how
# many of them were late. Equal created_at are ordered by value, as the SPC summaries order them (upstream leaves
# that order arbitrary). $7: the features (empty: every feature of the entity).
_SPC_FEATURES = "(cardinality($7::text[]) = 0 OR feature = ANY($7::text[]))"
SPC_VALUES: Final = (
    _judged(
        "spc_drift",
        "Spc",
        "feature, value, created_at",
        _SPC_FEATURES,
        "feature, array_agg(value ORDER BY created_at DESC, value DESC) AS values,"
        " count(*) FILTER (WHERE late) AS late",
    )
    + "\nGROUP BY feature\n"
)

# Per (feature, bin): the feature's sample size (every count of the window) and the bin's share of it; late rows.
# $7: the monitored features.
_PSI_SELECT = """feature,
       bin_id,
       (sum(sum(bin_count)) OVER w)::bigint AS sample_size,
       sum(bin_count)::float8 / nullif(sum(sum(bin_count)) OVER w, 0)::float8 AS proportion,
       count(*) FILTER (WHERE late) AS late"""
PSI_DISTRIBUTIONS: Final = (
    _judged("psi_drift", "Psi", "feature, bin_id, bin_count", "feature = ANY($7::text[])", _PSI_SELECT)
    + "\nGROUP BY feature, bin_id\nWINDOW w AS (PARTITION BY feature)\n"
)

# Per metric, the window's mean, and its late rows. $7: the metric names.
CUSTOM_AVERAGES: Final = (
    _judged(
        "custom_drift",
        "Custom",
        "metric, value",
        "metric = ANY($7::text[])",
        "metric, avg(value)::float8 AS value, count(*) FILTER (WHERE late) AS late",
    )
    + "\nGROUP BY metric\n"
)

# $1 space, $2 name, $3 version, $4 drift type, $5 the snapshot the check just stored (text). In the closing
# transaction: arrivals that snapshot shows can never be late for a later check of this profile.
PRUNE_ARRIVALS: Final = """
DELETE FROM scouter.drift_arrivals
WHERE space = $1 AND name = $2 AND version = $3 AND drift_type = $4
  AND pg_visible_in_snapshot(written_xid, $5::text::pg_snapshot)
"""

# No parameters. For the due-profiles gauge: claimable now (due and pending, or with an expired lease), and among
# those the expired leases.
DUE_COUNTS: Final = """
SELECT count(*) AS due,
       count(*) FILTER (WHERE status = 'processing') AS expired
FROM scouter.drift_profile
WHERE active
  AND next_run <= now()
  AND (status = 'pending' OR coalesce(lease_expires_at, '-infinity') < now())
"""
