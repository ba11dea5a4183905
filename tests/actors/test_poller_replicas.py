"""Two poller processes on one database, one killed with -9 while records keep arriving: the windows of each
profile's checks tile time (no overlap, no gap, whoever checked), and each drifting record raises one alert.

Records are stored the way clients send them: ``created_at`` a little in the past (up to 1.5 s), in transactions
that stay open a moment, so some are committed after the check of their window read (judged by the next one).
"""

from __future__ import annotations

import datetime as dt
import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import trio

from actors.database import Database
from tests.drift_profiles import custom_profile, insert_profile

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
PROFILES = 20
FEED_ROUNDS = 50  # every 0.1 s: a normal record per profile; one drifting record per profile somewhere among them
LEASE = "2"

# Every check that moves a profile's bound logs the window it read and who read it.
CHECK_LOG = """
CREATE TABLE public.check_log (
    uid text, window_start timestamptz, window_end timestamptz, snapshot pg_snapshot, worker text
);
CREATE FUNCTION public.log_check() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.previous_run IS DISTINCT FROM OLD.previous_run THEN
        INSERT INTO public.check_log
            VALUES (NEW.uid, OLD.previous_run, NEW.previous_run, NEW.previous_snapshot, OLD.claimed_by);
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER log_check AFTER UPDATE ON scouter.drift_profile FOR EACH ROW EXECUTE FUNCTION public.log_check();
"""

# $1 name, $2 value, $3 seconds before now for created_at, $4 seconds to keep the transaction open before COMMIT.
FEED = """
INSERT INTO scouter.custom_drift (created_at, space, name, version, metric, value)
SELECT clock_timestamp() - make_interval(secs => $3), 'cap', $1, '1.0.0', 'mae', $2
FROM (SELECT pg_sleep($4)) AS held
"""

# Records whose transaction the check of their created_at's window could not see: the next check judged them.
LATE_ROWS = """
SELECT count(*) FROM scouter.custom_drift d
JOIN scouter.drift_profile p ON (p.space, p.name, p.version) = (d.space, d.name, d.version)
JOIN public.check_log l ON l.uid = p.uid AND d.created_at >= l.window_start AND d.created_at < l.window_end
WHERE NOT pg_visible_in_snapshot(d.written_xid, l.snapshot)
"""


async def _feed(db: Database, drift_round: dict[str, int]) -> None:
    rng = random.Random(7)
    async with trio.open_nursery() as nursery:
        for r in range(FEED_ROUNDS):
            for name, at in drift_round.items():
                value = 100.0 if r == at else 1.0  # 1.0 = the training value: no alert unless the 100.0 is in
                hold = rng.uniform(0, 0.3) if rng.random() < 0.1 else 0.0
                nursery.start_soon(db.execute, FEED, name, value, rng.uniform(0, 1.5), hold)
            await trio.sleep(0.1)


async def test_killed_replica_leaves_tiled_windows_and_one_alert_per_drifting_record(
    db: Database, fresh_database_dsn: str
) -> None:
    await db.execute(CHECK_LOG)
    now: dt.datetime = await db.fetchval("SELECT now()")
    start = now - dt.timedelta(seconds=1)
    rng = random.Random(11)
    drift_round = {f"m{i:02}": rng.randrange(FEED_ROUNDS) for i in range(PROFILES)}
    first = {}
    for name in drift_round:
        profile = custom_profile({"mae": 1.0}, {"mae": ("Above", None)}, name=name, schedule="* * * * * *")
        first[await db.run(insert_profile, profile, now, start)] = start

    script = [sys.executable, "-m", "tests.actors.poller_script", fresh_database_dsn, "2", LEASE]
    killed = await trio.lowlevel.open_process(script, cwd=ROOT, stderr=subprocess.DEVNULL)
    survivor = await trio.lowlevel.open_process(script, cwd=ROOT, stderr=subprocess.DEVNULL)
    try:
        with trio.fail_after(60):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_feed, db, drift_round)
                while not await db.fetchval(  # the victim holds a lease when it dies
                    "SELECT count(*) FROM scouter.drift_profile WHERE claimed_by LIKE $1", f"%:{killed.pid}/%"
                ) or 2 > await db.fetchval("SELECT count(*) FROM public.check_log"):
                    await trio.sleep(0.01)
                await trio.sleep(rng.uniform(1.0, 2.0))
                killed.send_signal(signal.SIGKILL)
            fed: dt.datetime = await db.fetchval("SELECT now()")  # every record is committed
            while await db.fetchval("SELECT count(*) FROM scouter.drift_profile WHERE previous_run <= $1", fed):
                await trio.sleep(0.1)  # until every profile was checked by a read that saw them all
    finally:
        for proc in (killed, survivor):
            proc.send_signal(signal.SIGTERM if proc is survivor else signal.SIGKILL)
        with trio.move_on_after(30):
            await survivor.wait()
        survivor.kill()
        await killed.wait()
        await survivor.wait()

    log = await db.fetch("SELECT uid, window_start, window_end, worker FROM public.check_log ORDER BY window_start")
    windows: dict[str, list[tuple[dt.datetime, dt.datetime]]] = {}
    for row in log:
        windows.setdefault(row["uid"], []).append((row["window_start"], row["window_end"]))
    assert set(first) == set(windows)
    for uid, chain in windows.items():
        assert first[uid] == chain[0][0]
        assert all(s < e for s, e in chain), chain
        assert [e for _, e in chain[:-1]] == [s for s, _ in chain[1:]], chain  # no overlap, no gap
    workers = {row["worker"].split("/")[0] for row in log}
    assert {f"{pid}" for pid in (killed.pid, survivor.pid)} == {w.rsplit(":", 1)[1] for w in workers}

    late: int = await db.fetchval(LATE_ROWS)  # committed after the check of their created_at's window read
    assert late > 0
    alerts = await db.fetch("SELECT name, count(*) AS n FROM scouter.drift_alert GROUP BY name")
    assert dict.fromkeys(drift_round, 1) == {r["name"]: r["n"] for r in alerts}
