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
