"""SQL of the scouter-ml 0.25 entity paths (server-v025.md §4, §5, §10): uids, server-chosen versions, paged alerts.

The entity uid is `drift_profile.uid` (the primary key), so a uid resolves to (space, name, version, drift_type)
with one index lookup and never changes for a row.
"""

from __future__ import annotations

from typing import Final

# $1 text[] of uids.
ENTITIES_BY_UID: Final = """
SELECT uid, space, name, version, drift_type FROM scouter.drift_profile WHERE uid = ANY($1::text[])
"""

# $1 space, $2 name, $3 drift_type. Every version of the entity family, locked: two registrations of the same
# (space, name, drift_type) racing for the next version take turns (the second one sees the first one's row).
LOCK_VERSION_FAMILY: Final = """
SELECT pg_advisory_xact_lock(hashtextextended($1 || '/' || $2 || '/' || $3, 0))
"""
FAMILY_VERSIONS: Final = """
SELECT version, created_at, uid FROM scouter.drift_profile WHERE space = $1 AND name = $2 AND drift_type = $3
"""

# A 0.25 registration. $1 uid (the existing row's when the resolved version exists: a bump never hands an existing
# entity a new uid), $2 space, $3 name, $4 version, $5 drift_type, $6 profile JSON (config.uid and config.version
# already set), $7 active, $8 schedule, $9 next_run, $10 now, $11 scouter_version. On a version collision the row's
# profile, schedule and next_run are replaced and `active` is set as requested (upstream rotated the uid, §5.3 [BUG]).
REGISTER_VERSION: Final = """
INSERT INTO scouter.drift_profile
    (uid, space, name, version, drift_type, profile, active, schedule, next_run, previous_run, scouter_version)
VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8, $9, $10, $11)
ON CONFLICT ON CONSTRAINT drift_profile_entity DO UPDATE SET
    profile = EXCLUDED.profile,
    active = EXCLUDED.active,
    schedule = EXCLUDED.schedule,
    next_run = EXCLUDED.next_run,
    scouter_version = EXCLUDED.scouter_version,
    updated_at = now()
RETURNING uid
"""

# Registration's deactivate_others (§5.3): every other active version of the same space, name and drift type.
# $1 space, $2 name, $3 drift_type, $4 the registered uid.
DEACTIVATE_OTHER_ENTITIES: Final = """
UPDATE scouter.drift_profile SET active = false, updated_at = now()
WHERE space = $1 AND name = $2 AND drift_type = $3 AND uid <> $4 AND active
"""

# POST /scouter/alerts (§10.1): one page of an entity's alerts. $1 space, $2 name, $3 version, $4 drift_type,
# $5 active (NULL: all), $6 start (NULL: none), $7 end (NULL: none), $8 cursor created_at (NULL: first page),
# $9 cursor id, $10 limit + 1 (one extra row says whether there is more).
ALERTS_PAGE_NEXT: Final = """
SELECT id, created_at, entity_name, alert, active, drift_type FROM scouter.drift_alert
WHERE space = $1 AND name = $2 AND version = $3 AND drift_type = $4
  AND ($5::boolean IS NULL OR active = $5)
  AND ($6::timestamptz IS NULL OR created_at >= $6)
  AND ($7::timestamptz IS NULL OR created_at < $7)
  AND ($8::timestamptz IS NULL OR (created_at, id) < ($8, $9::bigint))
ORDER BY created_at DESC, id DESC
LIMIT $10
"""
ALERTS_PAGE_PREVIOUS: Final = """
SELECT id, created_at, entity_name, alert, active, drift_type FROM scouter.drift_alert
WHERE space = $1 AND name = $2 AND version = $3 AND drift_type = $4
  AND ($5::boolean IS NULL OR active = $5)
  AND ($6::timestamptz IS NULL OR created_at >= $6)
  AND ($7::timestamptz IS NULL OR created_at < $7)
  AND ($8::timestamptz IS NULL OR (created_at, id) > ($8, $9::bigint))
ORDER BY created_at ASC, id ASC
LIMIT $10
"""
