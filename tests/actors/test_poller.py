"""The drift pollers against a real PostgreSQL: planted drift raises exactly the expected alerts, leases expire,
failures are retried, inactive profiles are left alone."""

from __future__ import annotations

import datetime as dt
import math
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import asyncpg
import numpy as np
import orjson
import pytest
import trio
import trio_asyncio
from scipy import stats

from actors.alert_channel import AlertChannel, AlertNotice, open_alert_channel
from actors.database import Database, DatabaseHandle
from actors.metrics import ScouterMetrics
from actors.poller import ClaimedCheck, DueGauge, Poller, PollerConfig
from scouter.profiles import ConsoleDispatch
from scouter.schedule import next_fire
from supervisors import ChildSpec, SupervisorSpec, supervise
from tests.drift_profiles import (
    CUSTOM_COLUMNS,
    PSI_COLUMNS,
    SPC_COLUMNS,
    copy_rows,
    custom_profile,
    insert_profile,
    psi_profile,
    spc_profile,
)

pytestmark = pytest.mark.postgres

ROOT = Path(__file__).resolve().parents[2]
ENTITY = ("cap", "model", "1.0.0")
SECOND = dt.timedelta(seconds=1)


class Rig:
    """A poller on the test database with its alert channel."""

    def __init__(self, db: Database, metrics: ScouterMetrics, config: PollerConfig, worker: str = "test/poller-0"):
        send, self.notices = open_alert_channel(10)
        self.channel = AlertChannel(send, metrics)
        self.poller = Poller(worker, DatabaseHandle(db), self.channel, metrics, config)
        self.db = db

    async def claim(self) -> ClaimedCheck:
        claimed = await self.poller.claim()
        assert isinstance(claimed, ClaimedCheck), claimed
        return claimed

    async def check_one(self) -> str:
        return await self.poller.check(await self.claim())


@pytest.fixture
def rig(db: Database, metrics: ScouterMetrics) -> Rig:
    return Rig(db, metrics, PollerConfig(lease=30, check_timeout=10, retry_base=0.4))


async def profile_row(db: Database, uid: str) -> dict[str, Any]:
    row = await db.fetchrow("SELECT * FROM scouter.drift_profile WHERE uid = $1", uid)
    assert row is not None
    return dict(row)


async def alert_rows(db: Database) -> list[tuple[Any, ...]]:
    rows = await db.fetch(
        "SELECT space, name, version, entity_name, alert::text AS alert, drift_type, id"
        " FROM scouter.drift_alert ORDER BY id"
    )
    return [
        (r["space"], r["name"], r["version"], r["entity_name"], orjson.loads(r["alert"]), r["drift_type"]) for r in rows
    ]


def checks(metrics: ScouterMetrics, drift_type: str, outcome: str) -> float:
    value = metrics.registry.get_sample_value(
        "scouter_drift_checks_total", {"drift_type": drift_type, "outcome": outcome}
    )
    return value or 0.0


def assert_rescheduled(row: dict[str, Any], after: dt.datetime) -> None:
    """Pending, lease cleared, previous_run = the check's bound (fixed after `after`, before the reschedule) with its
    snapshot, next_run = the schedule's first firing after `after`."""
    assert ("pending", None, None, None, None) == (
        row["status"],
        row["lease_expires_at"],
        row["claimed_by"],
        row["lease_token"],
        row["processing_started_at"],
    )
    assert after <= row["previous_run"] <= row["updated_at"]
    assert row["previous_snapshot"] is not None
    assert next_fire(row["schedule"], after) == row["next_run"]


# --- planted drift ------------------------------------------------------------------------------------------------


