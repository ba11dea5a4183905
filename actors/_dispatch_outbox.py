"""The dispatcher's outbox in PostgreSQL: the asyncio side of ``actors.dispatcher``, one crossing per unit of work.

Planning turns pending alerts into deliveries in one transaction, under a transaction-level advisory lock (one
planner at a time across replicas); claiming takes due deliveries with ``FOR UPDATE SKIP LOCKED`` as a lease;
recording an outcome presents the lease token and rolls final outcomes up into the alerts' ``dispatch_state``.
Only plain values leave this module: no asyncpg object reaches trio code.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from typing import Any

import asyncpg
import attrs
import orjson

from scouter.dispatch import (
    AlertRow,
    ChannelSetup,
    CheckFacts,
    Message,
    Settled,
    group_alerts,
    minimal_deliveries,
    plan_deliveries,
)
from scouter.profiles import ProfileError, profile_from_data
from scouter.sql import (
    CLAIM_DELIVERIES,
    CUSTOM_SAMPLES,
    DISPATCH_PLAN_LOCK_KEY,
    INSERT_DELIVERY,
    LOCK_ALERTS,
    MARK_PLANNED,
    PENDING_ALERTS,
    PSI_SAMPLES,
    PURGE_DELIVERIES,
    RECORD_ATTEMPT,
    ROLL_UP_ALERTS,
    SECONDS_UNTIL_DELIVERY,
    SPC_SAMPLES,
    TRY_PLAN_LOCK,
)

# The dispatcher's logger: these lines are the dispatcher's, wherever its code lives.
log = logging.getLogger("actors.dispatcher")

_SAMPLES = {"Spc": SPC_SAMPLES, "Psi": PSI_SAMPLES, "Custom": CUSTOM_SAMPLES}


@attrs.frozen
class PlanResult:
    messages: int
    deliveries: int
    more: bool  # the batch was full: plan again at once
    busy: bool = False  # another replica holds the plan lock


@attrs.frozen
class ClaimedDelivery:
    """A claimed delivery (plain values: no asyncpg object reaches trio code)."""

    id: int
    channel: str
    payload: dict[str, Any]
    attempts: int
    lease_token: uuid.UUID
    message_key: str
    alert_ids: tuple[int, ...]
    alert_created_at: dt.datetime
    space: str
    name: str
    version: str
    drift_type: str
    reclaimed_from: str | None  # the dispatcher whose lease had expired, when this claim took one over


def _alert_map(text: str) -> dict[str, Any]:
    value = orjson.loads(text)
    return value if isinstance(value, dict) else {"value": value}


async def _check_facts(
    conn: asyncpg.Connection, message: Message, profile: str | None, schedule: str | None
) -> CheckFacts:
    if profile is None:
        return CheckFacts(problem="profile not found", schedule=schedule)
    try:
        parsed = profile_from_data(message.drift_type, orjson.loads(profile))
    except (ProfileError, orjson.JSONDecodeError) as exc:
        return CheckFacts(problem=f"profile unreadable ({exc})", schedule=schedule)
    names = sorted({row.entity_name for row in message.alerts})
    rows = await conn.fetch(
        _SAMPLES[message.drift_type],
        message.space,
        message.name,
        message.version,
        message.window_start,
        message.created_at,
        names,
    )
    return CheckFacts(parsed, None, schedule, {r["entity"]: int(r["n"]) for r in rows})


async def plan_pending(conn: asyncpg.Connection, batch: int, setup: ChannelSetup) -> PlanResult:
    """Pending alerts → deliveries, in the caller's transaction."""
    if not await conn.fetchval(TRY_PLAN_LOCK, DISPATCH_PLAN_LOCK_KEY):
        return PlanResult(0, 0, more=False, busy=True)
    rows = await conn.fetch(PENDING_ALERTS, batch)
    if not rows:
        return PlanResult(0, 0, more=False)
    alerts = []
    profiles: dict[tuple[str, str, str, str], tuple[str | None, str | None]] = {}
    for r in rows:
        alerts.append(
            AlertRow(
                r["id"], r["created_at"], r["space"], r["name"], r["version"], r["drift_type"], r["entity_name"],
                _alert_map(r["alert"]), r["window_start"],
            )
        )  # fmt: skip
        profiles[(r["space"], r["name"], r["version"], r["drift_type"])] = (r["profile"], r["schedule"])
    deliveries = []
    messages = group_alerts(alerts)
    for message in messages:
        facts = await _check_facts(
            conn, message, *profiles[(message.space, message.name, message.version, message.drift_type)]
        )
        try:
            planned = plan_deliveries(message, facts, setup)
        except Exception as exc:  # a bug or an odd row must not block every later alert: send it plainly
            log.exception("planning %s of %s failed; sending it to Console as stored", message.key, message.entity)
            planned = minimal_deliveries(message, f"{type(exc).__name__}: {exc}")
        for delivery in planned:
            deliveries.append(
                (
                    message.created_at, list(message.ids), message.space, message.name, message.version,
                    message.drift_type, message.key, delivery.channel, delivery.note,
                    orjson.dumps(delivery.payload).decode(),
                )
            )  # fmt: skip
            if delivery.note:
                log.warning("%s (%s): %s", message.key, message.entity, delivery.note)
    await conn.executemany(INSERT_DELIVERY, deliveries)
    await conn.execute(MARK_PLANNED, [a.created_at for a in alerts], [a.id for a in alerts])
    moments = len({a.created_at for a in alerts})
    return PlanResult(len(messages), len(deliveries), more=moments >= batch)


async def claim_due(
    conn: asyncpg.Connection, limit: int, lease: float, worker: str, paused: list[str]
) -> list[ClaimedDelivery]:
    rows = await conn.fetch(CLAIM_DELIVERIES, limit, lease, worker, paused)
    return [
        ClaimedDelivery(
            id=r["id"],
            channel=r["channel"],
            payload=orjson.loads(r["payload"]),
            attempts=r["attempts"],
            lease_token=r["lease_token"],
            message_key=r["message_key"],
            alert_ids=tuple(r["alert_ids"]),
            alert_created_at=r["alert_created_at"],
            space=r["space"],
            name=r["name"],
            version=r["version"],
            drift_type=r["drift_type"],
            reclaimed_from=(r["was_claimed_by"] or "unknown") if r["reclaimed"] else None,
        )
        for r in rows
    ]


async def seconds_until_due(conn: asyncpg.Connection, paused: list[str]) -> float | None:
    seconds: float | None = await conn.fetchval(SECONDS_UNTIL_DELIVERY, paused)
    return seconds


async def record_outcome(conn: asyncpg.Connection, d: ClaimedDelivery, settled: Settled, status: int | None) -> bool:
    """Write an attempt's outcome (in the caller's transaction); False when the lease was lost."""
    final = settled.state != "pending"
    ids = list(d.alert_ids)
    if final:
        await conn.execute(LOCK_ALERTS, d.alert_created_at, ids)
    attempts = await conn.fetchval(
        RECORD_ATTEMPT, d.id, d.lease_token, settled.state, settled.delay, status, settled.error
    )
    if attempts is None:
        return False
    if final:
        await conn.execute(ROLL_UP_ALERTS, d.alert_created_at, ids)
    return True


async def purge_finished(conn: asyncpg.Connection, days: int) -> str:
    return await conn.execute(PURGE_DELIVERIES, days)
