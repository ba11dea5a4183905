"""SQL of the binned read routes (server.md §2.10, §2.12): one statement per record table and window part.

Every statement aggregates in PostgreSQL and returns per-bucket aggregates in the mergeable forms of
`scouter.binned` (so an archived part can be merged in later). Common parameters: $1 space, $2 name, $3 version,
$4 bucket width (interval), $5 window begin, $6 window end (both inclusive). Buckets are aligned to the Unix epoch.
"""

from __future__ import annotations

from typing import Final

_BUCKET = "date_bin($4::interval, created_at, TIMESTAMPTZ '1970-01-01 00:00:00+00')"
_WHERE = "space = $1 AND name = $2 AND version = $3 AND created_at >= $5 AND created_at <= $6"

# feature, bucket, count, mean
SPC_BUCKETS: Final = f"""
SELECT feature, {_BUCKET} AS bucket, count(*) AS count, avg(value) AS mean
FROM scouter.spc_drift
WHERE {_WHERE}
GROUP BY feature, bucket
"""

# metric, bucket, count, mean, sample variance (NULL for one value -> 0)
CUSTOM_BUCKETS: Final = f"""
SELECT metric, {_BUCKET} AS bucket, count(*) AS count, avg(value) AS mean,
       coalesce(var_samp(value), 0) AS variance
FROM scouter.custom_drift
WHERE {_WHERE}
GROUP BY metric, bucket
"""

# feature, bucket, bin_id, count; $7 the profile's features (others are never shown).
PSI_BUCKETS: Final = f"""
SELECT feature, {_BUCKET} AS bucket, bin_id, sum(bin_count)::bigint AS count
FROM scouter.psi_drift
WHERE {_WHERE} AND feature = ANY($7::text[])
GROUP BY feature, bucket, bin_id
"""


def _unarchived(sql: str) -> str:
    """The same statement over the rows not archived yet: the live part of a window that also reads the archive
    (the archived rows come from Parquet then; see actors.archive_reader)."""
    if sql.count(_WHERE) != 1:
        raise ValueError("expected exactly one window predicate")
    return sql.replace(_WHERE, f"{_WHERE} AND NOT archived")


SPC_UNARCHIVED_BUCKETS: Final = _unarchived(SPC_BUCKETS)
CUSTOM_UNARCHIVED_BUCKETS: Final = _unarchived(CUSTOM_BUCKETS)
PSI_UNARCHIVED_BUCKETS: Final = _unarchived(PSI_BUCKETS)

# $1 space, $2 name, $3 version, $4 drift_type (always 'Psi' here).
PSI_PROFILE: Final = """
SELECT profile::text AS profile FROM scouter.drift_profile
WHERE space = $1 AND name = $2 AND version = $3 AND drift_type = $4
"""

_BIGINT_MAX = "9223372036854775807"

# route_name, bucket, p5, p25, p50, p95, p99, total_request_count, total_error_count, error_latency,
# status_counts (JSON object text). Route metrics are unnested from the jsonb column; the writer stored only
# validated objects (finite numbers, non-negative integer counts). Sums are clamped to bigint (i64 upstream).
OBSERVABILITY_BUCKETS: Final = f"""
WITH routes AS (
    SELECT {_BUCKET} AS bucket, route
    FROM scouter.observability_metric, jsonb_array_elements(route_metrics) AS route
    WHERE {_WHERE}
), codes AS (
    SELECT route->>'route_name' AS route_name, bucket, code.key AS code,
           least(sum(code.value::numeric), {_BIGINT_MAX})::bigint AS count
    FROM routes, jsonb_each_text(route->'status_codes') AS code
    GROUP BY 1, 2, 3
), per_route AS (
    SELECT route->>'route_name' AS route_name, bucket,
           avg((route->'metrics'->>'p5')::float8) AS p5,
           avg((route->'metrics'->>'p25')::float8) AS p25,
           avg((route->'metrics'->>'p50')::float8) AS p50,
           avg((route->'metrics'->>'p95')::float8) AS p95,
           avg((route->'metrics'->>'p99')::float8) AS p99,
           least(sum((route->>'request_count')::numeric), {_BIGINT_MAX})::bigint AS total_request_count,
           least(sum((route->>'error_count')::numeric), {_BIGINT_MAX})::bigint AS total_error_count,
           avg((route->>'error_latency')::float8) AS error_latency
    FROM routes
    GROUP BY 1, 2
)
SELECT p.route_name, p.bucket, p.p5, p.p25, p.p50, p.p95, p.p99, p.total_request_count, p.total_error_count,
       p.error_latency,
       coalesce((SELECT jsonb_object_agg(c.code, c.count) FROM codes c
                 WHERE c.route_name = p.route_name AND c.bucket = p.bucket), '{{}}'::jsonb)::text AS status_counts
FROM per_route p
"""
