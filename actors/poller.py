"""The drift pollers (spec §6.2, §12 #10): claim a due profile as a lease, run its check, store the alerts and
reschedule it, all of one check's writes in one transaction.

Each `Poller` loops until asked to stop:

1. Claim one due, active profile (``FOR UPDATE SKIP LOCKED``; an expired lease counts as due: that is the reaper).
2. Nothing due: sleep until the earliest profile is due, at most ``idle_poll`` (upstream: 10 s), waking on stop.
3. Otherwise run the check: fix its bound and read its window's aggregates in one snapshot (``[previous_run,
   bound)`` plus the rows committed since the previous check read, `scouter.sql._poller`; SPC through the write-time
   summaries where it can, `actors._spc_reads`), evaluate (pure, in a worker thread for SPC), then in one
   transaction that presents the lease token: insert the alerts, reschedule (``previous_run`` = the bound,
   ``next_run`` = the schedule's first firing after now). Then poll again at once.
   A late check reads everything since the last bound once, whatever the number of due times it missed.
4. A check that fails (bad profile, query error, over ``check_timeout``) is recorded (``failures``, ``last_error``)
   and retried with back-off (`scouter.checks`); it is never left ``processing``.
5. Stop: a check under way is finished within the child's grace; if the grace runs out the check is cancelled and
   the lease handed back (shielded, bounded), so another worker or replica takes it at once. A worker that dies
   without that (process killed) leaves a lease that expires after ``lease`` seconds.

A database outage is retried inside the loop with capped back-off; only bugs crash a poller (its supervisor restarts
it). Alerts found become a notice on the alert channel after COMMIT (`actors.alert_channel`).

`DueGauge` is the drift sub-tree's periodic reporter: due-but-unclaimed profiles and expired leases.
"""

from __future__ import annotations

import collections
import datetime as dt
import functools
import logging
import os
import random
import socket
import time
import uuid
from collections.abc import Sequence
from typing import Any

import asyncpg
import attrs
import orjson
import trio

from scouter.checks import (
    RETRY_BASE,
    CheckWindow,
    Findings,
    check_features,
    custom_findings,
    next_after_failure,
    next_after_success,
    psi_distributions,
    psi_findings,
)
from scouter.profiles import CustomDriftProfile, DriftProfile, PsiDriftProfile, SpcDriftProfile, profile_from_data
from scouter.rollups import GRAIN, HOUR, plan
from scouter.sql import (
    CLAIM_DUE_PROFILE,
    CUSTOM_CHECK_MEANS,
    DUE_COUNTS,
    INSERT_ALERTS,
    LOCK_LEASE,
    PRUNE_ARRIVALS,
    PSI_CHECK_DISTRIBUTIONS,
    RECORD_FAILURE,
    RELEASE_LEASE,
    RESCHEDULE,
    ROLLUP_SINCE,
    SECONDS_UNTIL_DUE,
    WINDOW_BOUND,
)

from ._spc_reads import spc_judge, spc_window
from .alert_channel import AlertChannel, AlertNotice, StoredAlert
from .database import UNAVAILABLE, DatabaseHandle
from .metrics import ScouterMetrics

log = logging.getLogger("actors.poller")

__all__ = ["ClaimedCheck", "DueGauge", "Poller", "PollerConfig", "PollerStatistics", "poller_id"]


@attrs.frozen
class PollerConfig:
    lease: float = 60.0  # seconds a claim is held; after that another worker may take the task over
    # a longer check fails and is retried. Keep it well inside the lease: an overrunning check still cannot store
    # anything twice (its writes present the lease token), but its work is wasted.
    check_timeout: float = 30.0
    idle_poll: float = 10.0  # longest sleep when nothing is due (upstream's 10 s)
    stagger: float = 0.2  # poller i polls first after i x stagger (upstream: 200 ms)
    retry_base: float = RETRY_BASE.total_seconds()  # back-off unit of failed checks (tests shorten it)
    release_timeout: float = 2.0  # shielded, bounded hand-back of the lease when cancelled mid-check
    min_wait: float = 0.2  # a due profile locked by another claim: look again this soon


def poller_id(index: int) -> str:
    """``host:pid/poller-N``: who holds a lease, for operators (the lease token is what fences writes)."""
    return f"{socket.gethostname()}:{os.getpid()}/poller-{index}"


@attrs.frozen
class ClaimedCheck:
    """A claimed profile (plain values: no asyncpg object reaches trio code)."""

    uid: str
    space: str
    name: str
    version: str
    drift_type: str
    profile: str  # the stored jsonb, as text
    schedule: str
    due_at: dt.datetime  # the next_run that made it due
    previous_run: dt.datetime | None  # the previous check's bound: this check's window starts there
    failures: int
    lease_token: uuid.UUID
    reclaimed_from: str | None  # the worker whose lease had expired, when this claim took one over
    previous_snapshot: str | None = None  # the snapshot the previous check read in (rows it could not see yet)


