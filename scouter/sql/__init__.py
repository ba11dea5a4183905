"""SQL text and query builders. Pure strings and values: the actors run them."""

from ._migrations import MIGRATION_LOCK_KEY, MIGRATIONS, Migration
from ._partitions import (
    LIST_PARTITIONS,
    PARTITIONED_TABLES,
    PartitionedTable,
    create_partition,
    create_partition_moving_default_rows,
    day_bounds,
    default_days,
    drop_partition,
    has_unarchived,
    partition_day,
    partition_name,
)

__all__ = [
    "LIST_PARTITIONS",
    "MIGRATIONS",
    "MIGRATION_LOCK_KEY",
    "PARTITIONED_TABLES",
    "Migration",
    "PartitionedTable",
    "create_partition",
    "create_partition_moving_default_rows",
    "day_bounds",
    "default_days",
    "drop_partition",
    "has_unarchived",
    "partition_day",
    "partition_name",
]
