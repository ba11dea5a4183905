"""SQL text of the drift engine (spec §5.4, §6.2): claim a due profile as a lease, read the aggregates a check
needs, store its alerts and reschedule it.

A claim is a **lease**: the row is marked ``processing`` with an expiry and a fresh ``lease_token``. Every later
write about that check (alerts, reschedule, failure, release) first locks the row *by its token*, so a worker whose
lease expired and was taken over by another one writes nothing (the token is a fencing token): a check's alerts are
stored at most once per due time, and an expired lease is simply claimable again (the stale-task reaper is the claim
itself).

Parameters are positional (asyncpg ``$n``); the comment above each statement lists them. The aggregate queries read
only rows with ``created_at > since`` (the previous run) and push the grouping into PostgreSQL.
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
          p.failures, p.lease_token, due.was_status, due.was_claimed_by
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

# $1 uid, $2 lease token, $3 previous_run (the due time just checked), $4 next_run, $5 note (NULL when all is well).
RESCHEDULE: Final = """
UPDATE scouter.drift_profile
SET status = 'pending',
    previous_run = $3,
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

# $1 space, $2 name, $3 version, $4 since (exclusive), $5 features (empty: every feature of the entity).
# Per feature, every value since `since`, newest first; the columns are cut to the shortest afterwards.
SPC_VALUES: Final = """
SELECT feature, array_agg(value ORDER BY created_at DESC) AS values
FROM scouter.spc_drift
WHERE space = $1 AND name = $2 AND version = $3 AND created_at > $4
  AND (cardinality($5::text[]) = 0 OR feature = ANY($5::text[]))
GROUP BY feature
"""

# $1 space, $2 name, $3 version, $4 since (exclusive), $5 monitored features.
# Per (feature, bin): the feature's sample size (every count since `since`) and the bin's share of it.
PSI_DISTRIBUTIONS: Final = """
SELECT feature,
       bin_id,
       (sum(sum(bin_count)) OVER w)::bigint AS sample_size,
       sum(bin_count)::float8 / nullif(sum(sum(bin_count)) OVER w, 0)::float8 AS proportion
FROM scouter.psi_drift
WHERE space = $1 AND name = $2 AND version = $3 AND created_at > $4 AND feature = ANY($5::text[])
GROUP BY feature, bin_id
WINDOW w AS (PARTITION BY feature)
"""

# $1 space, $2 name, $3 version, $4 since (exclusive), $5 metric names.
CUSTOM_AVERAGES: Final = """
SELECT metric, avg(value)::float8 AS value
FROM scouter.custom_drift
WHERE space = $1 AND name = $2 AND version = $3 AND created_at > $4 AND metric = ANY($5::text[])
GROUP BY metric
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
