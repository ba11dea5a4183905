"""Two real `scouter serve` processes on one database share the drift checks: each due time of each profile is
checked exactly once, by one of them, the checks' windows tile time, and each drifting record raises one alert.

A trigger logs every successful reschedule (due time checked, next due time set, the window read, worker). Per
profile the logged due times must form one unbroken chain from the first due time (none skipped, none twice), the
windows one unbroken chain too, the one drifting record one alert, both processes must have taken part, and a
graceful stop must leave nothing processing.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import httpx
import pytest

from tests.drift_profiles import CUSTOM_COLUMNS, copy_rows, custom_profile, insert_profile

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
PROFILES = 200
ROUNDS = 3  # due times per profile to wait for
T = TypeVar("T")

# Every successful check moves previous_run (its window's bound): log which due time was checked, by whom, the next
# due time set and the window read.
CHECK_LOG = """
CREATE TABLE public.check_log (
    uid text, due timestamptz, next timestamptz, worker text, window_start timestamptz, window_end timestamptz
);
CREATE FUNCTION public.log_check() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.previous_run IS DISTINCT FROM OLD.previous_run THEN
        INSERT INTO public.check_log
            VALUES (NEW.uid, OLD.next_run, NEW.next_run, OLD.claimed_by, OLD.previous_run, NEW.previous_run);
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER log_check AFTER UPDATE ON scouter.drift_profile FOR EACH ROW EXECUTE FUNCTION public.log_check();
"""


def on_db(dsn: str, work: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
    async def run() -> T:
        conn = await asyncpg.connect(dsn)
        try:
            return await work(conn)
        finally:
            await conn.close()

    return asyncio.run(run())


def free_port() -> int:
    """A free port whose successor is free too (metrics listen on port + 1)."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port: int = s.getsockname()[1]
        with socket.socket() as s2:
            try:
                s2.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port


class Server:
    def __init__(self, dsn: str, log: Path) -> None:
        self.port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "RABBITMQ_", "SCOUTER_", "POLLING"))}
        env.update(
            SCOUTER_SERVER_HOST="127.0.0.1",
            SCOUTER_SERVER_PORT=str(self.port),
            DATABASE_URI=dsn,
            POLLING_WORKER_COUNT="4",
            LOG_LEVEL="info",
        )
        self.log = log
        self._file = log.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "supervisors.main", "serve"], cwd=ROOT, env=env, stderr=self._file
        )

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log.read_text()
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/scouter/readyz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"not ready:\n{self.log.read_text()}")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(60)
        finally:
            self._file.close()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._file.close()


@pytest.fixture
def servers(fresh_database_dsn: str, tmp_path: Path) -> Iterator[list[Server]]:
    started: list[Server] = []
    try:
        for name in ("a", "b"):  # one after the other: the first one migrates and creates the default users
            started.append(Server(fresh_database_dsn, tmp_path / f"{name}.log"))
            started[-1].wait_ready()
        yield started
    finally:
        for server in started:
            server.kill()


async def _plant(conn: asyncpg.Connection) -> dt.datetime:
    await conn.execute(CHECK_LOG)
    now: dt.datetime = await conn.fetchval("SELECT now()")
    due = now - dt.timedelta(seconds=1)
    async with conn.transaction():  # profiles become due with their data, not before it
        for i in range(PROFILES):
            profile = custom_profile({"mae": 1.0}, {"mae": ("Above", None)}, name=f"m{i:03}", schedule="*/2 * * * * *")
            await insert_profile(conn, profile, due, None)
        rows = [(due, "cap", f"m{i:03}", "1.0.0", "mae", 2.0) for i in range(PROFILES)]  # judged by the first check
        await copy_rows(conn, "custom_drift", CUSTOM_COLUMNS, rows)
    return due


async def _progress(conn: asyncpg.Connection) -> tuple[int, int]:
    """(due times checked for the least checked profile, processes that have checked something)."""
    least: int = await conn.fetchval(
        "SELECT coalesce(min(n), 0) FROM (SELECT p.uid, count(l.uid) AS n FROM scouter.drift_profile p"
        " LEFT JOIN public.check_log l ON l.uid = p.uid GROUP BY p.uid) AS per_profile"
    )
    processes: int = await conn.fetchval("SELECT count(DISTINCT split_part(worker, '/', 1)) FROM public.check_log")
    return least, processes


async def _results(conn: asyncpg.Connection) -> dict[str, Any]:
    return {
        "log": [tuple(r) for r in await conn.fetch("SELECT uid, due, next, worker FROM public.check_log")],
        "windows": [
            tuple(r)
            for r in await conn.fetch(
                "SELECT uid, window_start, window_end FROM public.check_log ORDER BY 2 NULLS FIRST"
            )
        ],
        "profiles": {
            r["uid"]: (r["status"], r["next_run"]) for r in await conn.fetch("SELECT * FROM scouter.drift_profile")
        },
        "alerts": Counter(
            {
                r["name"]: r["n"]
                for r in await conn.fetch("SELECT name, count(*) AS n FROM scouter.drift_alert GROUP BY name")
            }
        ),
        "names": {r["uid"]: r["name"] for r in await conn.fetch("SELECT uid, name FROM scouter.drift_profile")},
    }


def test_two_servers_check_each_due_time_exactly_once(servers: list[Server], fresh_database_dsn: str) -> None:
    """Two servers, 200 profiles due every 2 s: each due time checked exactly once, one alert set per check."""
    first_due = on_db(fresh_database_dsn, _plant)
    deadline = time.monotonic() + 90
    while (progress := on_db(fresh_database_dsn, _progress))[0] < ROUNDS or progress[
        1
    ] < 2:  # idle pollers wake <= 10 s
        assert time.monotonic() < deadline, "\n".join(s.log.read_text()[-3000:] for s in servers)
        time.sleep(0.5)
    assert [0, 0] == [server.stop() for server in servers]

    results = on_db(fresh_database_dsn, _results)
    log: list[tuple[str, dt.datetime, dt.datetime, str]] = results["log"]
    assert [] == [key for key, n in Counter((uid, due) for uid, due, _, _ in log).items() if n > 1]
    by_profile: dict[str, list[tuple[dt.datetime, dt.datetime]]] = {}
    for uid, due, next_run, _ in log:
        by_profile.setdefault(uid, []).append((due, next_run))
    assert PROFILES == len(by_profile)
    for uid, chain in by_profile.items():
        chain.sort()
        assert first_due == chain[0][0]
        assert [nxt for _, nxt in chain[:-1]] == [due for due, _ in chain[1:]]  # no due time skipped
        assert ("pending", chain[-1][1]) == results["profiles"][uid]
        assert 1 == results["alerts"][results["names"][uid]]  # its one drifting record, judged once
    windows: dict[str, list[tuple[dt.datetime, dt.datetime]]] = {}
    for uid, start, end in results["windows"]:
        windows.setdefault(uid, []).append((start, end))
    for chain in windows.values():
        assert chain[0][0] is None  # never checked: the first window starts at the beginning
        assert [end for _, end in chain[:-1]] == [start for start, _ in chain[1:]]  # no overlap, no gap
    pids = {worker.split("/")[0].rsplit(":", 1)[1] for *_, worker in log}
    assert {str(s.proc.pid) for s in servers} == pids
