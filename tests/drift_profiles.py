"""Drift profile documents shaped exactly like the ones scouter-ml 0.6.4 registers (captures/http_session.jsonl),
with the numbers a test needs; and plain-asyncio helpers that store profiles and records straight in SQL."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import asyncpg
import orjson

TIMESTAMP = "2026-11-22T17:06:40.286694758Z"
CONSOLE = {"Console": {"enabled": True}}


def spc_profile(
    features: Mapping[str, tuple[float, float]],
    *,
    space: str = "cap",
    name: str = "model",
    version: str = "1.0.0",
    rule: str = "8 16 4 8 2 4 1 1",
    zones: Sequence[str] = ("Zone1", "Zone2", "Zone3", "Zone4"),
    features_to_monitor: Sequence[str] | None = None,
    schedule: str = "0 0 0 * * *",
) -> dict[str, Any]:
    """SPC profile whose features have limits center ± k·sigma, from `{feature: (center, sigma)}`."""
    limits = {
        feature: {
            "id": feature,
            "center": c,
            "one_ucl": c + s,
            "one_lcl": c - s,
            "two_ucl": c + 2 * s,
            "two_lcl": c - 2 * s,
            "three_ucl": c + 3 * s,
            "three_lcl": c - 3 * s,
            "timestamp": TIMESTAMP,
        }
        for feature, (c, s) in features.items()
    }
    return {
        "features": limits,
        "config": {
            "sample_size": 25,
            "sample": True,
            "space": space,
            "name": name,
            "version": version,
            "alert_config": {
                "rule": {"rule": rule, "zones_to_monitor": list(zones)},
                "schedule": schedule,
                "features_to_monitor": list(features if features_to_monitor is None else features_to_monitor),
                "dispatch_config": CONSOLE,
            },
            "feature_map": {"features": {}},
            "drift_type": "Spc",
        },
        "scouter_version": "0.6.4",
    }


def psi_profile(
    features: Mapping[str, Sequence[float]],
    *,
    space: str = "cap",
    name: str = "model",
    version: str = "1.0.0",
    threshold: Mapping[str, Any] | None = None,
    features_to_monitor: Sequence[str] | None = None,
    schedule: str = "0 0 0 * * *",
) -> dict[str, Any]:
    """PSI profile from `{feature: [proportion of bin 1, bin 2, ...]}` (numeric bins, outer limits ±inf)."""
    docs = {}
    for feature, proportions in features.items():
        edges = ["-inf", *[float(i) for i in range(1, len(proportions))], "inf"]
        bins = [
            {"id": i + 1, "lower_limit": edges[i], "upper_limit": edges[i + 1], "proportion": p}
            for i, p in enumerate(proportions)
        ]
        docs[feature] = {"id": feature, "bins": bins, "timestamp": TIMESTAMP, "bin_type": "Numeric"}
    return {
        "features": docs,
        "config": {
            "space": space,
            "name": name,
            "version": version,
            "alert_config": {
                "dispatch_config": CONSOLE,
                "schedule": schedule,
                "features_to_monitor": list(features if features_to_monitor is None else features_to_monitor),
                "threshold": dict(threshold or {"ChiSquare": {"alpha": 0.05}}),
            },
            "feature_map": {"features": {}},
            "drift_type": "Psi",
        },
        "scouter_version": "0.6.4",
    }


def custom_profile(
    metrics: Mapping[str, float],
    conditions: Mapping[str, tuple[str, float | None]] | None,
    *,
    space: str = "cap",
    name: str = "model",
    version: str = "1.0.0",
    schedule: str = "0 0 0 * * *",
) -> dict[str, Any]:
    """Custom-metric profile: training values and `{metric: (Below|Above|Outside, margin or None)}`."""
    alert_config: dict[str, Any] = {"dispatch_config": CONSOLE, "schedule": schedule}
    if conditions is not None:
        alert_config["alert_conditions"] = {
            m: {"alert_threshold": t, "alert_threshold_value": v} for m, (t, v) in conditions.items()
        }
    return {
        "config": {
            "sample_size": 10,
            "space": space,
            "name": name,
            "version": version,
            "alert_config": alert_config,
            "drift_type": "Custom",
        },
        "metrics": dict(metrics),
        "scouter_version": "0.6.4",
    }


# -- plain asyncio helpers (run them with Database.run) -------------------------------------------------------------
async def insert_profile(
    conn: asyncpg.Connection,
    profile: Mapping[str, Any],
    next_run: dt.datetime,
    previous_run: dt.datetime | None,
    active: bool = True,
) -> str:
    """Store `profile` as the profile routes do, with the schedule column taken from the profile; returns uid."""
    config = profile["config"]
    uid: str = await conn.fetchval(
        "INSERT INTO scouter.drift_profile"
        " (space, name, version, drift_type, profile, active, schedule, next_run, previous_run, scouter_version)"
        " VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7, $8, $9, '0.6.4') RETURNING uid",
        config["space"],
        config["name"],
        config["version"],
        config["drift_type"],
        orjson.dumps(profile).decode(),
        active,
        config["alert_config"]["schedule"],
        next_run,
        previous_run,
    )
    return uid


async def copy_rows(
    conn: asyncpg.Connection, table: str, columns: Sequence[str], rows: Iterable[tuple[Any, ...]]
) -> None:
    """COPY `rows` into scouter.`table`."""
    await conn.copy_records_to_table(table, schema_name="scouter", columns=list(columns), records=list(rows))


SPC_COLUMNS = ("created_at", "space", "name", "version", "feature", "value")
PSI_COLUMNS = ("created_at", "space", "name", "version", "feature", "bin_id", "bin_count")
CUSTOM_COLUMNS = ("created_at", "space", "name", "version", "metric", "value")