async def test_spc_planted_out_of_bounds_point(
    db: Database, rig: Rig, metrics: ScouterMetrics, now: dt.datetime
) -> None:
    """One point past feature_0's 3-sigma limit: exactly one Zone 4 alert, stored, announced, rescheduled."""
    due, previous = now - SECOND, now - dt.timedelta(hours=1)
    uid = await db.run(
        insert_profile,
        spc_profile({"feature_0": (0.0, 1.0), "feature_1": (5.0, 0.5)}),
        due,
        previous,
    )
    t = now - dt.timedelta(minutes=30)
    rows = [(t + i * SECOND, *ENTITY, "feature_0", 3.5 if i == 5 else 0.0) for i in range(6)]  # newest is out
    rows += [(t + i * SECOND, *ENTITY, "feature_1", 5.0) for i in range(6)]
    rows += [(previous - SECOND, *ENTITY, "feature_1", 100.0)]  # before the window: ignored
    await db.run(copy_rows, "spc_drift", SPC_COLUMNS, rows)

    assert "drift" == await rig.check_one()

    expected = {"entity_name": "feature_0", "kind": "Out of bounds", "zone": "Zone 4"}
    assert [(*ENTITY, "feature_0", expected, "Spc")] == await alert_rows(db)
    assert_rescheduled(await profile_row(db, uid), now)
    notice: AlertNotice = rig.notices.receive_nowait()
    ids = [r["id"] for r in await db.fetch("SELECT id FROM scouter.drift_alert")]
    assert (uid, *ENTITY, "Spc", ConsoleDispatch(True)) == (
        notice.uid,
        notice.space,
        notice.name,
        notice.version,
        notice.drift_type,
        notice.dispatch_config,
    )
    assert (tuple(ids), (expected,)) == (notice.alert_ids, tuple(a.alert for a in notice.alerts))
    assert 1.0 == checks(metrics, "Spc", "drift")
    assert 1.0 == metrics.registry.get_sample_value("scouter_drift_alerts_total", {"drift_type": "Spc"})


async def test_psi_skewed_bins(db: Database, rig: Rig, now: dt.datetime) -> None:
    """Samples in 2 of 10 uniform bins alert with numpy/scipy's PSI and threshold; uniform samples do not."""
    due, previous = now - SECOND, now - dt.timedelta(hours=1)
    profile = psi_profile({"f": [0.1] * 10, "g": [0.1] * 10})
    uid = await db.run(insert_profile, profile, due, previous)
    t = now - dt.timedelta(minutes=5)
    rows = [(t, *ENTITY, "f", 1, 150), (t + SECOND, *ENTITY, "f", 1, 150), (t, *ENTITY, "f", 2, 100)]
    rows += [(t, *ENTITY, "f", b, 0) for b in range(3, 11)]  # zero-count bins are rows too
    rows += [(t, *ENTITY, "g", b, 40) for b in range(1, 11)]
    rows += [(previous - SECOND, *ENTITY, "g", 1, 10_000)]  # before the window
    await db.run(copy_rows, "psi_drift", PSI_COLUMNS, rows)

    assert "drift" == await rig.check_one()

    p = np.full(10, 0.1) + 1e-10
    q = np.array([0.75, 0.25] + [0.0] * 8) + 1e-10
    [(space, name, version, entity, alert, drift_type)] = await alert_rows(db)
    assert (*ENTITY, "f", "Psi", "f") == (space, name, version, entity, drift_type, alert["entity_name"])
    assert math.isclose(float(np.sum((p - q) * np.log(p / q))), float(alert["psi"]), rel_tol=1e-12)
    assert math.isclose(stats.chi2.ppf(0.95, 9) / 400, float(alert["threshold"]), rel_tol=1e-9)
    assert_rescheduled(await profile_row(db, uid), now)


async def test_custom_metric_above(db: Database, rig: Rig, now: dt.datetime) -> None:
    """mae averaging 2.0 against 1.0 with Above 0.5 alerts; accuracy within its Below margin does not."""
    due, previous = now - SECOND, now - dt.timedelta(hours=1)
    profile = custom_profile({"mae": 1.0, "accuracy": 0.9}, {"mae": ("Above", 0.5), "accuracy": ("Below", 0.1)})
    uid = await db.run(insert_profile, profile, due, previous)
    t = now - dt.timedelta(minutes=5)
    rows = [(t, *ENTITY, "mae", 1.5), (t + SECOND, *ENTITY, "mae", 2.5), (t, *ENTITY, "accuracy", 0.85)]
    await db.run(copy_rows, "custom_drift", CUSTOM_COLUMNS, rows)

    assert "drift" == await rig.check_one()

    expected = {
        "entity_name": "mae",
        "training_metric_value": "1",
        "observed_metric_value": "2",
        "alert_threshold_value": "0.5",
        "alert_threshold": "Above",
    }
    assert [(*ENTITY, "mae", expected, "Custom")] == await alert_rows(db)
    assert_rescheduled(await profile_row(db, uid), now)