@attrs.frozen
class _Judged:
    """One check's evaluation, before it is stored."""

    profile: DriftProfile
    findings: Findings
    window: CheckWindow
    late: int  # rows of the window committed after the previous check read, created before its start


@attrs.frozen
class _Finished:
    next_run: dt.datetime
    note: str | None
    alerts: tuple[StoredAlert, ...]


@attrs.frozen
class PollerStatistics:
    checks: int
    drift: int
    failed: int
    lease_lost: int
    released: int
    reclaimed: int
    alerts: int


# -- asyncio side: one crossing per unit of work -----------------------------------------------------------------
async def _claim(conn: asyncpg.Connection, lease: float, worker: str) -> ClaimedCheck | float | None:
    """The claimed check, or else the seconds until something is due (None: no active profile)."""
    row = await conn.fetchrow(CLAIM_DUE_PROFILE, lease, worker)
    if row is None:
        seconds: float | None = await conn.fetchval(SECONDS_UNTIL_DUE)
        return seconds
    return ClaimedCheck(
        uid=row["uid"],
        space=row["space"],
        name=row["name"],
        version=row["version"],
        drift_type=row["drift_type"],
        profile=row["profile"],
        schedule=row["schedule"],
        due_at=row["next_run"],
        previous_run=row["previous_run"],
        failures=row["failures"],
        lease_token=row["lease_token"],
        reclaimed_from=(row["was_claimed_by"] or "unknown") if row["was_status"] == "processing" else None,
        previous_snapshot=row["previous_snapshot"],
    )


def _window_args(c: ClaimedCheck, w: CheckWindow, names: Sequence[str]) -> tuple[Any, ...]:
    return (c.space, c.name, c.version, w.start, w.end, w.after, list(names))


async def _rollup_args(conn: asyncpg.Connection, c: ClaimedCheck, w: CheckWindow, names: Sequence[str]) -> Any:
    """`_window_args` and the window's split (`scouter.rollups.plan`): its whole hours and minutes from the rollups,
    the rest from the rows (see `CUSTOM_CHECK_MEANS` for the order). A window from the beginning of time (a profile
    never checked) reads the rows only."""
    if w.start is None:
        return (*_window_args(c, w, names), [], [], [None], [w.end], [], [])
    split = plan(w.start, w.end, None, await conn.fetchval(ROLLUP_SINCE), end_inclusive=False)
    minutes = (split.starts(GRAIN), split.stops(GRAIN))
    hours = (split.starts(HOUR), split.stops(HOUR))
    return (*_window_args(c, w, names), *minutes, split.raw_starts, split.raw_stops, *hours)


async def _psi_rows(conn: asyncpg.Connection, c: ClaimedCheck, w: CheckWindow, features: Sequence[str]) -> Any:
    rows = await conn.fetch(PSI_CHECK_DISTRIBUTIONS, *await _rollup_args(conn, c, w, features))
    return [(r["feature"], r["bin_id"], r["sample_size"], r["proportion"]) for r in rows], sum(r["late"] for r in rows)


async def _custom_means(conn: asyncpg.Connection, c: ClaimedCheck, w: CheckWindow, metrics: Sequence[str]) -> Any:
    rows = await conn.fetch(CUSTOM_CHECK_MEANS, *await _rollup_args(conn, c, w, metrics))
    return {r["metric"]: r["value"] for r in rows}, sum(r["late"] for r in rows)


async def _read_window(conn: asyncpg.Connection, c: ClaimedCheck, read: Any, names: Sequence[str]) -> Any:
    """Fix the check's bound and read its window in one REPEATABLE READ snapshot, so the snapshot stored with the
    bound is exactly what the check saw: ``(window, data, late rows)``; data None when there is nothing to read."""
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        row = await conn.fetchrow(WINDOW_BOUND, c.previous_run)
        window = CheckWindow(c.previous_run, row["bound"], row["snapshot"], c.previous_snapshot)
        if read is None:
            return window, None, 0
        data, late = await read(conn, c, window, names)
        return window, data, late


async def _finish(
    conn: asyncpg.Connection, c: ClaimedCheck, window: CheckWindow, alerts_json: str | None
) -> _Finished | None:
    """In one transaction: alerts and reschedule, or nothing at all when the lease was lost."""
    lock = await conn.fetchrow(LOCK_LEASE, c.uid, c.lease_token)
    if lock is None:
        return None
    next_run, note = next_after_success(lock["schedule"], lock["now"])
    stored: tuple[StoredAlert, ...] = ()
    if alerts_json is not None:
        rows = await conn.fetch(INSERT_ALERTS, c.space, c.name, c.version, c.drift_type, alerts_json)
        stored = tuple(StoredAlert(r["id"], r["created_at"], orjson.loads(r["alert"])) for r in rows)
    await conn.execute(RESCHEDULE, c.uid, c.lease_token, window.end, next_run, note, window.snapshot)
    await conn.execute(PRUNE_ARRIVALS, c.space, c.name, c.version, c.drift_type, window.snapshot)
    return _Finished(next_run, note, stored)


