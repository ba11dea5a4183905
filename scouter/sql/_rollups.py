"""SQL of the rollups (`scouter.rollups`): the tables, the writer's upserts and the binned reads through them.

Each record kind has a rollup table per grain: ``{kind}_rollup`` (minutes, migration 300) and ``{kind}_rollup_hour``
(hours, migration 360), with the same columns. Rollup rows are tiny (one per entity, feature and grain) and are
never dropped with the record partitions: they stay in PostgreSQL after the raw rows went to the archive, so a long
chart never reads raw Parquet for its whole grains. ``scouter.rollup_coverage`` says from when they are complete:
rows archived *and dropped* before the rollups existed are not in them, and grains before ``since`` are read from the
rows (and the archive) as before.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Final

from ..rollups import GRAIN, GRAINS, HOUR
from ._drift import CUSTOM_BUCKETS, PSI_BUCKETS, SPC_BUCKETS, _unarchived
from ._poller import _judged

_EPOCH = "TIMESTAMPTZ '1970-01-01 00:00:00+00'"

# Migration 300: the tables, empty but for rows dated from the current minute on (a record may be dated up to a day
# ahead); `since` is that minute, or -infinity on a database without records (a new install: complete from the
# start). Building the rollups of older rows is `scouter rollup rebuild` (REBUILD_DAY, a day
# at a time, newest first), so a large database is not locked up while the server starts; meanwhile grains before
# `since` are simply read from the rows, as before.
ROLLUP_TABLES: Final = f"""
CREATE TABLE scouter.spc_rollup (
    space text NOT NULL, name text NOT NULL, version text NOT NULL, feature text NOT NULL,
    grain timestamptz NOT NULL,
    count bigint NOT NULL, mean double precision NOT NULL, m2 double precision NOT NULL,
    PRIMARY KEY (space, name, version, grain, feature)
);
CREATE TABLE scouter.custom_rollup (
    space text NOT NULL, name text NOT NULL, version text NOT NULL, metric text NOT NULL,
    grain timestamptz NOT NULL,
    count bigint NOT NULL, mean double precision NOT NULL, m2 double precision NOT NULL,
    PRIMARY KEY (space, name, version, grain, metric)
);
CREATE TABLE scouter.psi_rollup (
    space text NOT NULL, name text NOT NULL, version text NOT NULL, feature text NOT NULL, bin_id integer NOT NULL,
    grain timestamptz NOT NULL,
    count bigint NOT NULL,
    PRIMARY KEY (space, name, version, grain, feature, bin_id)
);
CREATE TABLE scouter.rollup_coverage (
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    since timestamptz NOT NULL
);
INSERT INTO scouter.rollup_coverage (since)
SELECT CASE WHEN EXISTS (SELECT FROM scouter.spc_drift) OR EXISTS (SELECT FROM scouter.psi_drift)
                 OR EXISTS (SELECT FROM scouter.custom_drift)
            THEN date_bin('1 minute', now(), {_EPOCH}) ELSE '-infinity' END;
