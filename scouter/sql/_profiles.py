"""SQL of the profile routes (server.md §2.8). One row per (space, name, version, drift_type): §12 #8 fixed."""

from __future__ import annotations

from typing import Final

# $1 space, $2 name, $3 version, $4 drift_type, $5 profile (JSON text), $6 schedule, $7 next_run, $8 now,
# $9 scouter_version, $10 a fresh uid (used only when the entity is new: re-registering keeps the row's uid, which
# the stored config.uid always repeats, so a 0.25 client can download the profile and feed it by uid).
# A new row starts inactive with previous_run = now (server.md §2.8; the client activates it with PUT status).
# Re-registering replaces the profile, its schedule and next_run, and keeps `active`, `status` and
# `previous_run`: the poller's "data since" point must not jump over records that arrived since its last run.
UPSERT_PROFILE: Final = """
INSERT INTO scouter.drift_profile
    (uid, space, name, version, drift_type, profile, active, schedule, next_run, previous_run, scouter_version)
VALUES ($10, $1, $2, $3, $4, jsonb_set($5::jsonb, '{config,uid}', to_jsonb($10::text)), false, $6, $7, $8, $9)
ON CONFLICT ON CONSTRAINT drift_profile_entity DO UPDATE SET
    profile = jsonb_set(EXCLUDED.profile, '{config,uid}', to_jsonb(drift_profile.uid)),
    schedule = EXCLUDED.schedule,
    next_run = EXCLUDED.next_run,
    scouter_version = EXCLUDED.scouter_version,
    updated_at = now()
RETURNING uid, active, (xmax = 0) AS inserted
"""

# PUT /scouter/profile: $1-$7 as UPSERT_PROFILE, $8 scouter_version; recomputes the schedule (§12 #9).
UPDATE_PROFILE: Final = """
UPDATE scouter.drift_profile SET
    profile = jsonb_set($5::jsonb, '{config,uid}', to_jsonb(uid)),
    schedule = $6,
    next_run = $7,
    scouter_version = $8,
    updated_at = now()
WHERE space = $1 AND name = $2 AND version = $3 AND drift_type = $4
"""

# $1 space, $2 name, $3 version, $4 active, $5 drift_type or NULL (every drift type).
SET_PROFILE_STATUS: Final = """
UPDATE scouter.drift_profile SET active = $4, updated_at = now()
WHERE space = $1 AND name = $2 AND version = $3 AND ($5::text IS NULL OR drift_type = $5)
"""

# deactivate_others: every *other* version of the same space and name.
DEACTIVATE_OTHER_VERSIONS: Final = """
UPDATE scouter.drift_profile SET active = false, updated_at = now()
WHERE space = $1 AND name = $2 AND version <> $3 AND ($4::text IS NULL OR drift_type = $4)
"""

# $1 space, $2 name, $3 version, $4 drift_type. The jsonb comes back as text, served without re-parsing.
GET_PROFILE: Final = """
SELECT profile::text AS profile, uid, version FROM scouter.drift_profile
WHERE space = $1 AND name = $2 AND version = $3 AND drift_type = $4
"""
