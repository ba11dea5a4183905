"""SQL text of the alert dispatcher (an outbox) and of the alert routes (spec §2.11, §7).

Every ``drift_alert`` row carries ``dispatch_state``:

* ``pending``: stored, not yet planned (the dispatcher's to-do list; a partial index keeps it cheap);
* ``dispatching``: its message's deliveries exist and some are still pending;
* ``sent`` / ``failed``: every delivery of its message ended, all sent / at least one failed;
* ``skipped``: stored before dispatch existed (migration 20), never sent.

*Planning* turns pending alerts into deliveries (``scouter.alert_delivery``: one message on one channel, with the
rendered request body, its state, attempts, next attempt, last status and error) and marks the alerts
``dispatching``, in one transaction under a transaction-level advisory lock, so two replicas never plan one check
twice or split it. *Delivering* claims due deliveries with ``FOR UPDATE SKIP LOCKED`` as a lease (a fresh token and
``next_attempt_at`` pushed ``lease`` seconds ahead): a dispatcher that dies mid-send leaves a lease that simply
expires, and the delivery is due again. Every outcome is written by presenting the token, so a dispatcher whose
lease was taken over records nothing.

Parameters are positional (asyncpg ``$n``); the comment above each statement lists them.
"""

from __future__ import annotations

from typing import Final

#: pg_try_advisory_xact_lock key serialising planners ("scouter" in ASCII, then 0x01).
DISPATCH_PLAN_LOCK_KEY: Final = 0x73636F7574657201

# No parameters besides the key ($1).
TRY_PLAN_LOCK: Final = "SELECT pg_try_advisory_xact_lock($1)"

# $1 how many distinct created_at moments (checks) to take. Pending alerts of the oldest checks, whole checks only,
# with their profile (NULL when it no longer exists).
PENDING_ALERTS: Final = """
WITH moments AS (
    SELECT DISTINCT created_at
    FROM scouter.drift_alert
    WHERE dispatch_state = 'pending'
    ORDER BY created_at
    LIMIT $1
)
SELECT a.created_at, a.id, a.space, a.name, a.version, a.entity_name, a.alert::text AS alert, a.drift_type,
       a.window_start, p.profile::text AS profile, p.schedule
FROM scouter.drift_alert AS a
JOIN moments AS m ON m.created_at = a.created_at
LEFT JOIN scouter.drift_profile AS p
       ON p.space = a.space AND p.name = a.name AND p.version = a.version AND p.drift_type = a.drift_type
WHERE a.dispatch_state = 'pending'
ORDER BY a.created_at, a.id
"""

# $1 space, $2 name, $3 version, $4 window start (NULL: every record), $5 window end, $6 names.
# Records per feature or metric in a check's window: SPC points, PSI values counted into bins, custom records.
SPC_SAMPLES: Final = """
SELECT feature AS entity, count(*)::bigint AS n
FROM scouter.spc_drift
WHERE space = $1 AND name = $2 AND version = $3
  AND created_at > coalesce($4::timestamptz, '-infinity') AND created_at <= $5 AND feature = ANY($6::text[])
GROUP BY feature
"""
PSI_SAMPLES: Final = """
SELECT feature AS entity, sum(bin_count)::bigint AS n
FROM scouter.psi_drift
WHERE space = $1 AND name = $2 AND version = $3
  AND created_at > coalesce($4::timestamptz, '-infinity') AND created_at <= $5 AND feature = ANY($6::text[])
GROUP BY feature
"""
CUSTOM_SAMPLES: Final = """
SELECT metric AS entity, count(*)::bigint AS n
FROM scouter.custom_drift
WHERE space = $1 AND name = $2 AND version = $3
  AND created_at > coalesce($4::timestamptz, '-infinity') AND created_at <= $5 AND metric = ANY($6::text[])
GROUP BY metric
"""

# $1 alert created_at, $2 alert ids, $3 space, $4 name, $5 version, $6 drift type, $7 message key, $8 channel,
# $9 note, $10 payload (JSON text). A message already planned on that channel is left alone.
INSERT_DELIVERY: Final = """
INSERT INTO scouter.alert_delivery
    (alert_created_at, alert_ids, space, name, version, drift_type, message_key, channel, note, payload)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
ON CONFLICT (alert_created_at, message_key, channel) DO NOTHING
"""

# $1 created_at of each alert, $2 its id (same length).
MARK_PLANNED: Final = """
UPDATE scouter.drift_alert
SET dispatch_state = 'dispatching'
WHERE (created_at, id) IN (SELECT * FROM unnest($1::timestamptz[], $2::integer[]))
  AND dispatch_state = 'pending'
"""

