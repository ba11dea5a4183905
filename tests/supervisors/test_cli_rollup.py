"""`scouter rollup rebuild` as a real process: the rollups of rows stored before them, with progress, exit 0."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest

ROOT = Path(__file__).resolve().parents[2]
SCOUTER = [sys.executable, "-m", "supervisors.main", "rollup", "rebuild"]

pytestmark = pytest.mark.postgres


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SCOUTER_", "DATABASE_", "AWS_", "DATA_"))}
    env.update(LOG_LEVEL="warning", **extra)
    return env


def _sql(dsn: str, *statements: str) -> list[asyncpg.Record]:
    async def go() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(dsn)
        try:
            rows: list[asyncpg.Record] = []
            for sql in statements:
                rows = await conn.fetch(sql)
            return rows
        finally:
            await conn.close()

    return asyncio.run(go())


def test_rollup_rebuild_builds_older_days_with_progress(fresh_database_dsn: str) -> None:
    """Rows of three days stored while the coverage started today (as after upgrading a server with data): the
    command builds their rollups day by day, says so on stderr, and the rollups of both grains then count every
    row."""
    run = subprocess.run(SCOUTER, cwd=ROOT, env=_env(DATABASE_URI=fresh_database_dsn), capture_output=True,
                         text=True, timeout=120)  # fmt: skip  # migrates a fresh database: nothing to do
    assert 0 == run.returncode, run.stderr
    start = (datetime.now(UTC) - timedelta(days=3)).strftime("%Y-%m-%d %H:%M:%S+00")
    _sql(
        fresh_database_dsn,
        "ALTER TABLE scouter.spc_drift DISABLE TRIGGER spc_drift_rollup",  # stored before the rollups existed
        "INSERT INTO scouter.spc_drift (created_at, space, name, version, feature, value)"
        f" SELECT '{start}'::timestamptz + make_interval(mins => m), 'sp', 'nm', '1', 'f', m"
        " FROM generate_series(0, 3 * 24 * 60 - 1, 7) AS m",
        "ALTER TABLE scouter.spc_drift ENABLE TRIGGER spc_drift_rollup",
        "UPDATE scouter.rollup_coverage SET since = date_bin('1 minute', now(), 'epoch')",
    )
    result = subprocess.run(SCOUTER, cwd=ROOT, env=_env(DATABASE_URI=fresh_database_dsn), capture_output=True,
                            text=True, timeout=120)  # fmt: skip
    assert 0 == result.returncode, result.stderr
    assert "rollups: day 1/" in result.stderr
    assert "rebuilt the rollups of" in result.stdout
    [row] = _sql(
        fresh_database_dsn,
        "SELECT (SELECT count(*) FROM scouter.spc_drift) AS raw, (SELECT sum(count) FROM scouter.spc_rollup) AS rolled,"
        " (SELECT sum(count) FROM scouter.spc_rollup_hour) AS hourly",
    )
    assert row["raw"] == row["rolled"] == row["hourly"] > 600


def test_rollup_help_describes_rebuild() -> None:
    """`scouter rollup --help` names the rebuild action and exits 0."""
    result = subprocess.run([sys.executable, "-m", "supervisors.main", "rollup", "--help"], cwd=ROOT, env=_env(),
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert 0 == result.returncode
    assert "rebuild" in result.stdout