@pytest.mark.parametrize("drift_type", ["Spc", "Psi", "Custom"])
async def test_no_drift_raises_nothing(
    db: Database, rig: Rig, metrics: ScouterMetrics, now: dt.datetime, drift_type: str
) -> None:
    """Data that matches the profile: no alert row, no notice, outcome clean, rescheduled all the same."""
    due, t = now - SECOND, now - dt.timedelta(minutes=5)
    if drift_type == "Spc":
        profile = spc_profile({"a": (0.0, 1.0)})
        await db.run(
            copy_rows,
            "spc_drift",
            SPC_COLUMNS,
            [(t + i * SECOND, *ENTITY, "a", (0.1, 0.1, -0.1, -0.1, 0.0)[i % 5]) for i in range(30)],
        )
    elif drift_type == "Psi":
        profile = psi_profile({"a": [0.1] * 10})
        await db.run(copy_rows, "psi_drift", PSI_COLUMNS, [(t, *ENTITY, "a", b, 50) for b in range(1, 11)])
    else:
        profile = custom_profile({"a": 1.0}, {"a": ("Outside", 0.5)})
        await db.run(copy_rows, "custom_drift", CUSTOM_COLUMNS, [(t, *ENTITY, "a", 1.2)])
    uid = await db.run(insert_profile, profile, due, now - dt.timedelta(hours=1))

    assert "clean" == await rig.check_one()

    assert [] == await alert_rows(db)
    with pytest.raises(trio.WouldBlock):
        rig.notices.receive_nowait()
    assert_rescheduled(await profile_row(db, uid), now)
    assert 1.0 == checks(metrics, drift_type, "clean")


async def test_first_run_without_previous_run_reads_everything(db: Database, rig: Rig, now: dt.datetime) -> None:
    """A profile with no previous_run (never registered through the routes) looks at all its data."""
    profile = custom_profile({"a": 1.0}, {"a": ("Below", None)})
    uid = await db.run(insert_profile, profile, now - SECOND, None)
    await db.run(copy_rows, "custom_drift", CUSTOM_COLUMNS, [(now - dt.timedelta(days=3), *ENTITY, "a", 0.5)])
    assert "drift" == await rig.check_one()
    assert now <= (await profile_row(db, uid))["previous_run"]


# --- what is polled -------------------------------------------------------------------------------------------


async def test_inactive_and_future_profiles_are_not_polled(db: Database, rig: Rig, now: dt.datetime) -> None:
    """A running poller checks the due active profile and leaves inactive and not-yet-due ones untouched."""
    off = custom_profile({"a": 1.0}, None, name="off")
    inactive = await db.run(insert_profile, off, now - SECOND, None, False)
    later = custom_profile({"a": 1.0}, None, name="later")
    future = await db.run(insert_profile, later, now + dt.timedelta(hours=1), None)
    before = {uid: await profile_row(db, uid) for uid in (inactive, future)}
    on = custom_profile({"a": 1.0}, None, name="due")
    due = await db.run(insert_profile, on, now - SECOND, None)

    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(rig.poller.run, stop)
        with trio.fail_after(10):
            while (await profile_row(db, due))["previous_run"] is None:
                await trio.sleep(0.05)
        stop.set()

    for uid, row in before.items():
        assert row == await profile_row(db, uid)
    assert 1 == rig.poller.statistics().checks


async def test_claim_reports_time_until_due(db: Database, rig: Rig, now: dt.datetime) -> None:
    """Nothing due: claim returns the seconds until the earliest active profile is due, None without any."""
    assert await rig.poller.claim() is None
    await db.run(insert_profile, custom_profile({"a": 1.0}, None), now + dt.timedelta(seconds=30), None)
    wait = await rig.poller.claim()
    assert isinstance(wait, float)
    assert 25 < wait <= 30
    assert 10.0 == await rig.poller.poll_once()  # capped at idle_poll