"""

#: Per kind: its record table, the aggregate of its rows per grain in rollup column order, the grouping.
_AGGREGATES: Final = {
    "spc": ("spc_drift", "feature", "count(*), avg(value), coalesce(var_pop(value) * count(*), 0)"),
    "psi": ("psi_drift", "feature, bin_id", "sum(bin_count)"),
    "custom": ("custom_drift", "metric", "count(*), avg(value), coalesce(var_pop(value) * count(*), 0)"),
}
ROLLUP_KINDS: Final = tuple(_AGGREGATES)  # also the order tables are locked in, as the writer stores them


def _rebuild(kind: str, where: str) -> str:
    table, key, aggregates = _AGGREGATES[kind]
    keys = f"space, name, version, {key}, date_bin('1 minute', created_at, {_EPOCH})"
    return (
        f"INSERT INTO scouter.{kind}_rollup SELECT {keys}, {aggregates} FROM scouter.{table} WHERE {where} "
        f"GROUP BY {keys}"
    )


ROLLUP_TABLES += "".join(
    _rebuild(kind, "created_at >= (SELECT since FROM scouter.rollup_coverage)") + ";\n" for kind in ROLLUP_KINDS
)


def rollup_table(kind: str, grain: timedelta = GRAIN) -> str:
    """The rollup table of `kind` at `grain` (one of `scouter.rollups.GRAINS`)."""
    return f"scouter.{kind}_rollup" + _TABLE_SUFFIX[grain]


_TABLE_SUFFIX: Final = {GRAIN: "", HOUR: "_hour"}
_INTERVAL: Final = {GRAIN: "1 minute", HOUR: "1 hour"}
#: Every rollup table of a kind, in the order the triggers write them (minutes, then hours): the order a rebuild
#: locks them in too.
_WRITE_ORDER: Final = (GRAIN, HOUR)


def lock_rollup(kind: str) -> str:
    """Held by a rebuild of one range: writers adding to this kind's rollups wait (briefly) until it commits, so the
    rows it aggregates and the rollup rows it replaces are the same (a writer's rows are either committed before
    the lock, and aggregated, or committed after the rebuild, and added then). Both grains' tables, in the order the
    triggers write them, so a writer holding the first never waits on a rebuild holding the second."""
    tables = ", ".join(rollup_table(kind, grain) for grain in _WRITE_ORDER)
    return f"LOCK TABLE {tables} IN SHARE ROW EXCLUSIVE MODE"


def clear_rollup(kind: str, grain: timedelta = GRAIN) -> str:
    """$1 lo, $2 hi: the rollup rows of the grains [lo, hi)."""
    return f"DELETE FROM {rollup_table(kind, grain)} WHERE grain >= $1 AND grain < $2"


def rebuild_rollup(kind: str) -> str:
    """$1 lo, $2 hi: the minute rollups of the rows dated [lo, hi) (whole minutes), from the rows."""
    return _rebuild(kind, "created_at >= $1 AND created_at < $2")


def _hours_of_minutes(kind: str, where: str) -> str:
    """The hourly rollups of the minute rollups selected by `where`, merged exactly as `scouter.binned` merges
    parts: counts add, the mean is the count-weighted mean, M2 adds the parts' M2 and their spread about it."""
    key = _AGGREGATES[kind][1]
    hour = f"date_bin('1 hour', grain, {_EPOCH})"
    keys = f"space, name, version, {key}, {hour}"
    if kind == "psi":
        return (
            f"INSERT INTO {rollup_table(kind, HOUR)} SELECT {keys}, sum(count) FROM {rollup_table(kind)} "
            f"WHERE {where} GROUP BY {keys}"
        )
    return f"""
INSERT INTO {rollup_table(kind, HOUR)}
SELECT space, name, version, {key}, hour, sum(count), hour_mean, sum(m2) + sum(count * (mean - hour_mean) ^ 2)
FROM (SELECT m.*, {hour} AS hour,
             sum(count * mean) OVER w / sum(count) OVER w AS hour_mean
      FROM {rollup_table(kind)} AS m WHERE {where}
      WINDOW w AS (PARTITION BY {keys})) AS minutes
GROUP BY space, name, version, {key}, hour, hour_mean"""


def derive_hours(kind: str) -> str:
    """$1 lo, $2 hi (whole hours): the hourly rollups of [lo, hi) from the minute rollups (complete there)."""
    return _hours_of_minutes(kind, "grain >= $1 AND grain < $2")


def rows_gone(kind: str) -> str:
    """$1 lo, $2 hi: were rows of [lo, hi) archived and then dropped from PostgreSQL (their partition dropped)? Then
    the rows cannot rebuild that range's rollups."""
    table = _AGGREGATES[kind][0]
    return f"""
SELECT (SELECT coalesce(sum(rows), 0) FROM scouter.archive_log WHERE kind = '{kind}' AND hour >= $1 AND hour < $2)
     > (SELECT count(*) FROM scouter.{table} WHERE archived AND created_at >= $1 AND created_at < $2)
"""


#: Where a rebuild ends: the oldest record row before the coverage (NULL: none; never before 1970, what the decoder
#: bounds created_at to: older hostile rows stay read from the rows).
OLDEST_UNCOVERED: Final = (
    "SELECT CASE WHEN min(m) IS NOT NULL THEN greatest(min(m), TIMESTAMPTZ '1970-01-01 00:00:00+00') END FROM ("
    + " UNION ALL ".join(
        f"(SELECT min(created_at) FROM scouter.{table} WHERE created_at < (SELECT since FROM scouter.rollup_coverage))"
        for table, _, _ in _AGGREGATES.values()
    )
    + ") AS oldest(m)"
)
#: $1 the new coverage start (only ever lowered).
LOWER_SINCE: Final = "UPDATE scouter.rollup_coverage SET since = least(since, $1)"
RAW_SINCE: Final = "SELECT since FROM scouter.rollup_coverage"

ROLLUP_SINCE: Final = "SELECT greatest(since, TIMESTAMPTZ '0001-01-01 00:00:00+00') FROM scouter.rollup_coverage"


