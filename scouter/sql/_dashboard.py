"""SQL of the web dashboard's own read route, ``GET /scouter/profiles`` (not an upstream route: §2.4 has no list)."""

from __future__ import annotations

from typing import Final

# $1 space or NULL (every space). What a table of profiles shows, never the profile documents themselves; the route
# drops the rows of spaces the caller may not read.
LIST_PROFILES: Final = """
SELECT uid, space, name, version, drift_type, active, schedule, next_run, previous_run, updated_at
FROM scouter.drift_profile
WHERE $1::text IS NULL OR space = $1
ORDER BY space, name, version, drift_type
"""