# --- failures and leases ---------------------------------------------------------------------------------------


async def test_failing_check_is_retried_with_backoff_never_stuck(
    db: Database, rig: Rig, metrics: ScouterMetrics, now: dt.datetime
) -> None:
    """A bad rule fails, is retried with doubling back-off and its error kept; once fixed it succeeds and clears."""
    previous = now - dt.timedelta(hours=1)
    profile = spc_profile({"a": (0.0, 1.0)}, rule="8 16 4")
    uid = await db.run(insert_profile, profile, now - SECOND, previous)

    assert "failed" == await rig.check_one()
    first = await profile_row(db, uid)
    assert ("pending", None, None, 1, previous) == (
        first["status"], first["lease_token"], first["claimed_by"], first["failures"], first["previous_run"]
    )  # fmt: skip
    assert first["last_error"].startswith("SpcRuleError: ")
    assert dt.timedelta(seconds=0.4) == first["next_run"] - first["updated_at"]  # both from the failure's now()

    with trio.fail_after(5):
        while not isinstance(claimed := await rig.poller.claim(), ClaimedCheck):
            await trio.sleep(0.05)
    assert "failed" == await rig.poller.check(claimed)
    second = await profile_row(db, uid)
    assert 2 == second["failures"]
    assert dt.timedelta(seconds=0.8) == second["next_run"] - second["updated_at"]

    fixed = spc_profile({"a": (0.0, 1.0)})
    await db.execute(
        "UPDATE scouter.drift_profile SET profile = $2::jsonb WHERE uid = $1", uid, orjson.dumps(fixed).decode()
    )
    with trio.fail_after(5):
        while not isinstance(claimed := await rig.poller.claim(), ClaimedCheck):
            await trio.sleep(0.05)
    assert "clean" == await rig.poller.check(claimed)
    done = await profile_row(db, uid)
    assert (0, None) == (done["failures"], done["last_error"])
    assert second["next_run"] <= done["previous_run"]  # the retry's bound: it ran once due
    assert 2.0 == checks(metrics, "Spc", "failed")


async def test_unparsable_profile_fails_without_killing_the_worker(db: Database, rig: Rig, now: dt.datetime) -> None:
    """A stored profile that is not a valid profile document is a failed check; the worker keeps polling."""
    uid = await db.run(insert_profile, custom_profile({"a": 1.0}, None), now - SECOND, None)
    await db.execute("UPDATE scouter.drift_profile SET profile = '{\"config\": 1}' WHERE uid = $1", uid)
    ok = await db.run(insert_profile, custom_profile({"a": 1.0}, None, name="ok"), now, None)
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(rig.poller.run, stop)
        with trio.fail_after(10):
            while (await profile_row(db, ok))["previous_run"] is None:
                await trio.sleep(0.05)
        stop.set()
    row = await profile_row(db, uid)
    assert ("pending", 1) == (row["status"], row["failures"])
    assert row["last_error"].startswith("ProfileError: ")


async def test_lost_lease_writes_nothing(db: Database, metrics: ScouterMetrics, now: dt.datetime) -> None:
    """A worker whose expired lease was taken over stores and reschedules nothing (fencing token): one check."""
    profile = custom_profile({"a": 1.0}, {"a": ("Above", None)})
    uid = await db.run(insert_profile, profile, now - SECOND, None)
    await db.run(copy_rows, "custom_drift", CUSTOM_COLUMNS, [(now - dt.timedelta(minutes=1), *ENTITY, "a", 3.0)])
    slow = Rig(db, metrics, PollerConfig(lease=0.2), "slow/poller-0")
    fast = Rig(db, metrics, PollerConfig(lease=30), "fast/poller-0")

    stale = await slow.claim()
    await trio.sleep(0.3)  # the slow worker's lease expires
    taken = await fast.claim()
    assert "slow/poller-0" == taken.reclaimed_from
    assert "drift" == await fast.poller.check(taken)
    assert "lease_lost" == await slow.poller.check(stale)

    assert 1 == len(await alert_rows(db))
    assert now <= (await profile_row(db, uid))["previous_run"]
    assert 1.0 == metrics.registry.get_sample_value("scouter_drift_stale_leases_reclaimed_total")
    assert (1, 0) == (fast.poller.statistics().reclaimed, slow.poller.statistics().reclaimed)