def _merge(kind: str) -> str:
    """ON CONFLICT's update: PSI counts add; values merge by Chan's update with the stored row as the first part
    (every right-hand side reads the old values)."""
    if kind == "psi":
        return "count = r.count + excluded.count"
    return """count = r.count + excluded.count,
        mean = r.mean + (excluded.mean - r.mean) * excluded.count / (r.count + excluded.count),
        m2 = r.m2 + excluded.m2 + (excluded.mean - r.mean) * (excluded.mean - r.mean)
                                  * r.count * excluded.count / (r.count + excluded.count)"""


def _upsert(kind: str, grain: timedelta) -> str:
    """The trigger's statement adding the rows of one INSERT or COPY (``added``) to their rollups at `grain`."""
    _, key, aggregates = _AGGREGATES[kind]
    keys = f"space, name, version, {key}, date_bin('{_INTERVAL[grain]}', added.created_at, {_EPOCH})"
    columns = f"space, name, version, {key}, grain, count" + ("" if kind == "psi" else ", mean, m2")
    conflict = f"space, name, version, {key}, grain"
    return f"""
    INSERT INTO {rollup_table(kind, grain)} AS r ({columns})
    SELECT {keys}, {aggregates} FROM added GROUP BY {keys} ORDER BY {keys}
    ON CONFLICT ({conflict}) DO UPDATE SET
        {_merge(kind)};"""


def _roll_up_function(kind: str, grains: tuple[timedelta, ...], create: str) -> str:
    """The trigger function: one upsert per grain, in the order given (`_WRITE_ORDER`: minutes, then hours), each in
    key order, so that every writer locks rollup rows in one global order."""
    return f"""
{create} FUNCTION scouter.roll_up_{kind}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN{"".join(_upsert(kind, grain) for grain in grains)}
    RETURN NULL;
END
$$;
"""


def _roll_up_trigger(kind: str) -> str:
    """A statement trigger adding the rows one INSERT or COPY stored to their rollups, in its transaction: every
    path that stores records (the writer for every transport, a hand-written COPY) keeps them, and a crash leaves
    both or neither. Rollup rows are upserted in key order, so concurrent writers (replicas, the writer's one-by-one
    retry) lock them in one order: no deadlock, and ON CONFLICT adds rather than loses an update."""
    table = _AGGREGATES[kind][0]
    return _roll_up_function(kind, (GRAIN,), "CREATE") + (
        f"CREATE TRIGGER {table}_rollup AFTER INSERT ON scouter.{table} REFERENCING NEW TABLE AS added\n"
        f"    FOR EACH STATEMENT EXECUTE FUNCTION scouter.roll_up_{kind}();\n"
    )


ROLLUP_TABLES += "".join(_roll_up_trigger(kind) for kind in ROLLUP_KINDS)

# Migration 360: the hourly grain. The minute tables are locked first (in the writers' order) so that no writer's
# minutes are in flight while the hours are derived from them; the triggers then keep both grains, minutes first.
# Hours before the coverage's hour are derived from whatever minutes exist there and are not read (a read takes
# hours from ``ceil(since, 1 hour)`` on) until `scouter rollup rebuild` derives them again from complete minutes.
HOURLY_ROLLUP_TABLES: Final = (
    "".join(f"LOCK TABLE {rollup_table(kind)} IN SHARE ROW EXCLUSIVE MODE;\n" for kind in ROLLUP_KINDS)
    + "".join(
        f"CREATE TABLE {rollup_table(kind, HOUR)} (LIKE {rollup_table(kind)} INCLUDING ALL);\n" for kind in ROLLUP_KINDS
    )
    + "".join(_roll_up_function(kind, _WRITE_ORDER, "CREATE OR REPLACE") for kind in ROLLUP_KINDS)
    + "".join(_hours_of_minutes(kind, "true") + ";\n" for kind in ROLLUP_KINDS)
)

# --- binned reads ----------------------------------------------------------------------------------------------------
# Rollup part, one statement per grain: $1 space, $2 name, $3 version, $4 bucket width, $5/$6 the starts and ends of
# the ranges of whole grains the plan gives that grain (`scouter.rollups.plan`: no bucket boundary cuts them).
_ROLLUP_BUCKET = f"date_bin($4::interval, grain, {_EPOCH})"