# $1 how many, $2 lease seconds, $3 worker id, $4 channels to leave alone (paused after a 429).
# Due deliveries (pending, next attempt reached: never claimed, retry due, or a lease that expired), oldest first.
CLAIM_DELIVERIES: Final = """
WITH due AS (
    SELECT id, lease_token AS was_token, claimed_by AS was_claimed_by
    FROM scouter.alert_delivery
    WHERE state = 'pending' AND next_attempt_at <= now() AND NOT (channel = ANY($4::text[]))
    ORDER BY next_attempt_at, id
    LIMIT $1
    FOR UPDATE SKIP LOCKED
)
UPDATE scouter.alert_delivery AS d
SET next_attempt_at = now() + make_interval(secs => $2),
    lease_token = gen_random_uuid(),
    claimed_by = $3,
    updated_at = now()
FROM due
WHERE d.id = due.id
RETURNING d.id, d.channel, d.payload, d.attempts, d.lease_token, d.message_key, d.alert_ids,
          d.alert_created_at, d.space, d.name, d.version, d.drift_type,
          due.was_token IS NOT NULL AS reclaimed, due.was_claimed_by
"""

# $1 channels to leave alone. Seconds until the next delivery is due (NULL: none pending).
SECONDS_UNTIL_DELIVERY: Final = """
SELECT extract(epoch FROM min(next_attempt_at) - now())::float8
FROM scouter.alert_delivery
WHERE state = 'pending' AND NOT (channel = ANY($1::text[]))
"""

# $1 alert created_at, $2 alert ids. Taken before a final outcome is written, so that two deliveries of one
# message finishing at once roll the alerts' state up one after the other (each seeing the other's outcome).
LOCK_ALERTS: Final = """
SELECT id FROM scouter.drift_alert WHERE created_at = $1 AND id = ANY($2::integer[]) FOR UPDATE
"""

# $1 delivery id, $2 lease token, $3 new state, $4 seconds until the next attempt, $5 HTTP status, $6 error.
# No row: the lease was lost (another dispatcher took the delivery over).
RECORD_ATTEMPT: Final = """
UPDATE scouter.alert_delivery
SET state = $3,
    attempts = attempts + 1,
    next_attempt_at = now() + make_interval(secs => $4),
    last_status = $5,
    last_error = $6,
    sent_at = CASE WHEN $3 = 'sent' THEN now() ELSE sent_at END,
    lease_token = NULL,
    claimed_by = NULL,
    updated_at = now()
WHERE id = $1 AND lease_token = $2
RETURNING attempts
"""

# $1 alert created_at, $2 alert ids. The alerts' dispatch_state from their message's deliveries.
ROLL_UP_ALERTS: Final = """
UPDATE scouter.drift_alert AS a
SET dispatch_state = s.state
FROM (
    SELECT CASE WHEN bool_or(state = 'pending') THEN 'dispatching'
                WHEN bool_or(state = 'failed') THEN 'failed'
                ELSE 'sent' END AS state
    FROM scouter.alert_delivery
    WHERE alert_created_at = $1 AND alert_ids && $2::integer[]
    HAVING count(*) > 0
) AS s
WHERE a.created_at = $1 AND a.id = ANY($2::integer[]) AND a.dispatch_state IS DISTINCT FROM s.state
"""

# $1 days. Finished deliveries older than that.
PURGE_DELIVERIES: Final = """
DELETE FROM scouter.alert_delivery WHERE state <> 'pending' AND updated_at < now() - make_interval(days => $1)
"""

# --- the alert routes -------------------------------------------------------------------------------------------

# $1 space, $2 name, $3 version, $4 since (NULL: no bound), $5 active only, $6 limit (NULL: all).
# Upstream's filter (§2.11): active=false means every alert (§12 #15); newest first.
LIST_ALERTS: Final = """
SELECT created_at, name, space, version, entity_name, alert::text AS alert, id, drift_type, active
FROM scouter.drift_alert
WHERE space = $1 AND name = $2 AND version = $3
  AND ($4::timestamptz IS NULL OR created_at >= $4::timestamptz)
  AND (NOT $5::boolean OR active)
ORDER BY created_at DESC, id DESC
LIMIT $6::bigint
"""

# $1 id, $2 active, $3 space. The space must match too, so a writer of one space cannot flip another's alert by id.
SET_ALERT_ACTIVE: Final = """
UPDATE scouter.drift_alert
SET active = $2, updated_at = now()
WHERE id = $1 AND space = $3
RETURNING id, active, updated_at
"""