async def _lock_spc_table(dsn: str) -> asyncpg.Connection:
    conn = await trio_asyncio.aio_as_trio(asyncpg.connect)(dsn)
    await trio_asyncio.aio_as_trio(conn.execute)("BEGIN; LOCK TABLE scouter.spc_drift IN ACCESS EXCLUSIVE MODE")
    return conn


async def _wait_for_blocked_check(db: Database) -> None:
    """Until some session of this database waits on a lock while reading spc_drift."""
    with trio.fail_after(20):
        while not await db.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND wait_event_type = 'Lock' AND query LIKE '%spc_drift%'"
        ):
            await trio.sleep(0.05)


async def test_stop_mid_check_releases_the_lease(
    db: Database, metrics: ScouterMetrics, now: dt.datetime, fresh_database_dsn: str
) -> None:
    """Stopped mid-check, a poller is cancelled after its grace and hands the lease back: due again at once."""
    due = now - SECOND
    uid = await db.run(insert_profile, spc_profile({"a": (0.0, 1.0)}), due, None)
    await db.run(copy_rows, "spc_drift", SPC_COLUMNS, [(now - dt.timedelta(minutes=1), *ENTITY, "a", 9.0)])
    blocked = Rig(db, metrics, PollerConfig(lease=300), "blocked/poller-0")
    lock = await _lock_spc_table(fresh_database_dsn)
    try:
        stop = trio.Event()
        spec = SupervisorSpec((ChildSpec("poller-0", blocked.poller.run, shutdown=0.5),))
        async with trio.open_nursery() as nursery:
            nursery.start_soon(supervise, spec, stop)
            await _wait_for_blocked_check(db)
            assert "processing" == (await profile_row(db, uid))["status"]
            stop.set()
        row = await profile_row(db, uid)
        assert ("pending", None, None, due, None) == (
            row["status"], row["lease_expires_at"], row["claimed_by"], row["next_run"], row["previous_run"]
        )  # fmt: skip
        assert 1.0 == checks(metrics, "Spc", "released")
    finally:
        await trio_asyncio.aio_as_trio(lock.execute)("ROLLBACK")
        await trio_asyncio.aio_as_trio(lock.close)()
    assert "drift" == await Rig(db, metrics, PollerConfig()).check_one()


async def test_killed_worker_task_runs_again_after_the_lease(
    db: Database, metrics: ScouterMetrics, now: dt.datetime, fresh_database_dsn: str
) -> None:
    """A poller process SIGKILLed mid-check: its task is claimable only once the lease expires, then checked."""
    due = now - SECOND
    uid = await db.run(insert_profile, spc_profile({"a": (0.0, 1.0)}), due, None)
    await db.run(copy_rows, "spc_drift", SPC_COLUMNS, [(now - dt.timedelta(minutes=1), *ENTITY, "a", 9.0)])
    lock = await _lock_spc_table(fresh_database_dsn)
    script = [sys.executable, "-m", "tests.actors.poller_script", fresh_database_dsn, "1", "3"]
    proc = await trio.lowlevel.open_process(script, cwd=ROOT, stderr=subprocess.DEVNULL)
    try:
        await _wait_for_blocked_check(db)
        claimed = await profile_row(db, uid)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        await proc.wait()
        await trio_asyncio.aio_as_trio(lock.execute)("ROLLBACK")
        await trio_asyncio.aio_as_trio(lock.close)()
    assert "processing" == claimed["status"]
    assert claimed["claimed_by"].endswith(f":{proc.pid}/poller-0")

    survivor = Rig(db, metrics, PollerConfig(), "survivor/poller-0")
    early = await survivor.poller.claim()
    assert isinstance(early, float)  # not claimable while the lease runs
    assert 0 < early <= 3
    with trio.fail_after(10):
        while not isinstance(taken := await survivor.poller.claim(), ClaimedCheck):
            await trio.sleep(0.1)
    assert claimed["lease_expires_at"] <= await db.fetchval("SELECT now()")
    assert claimed["claimed_by"] == taken.reclaimed_from
    assert "drift" == await survivor.poller.check(taken)
    assert 1 == len(await alert_rows(db))
    assert claimed["lease_expires_at"] <= (await profile_row(db, uid))["previous_run"]