def _grains_in_ranges(kind: str, grain: timedelta, first: int) -> str:
    """The rollup rows of the ranges ``$first``/``$first+1`` (starts, ends), range by range through the primary key
    (OFFSET 0: see `_lateral`)."""
    return (
        f"unnest(${first}::timestamptz[], ${first + 1}::timestamptz[]) AS r(lo, hi)\n"
        f"CROSS JOIN LATERAL (SELECT * FROM {rollup_table(kind, grain)} AS t WHERE t.space = $1 AND t.name = $2"
        f" AND t.version = $3 AND t.grain >= r.lo AND t.grain < r.hi OFFSET 0) AS g"
    )


def _spc_rollup_buckets(grain: timedelta) -> str:
    return f"""
SELECT feature, {_ROLLUP_BUCKET} AS bucket, sum(count)::bigint AS count, sum(count * mean) / sum(count) AS mean
FROM {_grains_in_ranges("spc", grain, 5)}
GROUP BY feature, bucket
"""


def _custom_rollup_buckets(grain: timedelta) -> str:
    return f"""
WITH g AS (
    SELECT metric, {_ROLLUP_BUCKET} AS bucket, count, mean, m2 FROM {_grains_in_ranges("custom", grain, 5)}
), b AS (
    SELECT metric, bucket, sum(count) AS n, sum(count * mean) / sum(count) AS mean FROM g GROUP BY metric, bucket
)
SELECT b.metric, b.bucket, b.n::bigint AS count, b.mean,
       CASE WHEN b.n > 1
            THEN (sum(g.m2) + sum(g.count * (g.mean - b.mean) * (g.mean - b.mean))) / (b.n - 1)
            ELSE 0 END AS variance
FROM b JOIN g ON g.metric = b.metric AND g.bucket = b.bucket
GROUP BY b.metric, b.bucket, b.n, b.mean
"""


def _psi_rollup_buckets(grain: timedelta) -> str:
    """$7 the profile's features."""
    return f"""
SELECT feature, {_ROLLUP_BUCKET} AS bucket, bin_id, sum(count)::bigint AS count
FROM {_grains_in_ranges("psi", grain, 5)}
WHERE feature = ANY($7::text[])
GROUP BY feature, bucket, bin_id
"""


def rollup_density(kind: str) -> str:
    """$1-$3 the entity, $4/$5 the hours [lo, hi): how many records those hours hold, and at most how many minute
    rollup rows (`scouter.rollups.minutes_pay_off`). SPC and custom only: a PSI count sums bin counts."""
    return f"""
SELECT coalesce(sum(count), 0)::bigint AS rows, coalesce(sum(least(count, 60)), 0)::bigint AS minute_rows
FROM {rollup_table(kind, HOUR)}
WHERE space = $1 AND name = $2 AND version = $3 AND grain >= $4 AND grain < $5
"""


SPC_ROLLUP_BUCKETS: Final = {grain: _spc_rollup_buckets(grain) for grain in GRAINS}
CUSTOM_ROLLUP_BUCKETS: Final = {grain: _custom_rollup_buckets(grain) for grain in GRAINS}
PSI_ROLLUP_BUCKETS: Final = {grain: _psi_rollup_buckets(grain) for grain in GRAINS}

# Raw part: the statements of `_drift` over the rows of the plan's raw ranges only. $5/$6 stay the window, and the
# ranges come last (after the PSI features): each is read through the entity's created_at index.
_WINDOW = "space = $1 AND name = $2 AND version = $3 AND created_at >= $5 AND created_at <= $6"


def _lateral(table: str, first: int, open_start: bool = False) -> str:
    """The rows of the ranges ``$first``/``$first+1`` (starts, ends), read range by range through the entity's
    created_at index: OFFSET 0 keeps the planner from flattening the subquery into a join that scans the window's
    partitions whole and filters every row against every range."""
    start = "coalesce(r.lo, '-infinity')" if open_start else "r.lo"
    return (
        f"FROM unnest(${first}::timestamptz[], ${first + 1}::timestamptz[]) AS r(lo, hi)\n"
        f"CROSS JOIN LATERAL (SELECT * FROM scouter.{table} AS t WHERE t.space = $1 AND t.name = $2 AND t.version = $3"
        f" AND t.created_at >= {start} AND t.created_at < r.hi OFFSET 0) AS {table}\n"
    )


def _in_ranges(sql: str, table: str, first: int) -> str:
    if sql.count(_WINDOW) != 1 or sql.count(f"FROM scouter.{table}\n") != 1:
        raise ValueError("expected exactly one window predicate and one table")
    return sql.replace(f"FROM scouter.{table}\n", _lateral(table, first))


