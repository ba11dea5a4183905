"""Shared by the dispatcher's tests against a real PostgreSQL and the fake channel server: settings with short
timings, a running dispatcher, alerts stored as the poller stores them, and waiting for the
deliveries to settle."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import AsyncIterator, Sequence
from typing import Any

import asyncpg
import orjson
import trio

from actors.database import Database
from actors.dispatcher import Dispatcher
from actors.metrics import ScouterMetrics
from config import DispatchSettings
from scouter.sql import INSERT_ALERTS
from tests.drift_profiles import custom_profile, insert_profile

ENTITY = ("cap", "model", "1.0.0")
SECOND = dt.timedelta(seconds=1)
HOUR = dt.timedelta(hours=1)
SLACK_TOKEN = "xoxb-test-token-0123"
OPSGENIE_KEY = "genie-key-0123"
ROUTING_KEY = "pd-routing-key-0123"
WEBHOOK_SECRET = "webhook-secret-0123"
WEBHOOK_PATH = "/hooks/s3cr3t-path-0123"
SLACK_PATH = "/api/chat.postMessage"
OPSGENIE_PATH = "/v2/alerts"
PAGERDUTY_PATH = "/v2/enqueue"
SECTION_7_HEADER = {
    "type": "header",
    "text": {"type": "plain_text", "text": ":rotating_light: Drift Detected :rotating_light:", "emoji": True},
}


def dispatch_settings(base: str, **overrides: Any) -> DispatchSettings:
    """Short timings; Slack and OpsGenie configured against the fake channel."""
    values: dict[str, Any] = {
        "slack_app_token": SLACK_TOKEN,
        "slack_api_url": f"{base}/api",
        "opsgenie_api_key": OPSGENIE_KEY,
        "opsgenie_api_url": f"{base}{OPSGENIE_PATH}",
        "timeout": 0.5,
        "max_attempts": 5,
        "backoff": 0.05,
        "backoff_max": 0.2,
        "lease": 3.0,
        "concurrency": 4,
        "poll": 0.1,
        **overrides,
    }
    return DispatchSettings(**values)


@contextlib.asynccontextmanager
async def running(dispatcher: Dispatcher) -> AsyncIterator[None]:
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        await nursery.start(dispatcher.run, stop)
        try:
            yield
        finally:
            stop.set()


def with_dispatch(profile: dict[str, Any], dispatch: dict[str, Any]) -> dict[str, Any]:
    profile["config"]["alert_config"]["dispatch_config"] = dispatch
    return profile


async def _store(conn: asyncpg.Connection, entity: Sequence[str], drift_type: str, maps: str) -> list[int]:
    rows = await conn.fetch(INSERT_ALERTS, *entity, drift_type, maps)
    return [r["id"] for r in rows]


async def store_alerts(
    db: Database, drift_type: str, maps: list[dict[str, str]], entity: Sequence[str] = ENTITY
) -> list[int]:
    """Store the alerts of one check as the poller does (one statement, one transaction); returns their ids."""
    ids: list[int] = await db.run(_store, entity, drift_type, orjson.dumps(maps).decode(), transaction=True)
    return ids


async def settled(db: Database, count: int, within: float = 15.0) -> list[dict[str, Any]]:
    """Wait until `count` deliveries exist and none is pending; returns them in id order."""
    with trio.fail_after(within):
        while True:
            rows = [dict(r) for r in await db.fetch("SELECT * FROM scouter.alert_delivery ORDER BY id")]
            if len(rows) >= count and all(r["state"] != "pending" for r in rows):
                return rows
            await trio.sleep(0.05)


async def alert_states(db: Database) -> dict[int, str]:
    rows = await db.fetch("SELECT id, dispatch_state FROM scouter.drift_alert ORDER BY id")
    return {r["id"]: r["dispatch_state"] for r in rows}


def sample(metrics: ScouterMetrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


def custom_map(metric: str, training: str, observed: str, margin: str, condition: str) -> dict[str, str]:
    return {
        "entity_name": metric,
        "training_metric_value": training,
        "observed_metric_value": observed,
        "alert_threshold_value": margin,
        "alert_threshold": condition,
    }


async def seed_custom_messages(db: Database, now: dt.datetime, count: int) -> list[str]:
    """`count` custom alerts (one message each) of a Console profile; returns their message keys."""
    await db.run(insert_profile, custom_profile({"mae": 1.0}, {"mae": ("Above", None)}), now, None)
    keys = []
    for i in range(count):
        (alert_id,) = await store_alerts(db, "Custom", [custom_map("mae", "1", str(2 + i), "None", "Above")])
        keys.append(f"scouter-alert-{alert_id}")
    return keys
