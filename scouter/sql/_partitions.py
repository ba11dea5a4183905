"""SQL text for daily partitions. Identifiers come only from the constants below and dates, never from input."""

from __future__ import annotations

import datetime

import attrs


@attrs.frozen
class PartitionedTable:
    name: str
    retention_days: int  # partitions wholly older than this may be dropped...
    archived: bool  # ...and, where rows get archived, only once every row is


#: Upstream's pg_partman retention: 60 days for records, 365 for alerts.
PARTITIONED_TABLES: tuple[PartitionedTable, ...] = (
    PartitionedTable("spc_drift", 60, True),
    PartitionedTable("psi_drift", 60, True),
    PartitionedTable("custom_drift", 60, True),
    PartitionedTable("observability_metric", 60, False),
    PartitionedTable("drift_alert", 365, False),
)


def partition_name(table: str, day: datetime.date) -> str:
    return f"{table}_p{day:%Y%m%d}"


def day_bounds(day: datetime.date) -> tuple[datetime.datetime, datetime.datetime]:
    start = datetime.datetime(day.year, day.month, day.day, tzinfo=datetime.UTC)
    return start, start + datetime.timedelta(days=1)


def _literal(moment: datetime.datetime) -> str:
    return f"'{moment.isoformat()}'"


def create_partition(table: str, day: datetime.date) -> str:
    """``day``'s partition, for a day the default partition holds no rows of."""
    start, end = day_bounds(day)
    return (
        f"CREATE TABLE IF NOT EXISTS scouter.{partition_name(table, day)} PARTITION OF scouter.{table} "
        f"FOR VALUES FROM ({_literal(start)}) TO ({_literal(end)})"
    )


def create_partition_moving_default_rows(table: str, day: datetime.date) -> list[str]:
    """Statements (one transaction) that create ``day``'s partition when the default partition already holds rows
    of that day: detach the default, create the partition, move the rows into it, re-attach. The rows go straight
    into the partition, not through the parent: the parent's statement triggers (rollups, drift arrivals) handled
    them when they were stored, and would count them a second time."""
    start, end = day_bounds(day)
    rng = f"created_at >= {_literal(start)} AND created_at < {_literal(end)}"
    return [
        f"ALTER TABLE scouter.{table} DETACH PARTITION scouter.{table}_default",
        create_partition(table, day),
        f"INSERT INTO scouter.{partition_name(table, day)} SELECT * FROM scouter.{table}_default WHERE {rng}",
        f"DELETE FROM scouter.{table}_default WHERE {rng}",
        f"ALTER TABLE scouter.{table} ATTACH PARTITION scouter.{table}_default DEFAULT",
    ]


def partition_day(table: str, partition: str) -> datetime.date | None:
    """The day a partition of ``table`` covers, from its name; None for the default or a foreign table."""
    prefix = f"{table}_p"
    if not partition.startswith(prefix):
        return None
    try:
        return datetime.datetime.strptime(partition[len(prefix) :], "%Y%m%d").date()
    except ValueError:
        return None


def drop_partition(part: str) -> str:
    return f"DROP TABLE scouter.{part}"


LIST_PARTITIONS = """
SELECT c.relname AS partition, p.relname AS parent
FROM pg_inherits i
JOIN pg_class c ON c.oid = i.inhrelid
JOIN pg_class p ON p.oid = i.inhparent
JOIN pg_namespace n ON n.oid = p.relnamespace
WHERE n.nspname = 'scouter'
"""


def default_days(table: str) -> str:
    """Days that have rows stranded in the default partition, within [$1, $2): the range maintenance keeps
    partitions for. Rows outside it (a created_at of 9999-12-31 or ±infinity) are never turned into dates here: a
    date out of Python's range must not fail the round."""
    return (
        f"SELECT DISTINCT (created_at AT TIME ZONE 'UTC')::date AS day FROM scouter.{table}_default"
        " WHERE created_at >= $1 AND created_at < $2 ORDER BY 1"
    )


def default_rows_outside(table: str) -> str:
    """How many rows of the default partition lie outside [$1, $2): they stay there, counted and reported."""
    return f"SELECT count(*) FROM scouter.{table}_default WHERE NOT (created_at >= $1 AND created_at < $2)"


def delete_default_rows_before(table: PartitionedTable) -> str:
    """Remove the default partition's rows older than $1 (the retention cut-off), archived ones only where rows get
    archived: what dropping their partition would have done, had they had one."""
    archived = " AND archived" if table.archived else ""
    return f"DELETE FROM scouter.{table.name}_default WHERE created_at < $1{archived}"


def lock_for_drop(table: str) -> str:
    """Taken before the final look at a partition about to be dropped: it waits for writers still inserting into
    ``table`` to commit and keeps new ones out until the drop commits, so no row can arrive between look and drop.
    DROP takes this very lock on the parent anyway; taking it first just moves it before the look."""
    return f"LOCK TABLE ONLY scouter.{table} IN ACCESS EXCLUSIVE MODE"


def has_unarchived(part: str) -> str:
    return f"SELECT EXISTS (SELECT 1 FROM scouter.{part} WHERE NOT archived)"