SPC_RANGE_BUCKETS: Final = _in_ranges(SPC_BUCKETS, "spc_drift", 7)
CUSTOM_RANGE_BUCKETS: Final = _in_ranges(CUSTOM_BUCKETS, "custom_drift", 7)
PSI_RANGE_BUCKETS: Final = _in_ranges(PSI_BUCKETS, "psi_drift", 8)
#: The same over the rows not archived yet, when the archive answers the rest of the raw ranges.
SPC_RANGE_UNARCHIVED_BUCKETS: Final = _unarchived(SPC_RANGE_BUCKETS)
CUSTOM_RANGE_UNARCHIVED_BUCKETS: Final = _unarchived(CUSTOM_RANGE_BUCKETS)
PSI_RANGE_UNARCHIVED_BUCKETS: Final = _unarchived(PSI_RANGE_BUCKETS)


# --- drift checks (`scouter.sql._poller`) ------------------------------------------------------------------------
# The custom and PSI checks' statements of `_poller` with the window's whole grains read from the rollups: the rows'
# branch of the window reads only the plan's raw ranges (the edges; everything when the plan has no rollup part), the
# late rows stay raw, and the rollup branch adds the whole grains. Parameters: $1-$7 as in `_poller`, then $8/$9 the
# starts and ends of the plan's minute ranges, $10 the raw ranges' starts (NULL: from the beginning), $11 their ends,
# $12/$13 the starts and ends of its hour ranges (the rollup ranges may be empty arrays). The whole
# statement runs in the check's REPEATABLE READ snapshot; rows and rollups commit together, so they agree in it.
# SPC is not here on purpose: its zone rules judge each value in order (runs of consecutive or alternating zones,
# trends), which no count/mean/M2 of a grain can tell; its check reads every value of its window.
_WINDOW_ROWS = "created_at >= coalesce($4::timestamptz, '-infinity') AND created_at < $5"


def _window_in_ranges(judged: str, table: str) -> str:
    window_branch = f"FROM scouter.{table}\n    WHERE {{entity}} AND {_WINDOW_ROWS}"
    entity = "space = $1 AND name = $2 AND version = $3"
    needle = window_branch.replace("{entity}", entity)
    if judged.count(needle) != 1:
        raise ValueError("expected exactly one window branch")
    return judged.replace(needle, _lateral(table, 10, open_start=True) + f"    WHERE {entity} AND {_WINDOW_ROWS}")


def _rolled_up(kind: str, columns: str) -> str:
    """`columns` of the rollup rows of the plan's hour ranges ($12/$13) and minute ranges ($8/$9)."""
    return f"""(SELECT {columns} FROM {_grains_in_ranges(kind, HOUR, 12)}
      UNION ALL
      SELECT {columns} FROM {_grains_in_ranges(kind, GRAIN, 8)}) AS rolled"""


CUSTOM_CHECK_MEANS: Final = f"""
WITH parts AS (
{
    _window_in_ranges(
        _judged(
            "custom_drift",
            "Custom",
            "metric, value",
            "metric = ANY($7::text[])",
            "metric, count(*) AS n, sum(value) AS total, count(*) FILTER (WHERE late) AS late",
        ),
        "custom_drift",
    )
}
GROUP BY metric
UNION ALL
SELECT metric, sum(count)::bigint, sum(count * mean), 0 FROM {_rolled_up("custom", "g.metric, g.count, g.mean")}
WHERE metric = ANY($7::text[])
GROUP BY metric
)
SELECT metric, (sum(total) / sum(n))::float8 AS value, sum(late)::bigint AS late FROM parts GROUP BY metric
"""

PSI_CHECK_DISTRIBUTIONS: Final = f"""
WITH parts AS (
{
    _window_in_ranges(
        _judged(
            "psi_drift",
            "Psi",
            "feature, bin_id, bin_count",
            "feature = ANY($7::text[])",
            "feature, bin_id, sum(bin_count) AS count, count(*) FILTER (WHERE late) AS late",
        ),
        "psi_drift",
    )
}
GROUP BY feature, bin_id
UNION ALL
SELECT feature, bin_id, sum(count)::bigint, 0 FROM {_rolled_up("psi", "g.feature, g.bin_id, g.count")}
WHERE feature = ANY($7::text[])
GROUP BY feature, bin_id
)
SELECT feature,
       bin_id,
       (sum(sum(count)) OVER w)::bigint AS sample_size,
       sum(count)::float8 / nullif(sum(sum(count)) OVER w, 0)::float8 AS proportion,
       sum(late)::bigint AS late
FROM parts
GROUP BY feature, bin_id
WINDOW w AS (PARTITION BY feature)
"""