async def test_due_gauge_counts_due_and_expired(db: Database, metrics: ScouterMetrics, now: dt.datetime) -> None:
    """The gauge counts active due profiles, pending or with an expired lease; not claimed or inactive ones."""
    for i, (offset, active) in enumerate([(-5, True), (-4, True), (-3, True), (60, True), (-2, False)]):
        profile = custom_profile({"a": 1.0}, None, name=f"m{i}")
        await db.run(insert_profile, profile, now + offset * SECOND, None, active)
    await Rig(db, metrics, PollerConfig(lease=0.1), "dead/poller-0").claim()  # m0: lease about to expire
    await Rig(db, metrics, PollerConfig(lease=60), "busy/poller-0").claim()  # m1: held
    await trio.sleep(0.2)
    gauge = DueGauge(DatabaseHandle(db), metrics)
    assert (2, 1) == await gauge.update()
    assert 2.0 == metrics.registry.get_sample_value("scouter_drift_due_profiles")
    assert 1.0 == metrics.registry.get_sample_value("scouter_drift_expired_leases")


async def test_pollers_share_due_profiles_exactly_once(db: Database, metrics: ScouterMetrics, now: dt.datetime) -> None:
    """Four pollers draining 60 due profiles check each exactly once (SKIP LOCKED), one alert per profile."""
    for i in range(60):
        profile = custom_profile({"a": 1.0}, {"a": ("Above", None)}, name=f"m{i}")
        await db.run(insert_profile, profile, now - SECOND, None)
        await db.run(copy_rows, "custom_drift", CUSTOM_COLUMNS, [(now - SECOND, "cap", f"m{i}", "1.0.0", "a", 2.0)])
    rigs = [Rig(db, metrics, PollerConfig(stagger=0.0), f"w/poller-{i}") for i in range(4)]
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        for r in rigs:
            nursery.start_soon(r.poller.run, stop)
        with trio.fail_after(30):
            while await db.fetchval("SELECT count(*) FROM scouter.drift_profile WHERE previous_run IS NULL"):
                await trio.sleep(0.05)
        stop.set()
    per_profile = await db.fetch("SELECT name, count(*) AS n FROM scouter.drift_alert GROUP BY name")
    assert {f"m{i}": 1 for i in range(60)} == {r["name"]: r["n"] for r in per_profile}
    assert 60 == sum(r.poller.statistics().checks for r in rigs)


async def test_full_alert_channel_drops_notices_not_alerts(
    db: Database, metrics: ScouterMetrics, now: dt.datetime
) -> None:
    """Nobody reads the channel: once full, notices are counted as dropped while alerts keep being stored."""
    send, receive = open_alert_channel(1)
    poller = Poller("w/poller-0", DatabaseHandle(db), AlertChannel(send, metrics), metrics)
    for i in range(3):
        profile = custom_profile({"a": 1.0}, {"a": ("Above", None)}, name=f"m{i}")
        await db.run(insert_profile, profile, now - SECOND, None)
        await db.run(copy_rows, "custom_drift", CUSTOM_COLUMNS, [(now - SECOND, "cap", f"m{i}", "1.0.0", "a", 2.0)])
    for _ in range(3):
        assert 0.0 == await poller.poll_once()
    assert 3 == len(await alert_rows(db))
    assert 2.0 == metrics.registry.get_sample_value("scouter_alert_notices_dropped_total", {"reason": "full"})
    assert "m0" == receive.receive_nowait().name
