"""The maintenance actor: daily partitions ahead of time, and dropping old partitions once they are archived.

Replaces upstream's pg_partman + pg_cron. Runs once before reporting ready (so rows never land in the default
partition in normal operation), then every ``interval``. One replica at a time (session advisory lock).

Partitions exist only for a bounded range of days per table: from its retention cut-off (``today - retention``)
to ``today + days_ahead``. Rows of days in that range that wait in the default partition get their day's partition
and are moved there; rows outside it (a created_at of 9999-12-31, ±infinity, hundreds of distinct future days, all
stored before the decoder bounded created_at) stay in the default partition, are counted (log and the
``scouter_partition_default_rows`` gauge) and never fail a round. Default-partition rows past the cut-off are
deleted once archived, as their partition would have been dropped.

A partition past retention is dropped only under a lock that keeps writers out between the last look for
unarchived rows and the drop: a late row committed meanwhile is seen and the partition kept.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Callable

import asyncpg
import attrs
import trio

from scouter.sql import (
    LIST_PARTITIONS,
    PARTITIONED_TABLES,
    PRUNE_SPC_SUMMARIES,
    PartitionedTable,
    create_partition,
    create_partition_moving_default_rows,
    day_bounds,
    default_days,
    default_rows_outside,
    delete_default_rows_before,
    drop_partition,
    has_unarchived,
    lock_for_drop,
    partition_day,
)

from .database import UNAVAILABLE, DatabaseHandle
from .metrics import ScouterMetrics

log = logging.getLogger("actors.maintenance")

MAINTENANCE_LOCK_KEY = 0x73636F75746D6E74  # "scoutmnt"
#: Longest wait for the table lock before a drop. Writers queue behind a waiting lock, so a long-running query on
#: the table must not stall ingest for long: the partition is then dropped at a later round.
DROP_LOCK_TIMEOUT = "2s"


@attrs.frozen
class MaintenanceReport:
    created: tuple[str, ...] = ()
    dropped: tuple[str, ...] = ()
    kept_unarchived: tuple[str, ...] = ()
    skipped: bool = False  # another replica held the lock
    #: (table, rows) left in the default partition outside the partitioned range, for tables that have any.
    outside_range: tuple[tuple[str, int], ...] = ()
    #: Partitions whose drop waited longer than DROP_LOCK_TIMEOUT for the table lock; retried at the next round.
    busy: tuple[str, ...] = ()
    #: (table, rows) deleted from the default partition past retention.
    purged: tuple[tuple[str, int], ...] = ()


def _today() -> datetime.date:
    return datetime.datetime.now(datetime.UTC).date()


async def _maintain(
    conn: asyncpg.Connection, today: datetime.date, days_ahead: int, tables: tuple[PartitionedTable, ...]
) -> MaintenanceReport:  # asyncio side, one unit of work
    # A session lock for the whole round: another replica holding it means this round is not needed.
    if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", MAINTENANCE_LOCK_KEY):
        return MaintenanceReport(skipped=True)
    try:
        return await _maintain_locked(conn, today, days_ahead, tables)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", MAINTENANCE_LOCK_KEY)


async def _maintain_locked(
    conn: asyncpg.Connection, today: datetime.date, days_ahead: int, tables: tuple[PartitionedTable, ...]
) -> MaintenanceReport:
    created: list[str] = []
    dropped: list[str] = []
    kept: list[str] = []
    busy: list[str] = []
    outside: list[tuple[str, int]] = []
    purged: list[tuple[str, int]] = []
    existing = {(r["parent"], r["partition"]) for r in await conn.fetch(LIST_PARTITIONS)}
    last = today + datetime.timedelta(days=days_ahead)
    for table in tables:
        cutoff = today - datetime.timedelta(days=table.retention_days)
        begin, end = day_bounds(cutoff)[0], day_bounds(last)[1]  # the partitioned range, [begin, end)
        have = {partition_day(table.name, part) for parent, part in existing if parent == table.name}
        stranded = {r["day"] for r in await conn.fetch(default_days(table.name), begin, end)}
        wanted = {today + datetime.timedelta(days=d) for d in range(-1, days_ahead + 1)} | stranded
        for day in sorted(wanted - have):
            async with conn.transaction():
                if day in stranded:
                    for statement in create_partition_moving_default_rows(table.name, day):
                        await conn.execute(statement)
                else:
                    await conn.execute(create_partition(table.name, day))
            created.append(f"{table.name}:{day}")
        for parent, part in sorted(existing):
            day = partition_day(table.name, part)
            if parent != table.name or day is None or day >= cutoff:
                continue
            # A first look without a lock settles the usual case (unarchived rows: keep) without blocking writers.
            if table.archived and await conn.fetchval(has_unarchived(part)):
                kept.append(part)  # past retention but not yet archived: never drop unarchived rows
                continue
            outcome = await _drop_locked(conn, table, part)
            {"dropped": dropped, "kept": kept, "busy": busy}[outcome].append(part)
        deleted = int((await conn.execute(delete_default_rows_before(table), begin)).split()[-1])
        if deleted:
            purged.append((table.name, deleted))
        if table.name == "spc_drift":  # rows before begin may be gone: windows before it are judged raw
            await conn.execute(PRUNE_SPC_SUMMARIES, begin)
        odd = int(await conn.fetchval(default_rows_outside(table.name), begin, end))
        if odd:
            outside.append((table.name, odd))
    return MaintenanceReport(
        tuple(created), tuple(dropped), tuple(kept), outside_range=tuple(outside), busy=tuple(busy),
        purged=tuple(purged),
    )  # fmt: skip


async def _drop_locked(conn: asyncpg.Connection, table: PartitionedTable, part: str) -> str:
    """Drop ``part`` unless, under the table lock, it holds an unarchived row: "dropped", "kept" or "busy"."""
    try:
        async with conn.transaction():
            await conn.execute(f"SET LOCAL lock_timeout = '{DROP_LOCK_TIMEOUT}'")
            await conn.execute(lock_for_drop(table.name))
            # Under the lock every writer that had rows for this partition has committed: this look is final.
            if table.archived and await conn.fetchval(has_unarchived(part)):
                return "kept"
            await conn.execute(drop_partition(part))
    except asyncpg.LockNotAvailableError:
        return "busy"
    return "dropped"


@attrs.define
class MaintenanceActor:
    """Consumes nothing; produces partitions. A database outage is logged and retried at the next round."""

    handle: DatabaseHandle
    interval: float = 3600.0
    days_ahead: int = 4
    today: Callable[[], datetime.date] = _today
    tables: tuple[PartitionedTable, ...] = PARTITIONED_TABLES
    metrics: ScouterMetrics | None = None

    async def run_once(self) -> MaintenanceReport:
        report = await self.handle.get().run(_maintain, self.today(), self.days_ahead, self.tables)
        if report.skipped:
            return report
        if report.created or report.dropped:
            log.info(
                "partitions created: %s; dropped: %s",
                ", ".join(report.created) or "none",
                ", ".join(report.dropped) or "none",
            )
        if report.kept_unarchived:
            log.warning("past retention but not archived yet, kept: %s", ", ".join(report.kept_unarchived))
        if report.busy:
            log.warning("table busy over %s, drop retried next round: %s", DROP_LOCK_TIMEOUT, ", ".join(report.busy))
        for table, rows in report.purged:
            log.info("%s: %d rows past retention deleted from the default partition", table, rows)
        for table, rows in report.outside_range:
            log.warning(
                "%s: %d rows in the default partition have a created_at outside the partitioned range (far future, "
                "infinite or past retention); they stay there and are not partitioned",
                table,
                rows,
            )
        if self.metrics is not None:
            odd = dict(report.outside_range)
            for table in self.tables:
                self.metrics.partition_default_rows.labels(table.name).set(odd.get(table.name, 0))
        return report

    async def run(self, stop: trio.Event, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        await self.run_once()  # a failure here fails the start: the supervisor retries
        task_status.started()
        next_at = trio.current_time() + self.interval
        while not stop.is_set():
            with trio.move_on_at(next_at):
                await stop.wait()
            if stop.is_set():
                return
            try:
                await self.run_once()
            except UNAVAILABLE as exc:
                log.warning("partition maintenance skipped, database unavailable: %r", exc)
            next_at += self.interval
