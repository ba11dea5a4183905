"""`scouter archive` as a real process: one pass now, progress on a terminal, exit status 0 or 1."""

from __future__ import annotations

import asyncio
import os
import pty
import select
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest

ROOT = Path(__file__).resolve().parents[2]
SCOUTER = [sys.executable, "-m", "supervisors.main", "archive"]
OLD = (datetime.now(UTC) - timedelta(days=40)).replace(minute=0, second=0, microsecond=0)

pytestmark = pytest.mark.postgres


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SCOUTER_", "DATABASE_", "AWS_", "DATA_"))}
    env.update(LOG_LEVEL="warning", **extra)
    return env


def _run(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(SCOUTER, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def _sql(dsn: str, sql: str, *args: object) -> list[asyncpg.Record]:
    async def go() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(dsn)
        try:
            return await conn.fetch(sql, *args)
        finally:
            await conn.close()

    return asyncio.run(go())


def _insert_hours(dsn: str, hours: int) -> None:
    _sql(
        dsn,
        "INSERT INTO scouter.spc_drift (created_at, space, name, version, feature, value)"
        " SELECT $1::timestamptz + make_interval(hours => h, secs => s), 'sp', 'nm', '1', 'f', s"
        " FROM generate_series(0, $2 - 1) AS h, generate_series(0, 9) AS s",
        OLD,
        hours,
    )


def test_help_exits_0() -> None:
    """`scouter archive --help` describes the command and exits 0."""
    result = subprocess.run([*SCOUTER, "--help"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert 0 == result.returncode
    assert "DATA_RETENTION_PERIOD" in result.stdout
    assert "SCOUTER_STORAGE_URI" in result.stdout


def test_one_pass_archives_and_exits_0(fresh_database_dsn: str, tmp_path: Path) -> None:
    """On a fresh database the command migrates and finds nothing; with old rows it archives them all, prints what
    it did, and exits 0; the rows are marked archived and the objects are in the folder."""
    store = tmp_path / "store"
    env = _env(DATABASE_URI=fresh_database_dsn, SCOUTER_STORAGE_URI=str(store), DATA_RETENTION_PERIOD="30")
    first = _run(env)
    assert 0 == first.returncode, first.stderr
    assert "archived 0 rows in 0 objects" in first.stdout
    _insert_hours(fresh_database_dsn, 3)

    second = _run(env)

    assert 0 == second.returncode, second.stderr
    assert "archived 30 rows in 3 objects" in second.stdout
    assert str(store) in second.stdout
    # the 3 hours' objects, of complete days, are compacted into one object per day, the only ones listed
    objects = sorted(str(p.relative_to(store)) for p in store.rglob("*.parquet"))
    logged = _sql(fresh_database_dsn, "SELECT object_path, span FROM scouter.archive_log ORDER BY object_path")
    assert objects == [r["object_path"] for r in logged]
    assert {timedelta(days=1)} == {r["span"] for r in logged}
    assert all("/hour=" not in key for key in objects)
    assert f"compacted {len(objects)} complete days (3 objects into {len(objects)})" in second.stdout
    assert [(True, 30)] == [
        (r["archived"], r["n"])
        for r in _sql(fresh_database_dsn, "SELECT archived, count(*) AS n FROM scouter.spc_drift GROUP BY 1")
    ]
    # piped stderr: plain progress lines, no carriage returns
    assert "archiving: 100% 3/3 objects, 30/30 rows" in second.stderr
    assert "\r" not in second.stderr


def test_progress_bar_on_a_terminal(fresh_database_dsn: str, tmp_path: Path) -> None:
    """With stderr on a terminal the bar is redrawn in place (carriage returns) up to 100%."""
    env = _env(DATABASE_URI=fresh_database_dsn, SCOUTER_STORAGE_URI=str(tmp_path / "store"))
    assert 0 == _run(env).returncode  # migrates
    _insert_hours(fresh_database_dsn, 4)
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen(SCOUTER, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=slave, text=True)
        os.close(slave)
        output = b""
        while True:
            ready, _, _ = select.select([master], [], [], 60)
            if not ready:
                break
            try:
                chunk = os.read(master, 4096)
            except OSError:  # the terminal closed with the process
                break
            if not chunk:
                break
            output += chunk
        assert 0 == proc.wait(60)
    finally:
        os.close(master)
    text = output.decode()
    assert "\rarchiving [" in text
    assert "100% 4/4 objects, 40/40 rows" in text


def test_unreachable_database_exits_1(tmp_path: Path) -> None:
    """No database at DATABASE_URI: a one-line reason on stderr and exit status 1."""
    env = _env(DATABASE_URI="postgresql://postgres@127.0.0.1:9/postgres", SCOUTER_STORAGE_URI=str(tmp_path))
    result = _run(env)
    assert 1 == result.returncode
    assert "database unavailable" in result.stderr


def test_store_that_cannot_be_opened_exits_1_and_marks_nothing(fresh_database_dsn: str, tmp_path: Path) -> None:
    """A storage root that cannot be created (its parent is a file): exit status 1, the reason on stderr, and the
    rows stay unarchived for the next pass."""
    env = _env(DATABASE_URI=fresh_database_dsn, SCOUTER_STORAGE_URI=str(tmp_path / "store"))
    assert 0 == _run(env).returncode  # migrates
    _insert_hours(fresh_database_dsn, 1)
    (tmp_path / "file").write_text("not a folder")
    result = _run({**env, "SCOUTER_STORAGE_URI": str(tmp_path / "file" / "store")})
    assert 1 == result.returncode
    assert "scouter archive: failed:" in result.stderr
    assert [(False, 10)] == [
        (r["archived"], r["n"])
        for r in _sql(fresh_database_dsn, "SELECT archived, count(*) AS n FROM scouter.spc_drift GROUP BY 1")
    ]
