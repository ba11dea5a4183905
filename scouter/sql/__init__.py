"""SQL text and query builders. Pure strings and values: the actors run them."""

from ._drift import CUSTOM_BUCKETS, OBSERVABILITY_BUCKETS, PSI_BUCKETS, PSI_PROFILE, SPC_BUCKETS
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
from ._profiles import (
    DEACTIVATE_OTHER_VERSIONS,
    GET_PROFILE,
    SET_PROFILE_STATUS,
    UPDATE_PROFILE,
    UPSERT_PROFILE,
)

__all__ = [
    "CUSTOM_BUCKETS",
    "DEACTIVATE_OTHER_VERSIONS",
    "GET_PROFILE",
    "LIST_PARTITIONS",
    "MIGRATIONS",
    "MIGRATION_LOCK_KEY",
    "OBSERVABILITY_BUCKETS",
    "PARTITIONED_TABLES",
    "PSI_BUCKETS",
    "PSI_PROFILE",
    "SET_PROFILE_STATUS",
    "SPC_BUCKETS",
    "UPDATE_PROFILE",
    "UPSERT_PROFILE",
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