async def _fail(conn: asyncpg.Connection, c: ClaimedCheck, error: str, base: dt.timedelta) -> dt.datetime | None:
    """Record a failed check and schedule its retry; None when the lease was lost."""
    lock = await conn.fetchrow(LOCK_LEASE, c.uid, c.lease_token)
    if lock is None:
        return None
    retry = next_after_failure(lock["schedule"], lock["now"], lock["failures"] + 1, base)
    await conn.execute(RECORD_FAILURE, c.uid, c.lease_token, retry, error)
    return retry


async def _due_counts(conn: asyncpg.Connection) -> tuple[int, int]:
    row = await conn.fetchrow(DUE_COUNTS)
    return row["due"], row["expired"]


# -- trio side ---------------------------------------------------------------------------------------------------
@attrs.define(eq=False)
class Poller:
    """One polling worker. Consumes due profiles from the database; produces alert rows and `AlertNotice`s."""

    worker_id: str
    handle: DatabaseHandle
    alerts: AlertChannel
    metrics: ScouterMetrics
    config: PollerConfig = PollerConfig()
    index: int = 0  # position among its siblings: staggers the first poll
    _counts: collections.Counter[str] = attrs.Factory(collections.Counter)

    def statistics(self) -> PollerStatistics:
        return PollerStatistics(**{field.name: self._counts[field.name] for field in attrs.fields(PollerStatistics)})

    def _count(self, key: str, n: int = 1) -> None:
        self._counts[key] += n

    async def run(self, stop: trio.Event, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        with trio.move_on_after(self.index * self.config.stagger):
            await stop.wait()
        backoff = 0.5
        while not stop.is_set():
            try:
                wait = await self.poll_once()
                backoff = 0.5
            except UNAVAILABLE as exc:
                log.warning("%s: database unavailable (%r); polling again in %.1f s", self.worker_id, exc, backoff)
                wait = backoff * random.uniform(0.8, 1.2)
                backoff = min(backoff * 2, 30.0)
            if wait > 0:
                with trio.move_on_after(wait):
                    await stop.wait()

    async def claim(self) -> ClaimedCheck | float | None:
        """Claim one due profile as a lease; else the seconds until one is due (None: no active profile)."""
        claimed: ClaimedCheck | float | None = await self.handle.get().run(_claim, self.config.lease, self.worker_id)
        if isinstance(claimed, ClaimedCheck) and claimed.reclaimed_from is not None:
            self._count("reclaimed")
            self.metrics.drift_stale_leases.inc()
            log.warning(
                "%s: took over %s %s/%s/%s (due %s): the lease of %s had expired",
                self.worker_id,
                claimed.drift_type,
                claimed.space,
                claimed.name,
                claimed.version,
                claimed.due_at.isoformat(),
                claimed.reclaimed_from,
            )
        return claimed

    async def poll_once(self) -> float:
        """Claim and check one due profile (then 0: poll again at once), or return how long to sleep."""
        claimed = await self.claim()
        if not isinstance(claimed, ClaimedCheck):
            if claimed is None:
                return self.config.idle_poll
            return min(max(claimed, self.config.min_wait), self.config.idle_poll)
        await self.check(claimed)
        return 0.0

    async def check(self, claimed: ClaimedCheck) -> str:
        """Run one claimed check to its end; returns the outcome: clean, drift, failed or lease_lost (released when
        cancelled, unavailable when the database went away: both re-raise)."""
        started = time.perf_counter()
        outcome = "failed"
        try:
            try:
                with trio.fail_after(self.config.check_timeout):
                    judged = await self._evaluate(claimed)
                outcome = await self._store(claimed, judged)
            except UNAVAILABLE:
                outcome = "unavailable"
                raise  # the database is gone: the lease expires and the check runs again then
            except Exception as exc:  # a failed check, never a dead worker: recorded and retried
                outcome = await self._record_failure(claimed, exc)
        except trio.Cancelled:
            outcome = "released"
            await self._release(claimed)
            raise
        finally:
            self._count("checks")
            self._count(outcome)
            self.metrics.drift_checks.labels(claimed.drift_type, outcome).inc()
            self.metrics.drift_check_duration.labels(claimed.drift_type).observe(time.perf_counter() - started)
        return outcome

    async def _evaluate(self, c: ClaimedCheck) -> _Judged:
        profile = profile_from_data(c.drift_type, orjson.loads(c.profile))
        names = check_features(profile)
        db = self.handle.get()
        if isinstance(profile, SpcDriftProfile):
            read = functools.partial(spc_window, profile=profile)
            window, data, late = await db.run(_read_window, c, read, names)
            # numpy over up to millions of points: off the event loop (pure, so abandoning it on cancel is safe)
            findings = await trio.to_thread.run_sync(spc_judge, profile, data, abandon_on_cancel=True)
            return _Judged(profile, findings, window, late)
        if isinstance(profile, PsiDriftProfile):
            window, rows, late = await db.run(_read_window, c, _psi_rows if names else None, names)
            return _Judged(profile, psi_findings(profile, psi_distributions(rows or [])), window, late)
        assert isinstance(profile, CustomDriftProfile)
        window, means, late = await db.run(_read_window, c, _custom_means if names else None, names)
        return _Judged(profile, custom_findings(profile, means or {}), window, late)

    async def _store(self, c: ClaimedCheck, judged: _Judged) -> str:
        profile, findings = judged.profile, judged.findings
        alerts_json = orjson.dumps(list(findings.alerts)).decode() if findings.alerts else None
        finished: _Finished | None = await self.handle.get().run(
            _finish, c, judged.window, alerts_json, transaction=True
        )
        if finished is None:
            log.warning(
                "%s: lease on %s lost before the check ended: its results were discarded", self.worker_id, c.uid
            )
            return "lease_lost"
        entity = f"{c.drift_type} {c.space}/{c.name}/{c.version}"
        if judged.late:
            # the known limit of created_at windows: judged now, with this window, not with the one of its created_at
            self.metrics.drift_late_records.labels(c.drift_type).inc(judged.late)
            log.info("%s: %d record(s) committed after their window was read, judged now", entity, judged.late)
        if finished.note is not None:
            log.error("%s: checked, but cannot follow the schedule %r: %s", entity, c.schedule, finished.note)
        if not finished.alerts:
            log.debug("%s: no drift in %d point(s); next run %s", entity, findings.observed, finished.next_run)
            return "clean"
        self._count("alerts", len(finished.alerts))
        self.metrics.drift_alerts.labels(c.drift_type).inc(len(finished.alerts))
        log.info("%s: %d drift alert(s) stored; next run %s", entity, len(finished.alerts), finished.next_run)
        self.alerts.offer(
            AlertNotice(c.uid, c.space, c.name, c.version, c.drift_type, profile.dispatch_config, finished.alerts)
        )
        return "drift"

    async def _record_failure(self, c: ClaimedCheck, exc: Exception) -> str:
        error = f"{type(exc).__name__}: {exc}"[:2000]
        base = dt.timedelta(seconds=self.config.retry_base)
        retry = await self.handle.get().run(_fail, c, error, base, transaction=True)
        if retry is None:
            log.warning("%s: check of %s failed after its lease was lost: %s", self.worker_id, c.uid, error)
            return "lease_lost"
        log.error(
            "%s %s/%s/%s: check failed (%d in a row), retrying at %s: %s",
            c.drift_type,
            c.space,
            c.name,
            c.version,
            c.failures + 1,
            retry.isoformat(),
            error,
            exc_info=exc,
        )
        return "failed"

    async def _release(self, c: ClaimedCheck) -> None:
        """Hand the lease back (cancelled mid-check); shielded and bounded, never raises."""
        with trio.move_on_after(self.config.release_timeout, shield=True) as scope:
            try:
                await self.handle.get().execute(RELEASE_LEASE, c.uid, c.lease_token)
                log.info("%s: stopped mid-check, released %s", self.worker_id, c.uid)
                return
            except Exception as exc:  # the lease then simply expires
                log.warning("%s: could not release %s (%r); its lease will expire", self.worker_id, c.uid, exc)
                return
        if scope.cancelled_caught:
            log.warning("%s: releasing %s timed out; its lease will expire", self.worker_id, c.uid)


@attrs.define
class DueGauge:
    """Every ``interval`` seconds, one cheap count: due profiles nobody has claimed, and expired leases among them."""

    handle: DatabaseHandle
    metrics: ScouterMetrics
    interval: float = 15.0

    async def update(self) -> tuple[int, int]:
        due, expired = await self.handle.get().run(_due_counts)
        self.metrics.drift_due_profiles.set(due)
        self.metrics.drift_expired_leases.set(expired)
        if expired:
            log.warning(
                "%d due profile(s) hold an expired lease (their worker died); pollers will take them over", expired
            )
        return due, expired

    async def run(self, stop: trio.Event, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        next_at = trio.current_time()
        while not stop.is_set():
            try:
                await self.update()
            except UNAVAILABLE as exc:
                log.debug("due-profiles count skipped, database unavailable: %r", exc)
            next_at += self.interval
            with trio.move_on_at(next_at):
                await stop.wait()
