"""Rows stored before created_at was bounded (year 9999, ±infinity, 300 future days) never stop a start: the real
server becomes ready, maintenance and an archive pass complete, and the odd rows are reported, not fatal."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import tempfile
import time
from pathlib import Path

import asyncpg
import httpx
import pytest

from tests.services import free_port_pair

from .conftest import LiveServer, server_environment

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

UTC = dt.UTC


async def _store_hostile_rows(dsn: str) -> None:
    """What the old decoder let through, stored as the writer stored it (asyncpg turns datetime.max into infinity
    and datetime.min into -infinity), plus ordinary rows past retention for the archive pass to write."""
    today = dt.datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)
    stamps = [
        dt.datetime(9999, 12, 31, 10, tzinfo=UTC),  # crashed maintenance: day + 1 overflows
        dt.datetime.max.replace(tzinfo=UTC),  # 9999-12-31T23:59:59.999999Z: stored as infinity
        dt.datetime.min.replace(tzinfo=UTC),  # 0001-01-01T00:00:00Z: stored as -infinity, failed every archive pass
        *(today + dt.timedelta(days=10 + d) for d in range(300)),  # 300 partitions at the next round
    ]
    old = today - dt.timedelta(days=45)
    conn = await asyncpg.connect(dsn)
    try:
        await conn.copy_records_to_table(
            "spc_drift",
            schema_name="scouter",
            columns=["created_at", "space", "name", "version", "feature", "value"],
            records=[(stamp, "hostile", "nm", "1", "f", 1.0) for stamp in stamps]
            + [(old + dt.timedelta(minutes=m), "zz_good", "nm", "1", "f", float(m)) for m in range(5)],
        )
        assert 2 == await conn.fetchval("SELECT count(*) FROM scouter.spc_drift WHERE NOT isfinite(created_at)")
    finally:
        await conn.close()


def _metric(text: str, name: str, **labels: str) -> float:
    selector = ",".join(f'{key}="{value}"' for key, value in labels.items())
    pattern = re.escape(f"{name}{{{selector}}}" if labels else name) + r" ([0-9.e+-]+)"
    found = re.search(pattern, text)
    return float(found.group(1)) if found else 0.0


def test_server_starts_and_reports_rows_stored_before_the_bound(fresh_database_dsn: str) -> None:
    """First start migrates an empty database; the hostile rows are stored with plain SQL; the second start
    becomes ready, its maintenance round and archive pass complete, the good rows are archived, and the odd rows
    show in the log and in scouter_partition_default_rows / scouter_archive_groups_failed_total."""
    port = free_port_pair()
    with tempfile.TemporaryDirectory(prefix="scouter-hostile-") as scratch:
        env = server_environment(fresh_database_dsn, port, Path(scratch), POLLING_WORKER_COUNT="1")
        first = LiveServer(env, f"http://127.0.0.1:{port}")
        try:
            first.wait_ready()
        finally:
            assert 0 == first.stop(), first.log()
        asyncio.run(_store_hostile_rows(fresh_database_dsn))

        port = free_port_pair()  # the first server's port may linger in TIME_WAIT
        env["SCOUTER_SERVER_PORT"] = str(port)
        server = LiveServer(env, f"http://127.0.0.1:{port}")
        try:
            server.wait_ready()
            deadline = time.monotonic() + 60
            while True:
                metrics = httpx.get(f"{server.url}/metrics", timeout=5).text
                if _metric(metrics, "scouter_archive_passes_total", outcome="ok") >= 1:
                    break
                assert time.monotonic() < deadline, f"no archive pass; log:\n{server.log()}"
                time.sleep(0.2)
            assert 200 == httpx.get(f"{server.url}/scouter/readyz", timeout=5).status_code
            assert 303 == _metric(metrics, "scouter_partition_default_rows", table="spc_drift")
            assert 1 == _metric(metrics, "scouter_archive_groups_failed_total", kind="spc")  # the -infinity row
            assert 5 == _metric(metrics, "scouter_archive_rows_total", kind="spc")
            assert 0 == _metric(metrics, "scouter_supervisor_restarts_total", child="maintenance")
        finally:
            code = server.stop()
        log = server.log()
        assert 0 == code, log
        assert "303 rows in the default partition have a created_at outside the partitioned range" in log
        assert "rows cannot be archived, skipped" in log
