"""What every benchmark shares: the PostgreSQL it measures on (and whether its figures are durable), targets that
fail the run when missed, ratios against same-run baselines, and the smoke mode `make test` runs.

- SCOUTER_BENCH_SMOKE=1: tiny sizes, every code path and every correctness check (row counts, acknowledged =
  stored) still run and every figure and ratio is printed, but targets are not enforced (tiny runs on a shared
  machine say nothing about throughput). Run by tests/test_benches.py.
- SCOUTER_BENCH_DATABASE_URI: measure on this server (its settings are printed; if they are not durable, the
  figures are labelled so).

Without either, a full run measures on the test PostgreSQL (tests.services) when its settings are those of
production (fsync, full_page_writes and synchronous_commit on), and otherwise on a private server started with
those settings, so an acknowledgement always includes a WAL flush.
"""

from __future__ import annotations

import asyncio
import os
import sys
import urllib.parse
from collections.abc import Iterator
from typing import Any

import asyncpg
import attrs

from tests.services import PostgresServer, ensure_postgres, start_owned

SMOKE = os.environ.get("SCOUTER_BENCH_SMOKE", "") == "1"
ENV_DATABASE_URI = "SCOUTER_BENCH_DATABASE_URI"
#: The settings that make a COMMIT durable, with the value production uses.
DURABLE = {"fsync": "on", "full_page_writes": "on", "synchronous_commit": "on"}

_durable_server: PostgresServer | None = None


@attrs.frozen
class ServerSettings:
    address: str
    version: str
    settings: dict[str, str]

    @property
    def durable(self) -> bool:
        return all(self.settings.get(name) == value for name, value in DURABLE.items())

    def describe(self) -> str:
        values = ", ".join(f"{name}={value}" for name, value in self.settings.items())
        verdict = "durable" if self.durable else "NOT DURABLE: figures below are not durable-commit figures"
        return f"PostgreSQL {self.version} at {self.address} ({values}): {verdict}"


async def _read_settings(dsn: str) -> ServerSettings:
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        version = await conn.fetchval("SHOW server_version")
        rows = await conn.fetch("SELECT name, setting FROM pg_settings WHERE name = ANY($1::text[])", list(DURABLE))
    finally:
        await conn.close()
    values = {row["name"]: row["setting"] for row in rows}
    parts = urllib.parse.urlsplit(dsn)
    return ServerSettings(f"{parts.hostname}:{parts.port or 5432}", version, {k: values.get(k, "?") for k in DURABLE})


def server_settings(dsn: str) -> ServerSettings:
    return asyncio.run(_read_settings(dsn))


def bench_postgres() -> str:
    """DSN of the server to measure on (see the module's docstring); prints which one and its settings."""
    global _durable_server
    chosen = os.environ.get(ENV_DATABASE_URI) or ensure_postgres()
    settings = server_settings(chosen)
    if not settings.durable and not SMOKE and not os.environ.get(ENV_DATABASE_URI):
        print(f"the test server is not durable ({settings.describe()}); starting a private one that is", flush=True)
        if _durable_server is None:
            _durable_server = start_owned(PostgresServer(durable=True))
        chosen = _durable_server.dsn
        settings = server_settings(chosen)
    print(settings.describe(), flush=True)
    return chosen


@attrs.define
class Verdicts:
    """Target lines and ratio lines, printed alike; `finish` exits non-zero when a target was missed."""

    missed: list[str] = attrs.Factory(list)

    def target(self, label: str, value: float, unit: str, limit: float, *, at_most: bool) -> None:
        ok = value <= limit if at_most else value >= limit
        sign = "<=" if at_most else ">="
        print(f"  {label}: {value:,.2f}{unit}   target {sign} {limit:g}{unit}   {'ok' if ok else 'MISSED'}")
        if not ok:
            self.missed.append(label)

    def ratio(self, label: str, ours: float, baseline: float, *, target: float | None = None) -> float:
        """Print ``ratio <label>: ours / baseline`` (the line the smoke test looks for), checked when a target is
        given (higher is better)."""
        value = ours / baseline if baseline else float("nan")
        line = f"  ratio {label}: {value:.2f}"
        if target is not None:
            ok = value >= target
            line += f"   target >= {target:g}   {'ok' if ok else 'MISSED'}"
            if not ok:
                self.missed.append(label)
        print(line)
        return value

    def finish(self) -> None:
        if not self.missed:
            return
        if SMOKE:
            print(f"smoke run: {len(self.missed)} target(s) not enforced at these sizes: {', '.join(self.missed)}")
            return
        print(f"MISSED {len(self.missed)} target(s): {', '.join(self.missed)}", flush=True)
        sys.exit(1)


def sizes(full: int, smoke: int) -> int:
    return smoke if SMOKE else full


def check(condition: bool, message: str) -> None:
    """A correctness check (enforced in smoke runs too): fail the bench with ``message``."""
    if not condition:
        print(f"CHECK FAILED: {message}", flush=True)
        sys.exit(2)


def chunks(items: list, size: int) -> Iterator[list]:  # type: ignore[type-arg]
    for start in range(0, len(items), size):
        yield items[start : start + size]


def same_drift(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Two binned drift answers with the same features and buckets, and means equal to 1e-9 (relative): answers
    merged from different parts round differently."""
    if a["features"].keys() != b["features"].keys():
        return False
    for feature, series in a["features"].items():
        other = b["features"][feature]
        if series["created_at"] != other["created_at"]:
            return False
        pairs = zip(series["values"], other["values"], strict=True)
        if any(abs(x - y) > 1e-9 * max(1.0, abs(x), abs(y)) for x, y in pairs):
            return False
    return True
