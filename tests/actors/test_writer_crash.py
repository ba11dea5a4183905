"""Durability: a process killed with SIGKILL mid-stream loses nothing it acknowledged."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from pathlib import Path

import asyncpg

ROOT = Path(__file__).resolve().parents[2]


def test_every_acknowledged_batch_survives_kill_9(fresh_database_dsn: str) -> None:
    """20 senders write through the writer; after about 300 acknowledgements the process is SIGKILLed; every
    acknowledged batch is then present whole (10 rows each)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.actors.writer_script", fresh_database_dsn],
        cwd=ROOT, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    acked: list[str] = []
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 60
        for line in proc.stdout:
            if line.startswith("ACK "):
                acked.append(line.split()[1])
            if len(acked) >= 300 or time.monotonic() > deadline:
                break
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        # whatever was printed before the kill counts too: it was acknowledged
        acked += [line.split()[1] for line in proc.stdout.read().splitlines() if line.startswith("ACK ")]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        proc.stdout.close()  # else an unclosed file is reported when it is collected
    assert len(acked) >= 300

    async def counts() -> dict[str, int]:
        conn = await asyncpg.connect(fresh_database_dsn)
        try:
            rows = await conn.fetch(
                "SELECT feature, count(*) AS n FROM scouter.spc_drift WHERE space = 'kill' GROUP BY feature"
            )
        finally:
            await conn.close()
        return {r["feature"]: r["n"] for r in rows}

    stored = asyncio.run(counts())
    missing = [feature for feature in acked if stored.get(feature) != 10]
    assert [] == missing


def test_rows_and_rollups_agree_after_kill_9(fresh_database_dsn: str) -> None:
    """The writer killed with SIGKILL mid-stream (transactions in flight): every grain's rollup (minutes and hours)
    counts exactly the rows stored, and the rollup sums equal the rows' (no rows without their rollup, no rollup
    without its rows); so do the SPC segments and summaries."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.actors.writer_script", fresh_database_dsn],
        cwd=ROOT, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        acked, deadline = 0, time.monotonic() + 60
        for line in proc.stdout:
            acked += line.startswith("ACK ")
            if acked >= 200 or time.monotonic() > deadline:
                break
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()
    assert acked >= 200

    async def disagreements() -> list[tuple[object, ...]]:
        conn = await asyncpg.connect(fresh_database_dsn)
        found: list[tuple[object, ...]] = []
        try:
            for interval, table in (("1 minute", "spc_rollup"), ("1 hour", "spc_rollup_hour")):
                rows = await conn.fetch(f"""
                    WITH raw AS (
                        SELECT feature, date_bin('{interval}', created_at, 'epoch') AS grain, count(*) AS n,
                               sum(value) AS total
                        FROM scouter.spc_drift WHERE space = 'kill' GROUP BY 1, 2
                    ), rolled AS (
                        SELECT feature, grain, count AS n, count * mean AS total FROM scouter.{table}
                        WHERE space = 'kill'
                    )
                    SELECT '{table}', * FROM raw FULL JOIN rolled USING (feature, grain)
                    WHERE raw.n IS DISTINCT FROM rolled.n OR abs(raw.total - rolled.total) > 1e-9 * raw.n
                """)
                found += [tuple(r) for r in rows]
            # the SPC segments (a trigger) and the writer's summaries: one each per feature (one batch, one
            # transaction), counting exactly its rows (the script's entity has an SPC profile)
            rows = await conn.fetch("""
                WITH raw AS (
                    SELECT feature, count(*) AS n, min(created_at) AS first_at, max(created_at) AS last_at
                    FROM scouter.spc_drift WHERE space = 'kill' GROUP BY 1
                )
                SELECT 'summaries', * FROM raw
                FULL JOIN scouter.spc_segment AS g USING (feature)
                FULL JOIN scouter.spc_summary AS s USING (feature)
                WHERE raw.n IS DISTINCT FROM g.n OR raw.n IS DISTINCT FROM s.n
                   OR raw.first_at IS DISTINCT FROM s.first_at OR raw.last_at IS DISTINCT FROM s.last_at
            """)
            found += [tuple(r) for r in rows]
        finally:
            await conn.close()
        return found

    assert [] == asyncio.run(disagreements())
