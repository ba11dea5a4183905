"""The maintenance actor: daily partitions ahead of time, and dropping old partitions once they are archived.

Replaces upstream's pg_partman + pg_cron. Runs once before reporting ready (so rows never land in the default
partition in normal operation), then every ``interval``. One replica at a time (session advisory lock).
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
    PartitionedTable,
    create_partition,
    create_partition_moving_default_rows,
    default_days,
    drop_partition,
    has_unarchived,
    partition_day,
)

from .database import UNAVAILABLE, DatabaseHandle

log = logging.getLogger("actors.maintenance")

MAINTENANCE_LOCK_KEY = 0x73636F75746D6E74  # "scoutmnt"


@attrs.frozen
class MaintenanceReport:
    created: tuple[str, ...] = ()
    dropped: tuple[str, ...] = ()
    kept_unarchived: tuple[str, ...] = ()
    skipped: bool = False  # another replica held the lock


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
    existing = {(r["parent"], r["partition"]) for r in await conn.fetch(LIST_PARTITIONS)}
    for table in tables:
        have = {partition_day(table.name, part) for parent, part in existing if parent == table.name}
        stranded = {r["day"] for r in await conn.fetch(default_days(table.name))}
        wanted = {today + datetime.timedelta(days=d) for d in range(-1, days_ahead + 1)} | stranded
        for day in sorted(wanted - have):
            async with conn.transaction():
                if day in stranded:
                    for statement in create_partition_moving_default_rows(table.name, day):
                        await conn.execute(statement)
                else:
                    await conn.execute(create_partition(table.name, day))
            created.append(f"{table.name}:{day}")
        cutoff = today - datetime.timedelta(days=table.retention_days)
        for parent, part in sorted(existing):
            day = partition_day(table.name, part)
            if parent != table.name or day is None or day >= cutoff:
                continue
            async with conn.transaction():
                if table.archived and await conn.fetchval(has_unarchived(part)):
                    kept.append(part)  # past retention but not yet archived: never drop unarchived rows
                    continue
                await conn.execute(drop_partition(part))
            dropped.append(part)
    return MaintenanceReport(tuple(created), tuple(dropped), tuple(kept))


@attrs.define
class MaintenanceActor:
    """Consumes nothing; produces partitions. A database outage is logged and retried at the next round."""

    handle: DatabaseHandle
    interval: float = 3600.0
    days_ahead: int = 4
    today: Callable[[], datetime.date] = _today
    tables: tuple[PartitionedTable, ...] = PARTITIONED_TABLES

    async def run_once(self) -> MaintenanceReport:
        report = await self.handle.get().run(_maintain, self.today(), self.days_ahead, self.tables)
        if report.created or report.dropped:
            log.info(
                "partitions created: %s; dropped: %s",
                ", ".join(report.created) or "none",
                ", ".join(report.dropped) or "none",
            )
        if report.kept_unarchived:
            log.warning("past retention but not archived yet, kept: %s", ", ".join(report.kept_unarchived))
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
