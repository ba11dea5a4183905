"""The alert dispatcher (spec §7, §12 #26): sends the alerts the drift pollers store, through an outbox.

The table is the source of truth; the pollers' notices (``actors.alert_channel``) only wake the dispatcher early.
Each round:

1. **Plan.** Under a transaction-level advisory lock (one planner at a time across replicas), take the pending
   alerts of the oldest checks, group them into messages (SPC, PSI: one per check; Custom: one per alert), look up
   the profile and the sample sizes in the check's window, render every channel's request body
   (`scouter.dispatch`), store one delivery per message and channel, and mark the alerts ``dispatching``. One
   transaction: a crash plans everything or nothing.
2. **Deliver.** Claim up to ``concurrency`` due deliveries with ``FOR UPDATE SKIP LOCKED`` as a lease, send them
   concurrently with httpx (on trio), and record each outcome presenting the lease token: sent (and the time), a
   retry (attempts + 1, the next attempt after exponential backoff with jitter, or after ``Retry-After``), or failed
   with the reason (a 4xx, an ``ok: false`` from Slack, or the last error once ``max_attempts`` are spent). Final
   outcomes roll up into the alerts' ``dispatch_state``. A 429 also pauses that channel for this dispatcher until
   its Retry-After has passed.
3. **Wait** until the next delivery is due, a notice arrives, or ``poll`` seconds pass.

**Delivery guarantees.** Nothing is lost: alerts are durable before the dispatcher sees them, planning is one
transaction, and a delivery stays pending until an outcome is recorded; a restarted dispatcher (or another replica)
resumes whatever is pending. Nothing is sent twice on purpose: each send and the recording of its outcome run as
one unit shielded from cancellation (bounded by ``timeout`` + a few seconds, and by 90 % of the lease), so stopping
or restarting the actor lets in-flight sends finish and be marked. What remains is the at-least-once window between
a 2xx and its mark: if the process dies there (or the database is unreachable for the few seconds the mark is
retried), the lease expires after ``lease`` seconds and the message is sent again. Receivers can fold repeats:
the webhook's ``X-Scouter-Delivery`` header and ``key`` field, OpsGenie's ``alias`` and PagerDuty's ``dedup_key``
all carry the message key (``scouter-alert-<ids>``); Slack has no such key.

Credentials are added to requests when they are sent and are never stored, logged or put in error records; webhook
URLs are logged as scheme, host and port only.
"""

from __future__ import annotations

import collections
import datetime as dt
import logging
import os
import random
import socket
import time
from collections.abc import Callable

import attrs
import httpx
import trio

from config import DispatchSettings
from scouter.dispatch import CONSOLE, FAILED, RETRY, SENT, ChannelSetup, Settled, Verdict, settle

from ._dispatch_outbox import (
    ClaimedDelivery,
    PlanResult,
    claim_due,
    plan_pending,
    purge_finished,
    record_outcome,
    seconds_until_due,
)
from ._dispatch_requests import channel_request, post
from .alert_channel import AlertReceiver
from .database import UNAVAILABLE, DatabaseHandle
from .metrics import ScouterMetrics

log = logging.getLogger("actors.dispatcher")

__all__ = [
    "RECORD_GRACE",
    "ClaimedDelivery",
    "DispatchStatistics",
    "Dispatcher",
    "PlanResult",
    "channel_setup",
    "dispatcher_grace",
    "dispatcher_id",
]

USER_AGENT = "scouter-py alert dispatcher"
#: Seconds a send's shielded unit may run beyond the request timeout to record its outcome.
RECORD_GRACE = 5.0
#: Checks (distinct alert created_at values) planned per transaction.
PLAN_BATCH = 100
#: Shortest pause between rounds while something is due soon (another replica's lease, a Retry-After).
MIN_WAIT = 0.05
#: Finished deliveries are purged this often.
PURGE_INTERVAL = 3600.0


def dispatcher_id() -> str:
    """``host:pid/dispatcher``: who holds a delivery's lease, for operators."""
    return f"{socket.gethostname()}:{os.getpid()}/dispatcher"


def dispatcher_grace(settings: DispatchSettings) -> float:
    """Stop grace of the dispatcher child: in-flight sends finish and are recorded within it."""
    return settings.timeout + RECORD_GRACE + 2.0


def channel_setup(settings: DispatchSettings) -> ChannelSetup:
    """Which channels the settings make reachable (never the credentials themselves)."""
    return ChannelSetup(
        slack=bool(settings.slack_app_token),
        opsgenie=bool(settings.opsgenie_api_key),
        webhook=bool(settings.webhook_url),
        pagerduty=bool(settings.pagerduty_routing_key),
        pagerduty_severity=settings.pagerduty_severity,
    )


@attrs.frozen
class DispatchStatistics:
    planned_messages: int
    planned_deliveries: int
    sent: int
    retried: int
    failed: int
    lease_lost: int
    reclaimed: int
    notices: int


def _print_console(text: str) -> None:
    print(text, flush=True)  # upstream's Console dispatcher prints to stdout


@attrs.define(eq=False)
class Dispatcher:
    """One dispatcher. Consumes pending alerts from the table (woken by notices); produces channel messages."""

    handle: DatabaseHandle
    settings: DispatchSettings
    metrics: ScouterMetrics
    notices: AlertReceiver | None = None
    worker_id: str = attrs.Factory(dispatcher_id)
    #: httpx transport (tests: a mock); None: the real network.
    transport: httpx.AsyncBaseTransport | None = None
    #: Where Console messages go (upstream: stdout).
    console: Callable[[str], None] = _print_console
    rng: random.Random = attrs.Factory(random.Random)
    _counts: collections.Counter[str] = attrs.Factory(collections.Counter)
    _paused: dict[str, float] = attrs.Factory(dict)  # channel -> trio time until which it is left alone
    _wake: trio.Event = attrs.Factory(trio.Event)
    _next_purge: float | None = None

    def statistics(self) -> DispatchStatistics:
        return DispatchStatistics(**{f.name: self._counts[f.name] for f in attrs.fields(DispatchStatistics)})

    def _count(self, key: str, n: int = 1) -> None:
        self._counts[key] += n

    # -- the loop ------------------------------------------------------------------------------------------------
    async def run(self, stop: trio.Event, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        # httpx logs every request's full URL at INFO, and webhook URLs carry their credential: keep it quiet.
        logging.getLogger("httpx").setLevel(max(logging.getLogger("httpx").level, logging.WARNING))
        client = httpx.AsyncClient(
            timeout=self.settings.timeout,
            transport=self.transport,
            headers={"User-Agent": USER_AGENT},
            follow_redirects=False,
        )
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._wake_on_stop, stop, name="dispatcher-stop")
                if self.notices is not None:
                    nursery.start_soon(self._listen, self.notices, name="dispatcher-notices")
                task_status.started()
                await self._loop(stop, client)
                nursery.cancel_scope.cancel(reason="dispatcher stopped")
        finally:
            with trio.move_on_after(2, shield=True):
                await client.aclose()

    async def _wake_on_stop(self, stop: trio.Event) -> None:
        await stop.wait()
        self._wake.set()

    async def _listen(self, notices: AlertReceiver) -> None:
        """Notices are only a wake-up: the alerts they name are in the table already."""
        async for notice in notices:
            self._count("notices")
            log.debug("notice: %d alert(s) for %s/%s/%s", len(notice.alerts), notice.space, notice.name, notice.version)
            self._wake.set()

    async def _loop(self, stop: trio.Event, client: httpx.AsyncClient) -> None:
        backoff = 0.5
        while not stop.is_set():
            self._wake = trio.Event()  # before the work: a notice arriving meanwhile ends the wait at once
            try:
                wait = await self.round(client)
                await self._maybe_purge()
                backoff = 0.5
            except UNAVAILABLE as exc:
                log.warning("database unavailable (%r); looking again in %.1f s", exc, backoff)
                wait = backoff * self.rng.uniform(0.8, 1.2)
                backoff = min(backoff * 2, 30.0)
            if wait > 0 and not stop.is_set():
                with trio.move_on_after(wait):
                    await self._wake.wait()

    async def round(self, client: httpx.AsyncClient) -> float:
        """Plan what is pending, send one batch of due deliveries; returns how long to wait before the next round."""
        plan = await self.plan_once()
        sent = await self.deliver_once(client)
        if plan.more or sent:
            return 0.0
        return await self._until_due()

    async def plan_once(self) -> PlanResult:
        """Turn pending alerts into deliveries (one transaction)."""
        result: PlanResult = await self.handle.get().run(
            plan_pending, PLAN_BATCH, channel_setup(self.settings), transaction=True
        )
        if result.messages:
            self._count("planned_messages", result.messages)
            self._count("planned_deliveries", result.deliveries)
            log.info("planned %d alert message(s) as %d deliveries", result.messages, result.deliveries)
        return result

    async def deliver_once(self, client: httpx.AsyncClient) -> int:
        """Claim and send up to ``concurrency`` due deliveries; returns how many were claimed."""
        claimed: list[ClaimedDelivery] = await self.handle.get().run(
            claim_due, self.settings.concurrency, self.settings.lease, self.worker_id, self._paused_channels()
        )
        if claimed:
            async with trio.open_nursery() as nursery:
                for delivery in claimed:
                    nursery.start_soon(self.deliver, client, delivery, name=f"deliver-{delivery.id}")
        return len(claimed)

    async def _until_due(self) -> float:
        seconds = await self.handle.get().run(seconds_until_due, self._paused_channels())
        wait = self.settings.poll if seconds is None else min(max(seconds, MIN_WAIT), self.settings.poll)
        if self._paused:
            wait = min(wait, max(min(self._paused.values()) - trio.current_time(), MIN_WAIT))
        return wait

    def _paused_channels(self) -> list[str]:
        now = trio.current_time()
        for channel in [c for c, until in self._paused.items() if until <= now]:
            del self._paused[channel]
        return sorted(self._paused)

    async def _maybe_purge(self) -> None:
        now = trio.current_time()
        if self._next_purge is not None and now < self._next_purge:
            return
        self._next_purge = now + PURGE_INTERVAL
        tag = await self.handle.get().run(purge_finished, self.settings.retention_days)
        if tag != "DELETE 0":
            log.info("purged finished alert deliveries older than %d days: %s", self.settings.retention_days, tag)

    # -- one delivery --------------------------------------------------------------------------------------------
    async def deliver(self, client: httpx.AsyncClient, d: ClaimedDelivery) -> None:
        """Send `d` and record the outcome, as one unit that cancellation waits for (bounded)."""
        # Bounded twice: by the timeout plus time to record, and within the lease, so that no other dispatcher can
        # take the delivery over while this one may still send it.
        budget = min(self.settings.timeout + RECORD_GRACE, self.settings.lease * 0.9)
        with trio.CancelScope(shield=True) as scope:
            scope.deadline = trio.current_time() + budget
            if d.reclaimed_from is not None:
                self._count("reclaimed")
                self.metrics.alert_deliveries_reclaimed.inc()
                log.warning(
                    "%s on %s: taking over from %s, whose lease expired (it may have been sent already)",
                    d.message_key,
                    d.channel,
                    d.reclaimed_from,
                )
            started = time.perf_counter()
            verdict = await self.send(client, d)
            self.metrics.alert_dispatch_duration.labels(d.channel).observe(time.perf_counter() - started)
            settled = settle(
                verdict,
                d.attempts,
                self.settings.max_attempts,
                self.settings.backoff,
                self.settings.backoff_max,
                self.rng.random(),
            )
            if verdict.outcome == RETRY and verdict.retry_after and settled.state == "pending":
                until = trio.current_time() + verdict.retry_after
                self._paused[d.channel] = max(self._paused.get(d.channel, until), until)
            recorded = await self._record(d, settled, verdict)
            if recorded:
                self._account(d, settled, verdict)
        if scope.cancelled_caught:
            log.warning(
                "%s on %s: not finished within %.1f s; it is sent again once its lease expires",
                d.message_key,
                d.channel,
                budget,
            )

    async def _record(self, d: ClaimedDelivery, settled: Settled, verdict: Verdict) -> bool:
        """Record the outcome, retrying a database blip briefly; False when it could not be recorded."""
        delay = 0.5
        for attempt in range(3):
            try:
                held: bool = await self.handle.get().run(record_outcome, d, settled, verdict.status, transaction=True)
            except UNAVAILABLE as exc:
                if attempt == 2:
                    log.error(
                        "%s on %s: outcome %s not recorded, database unavailable (%r); sent again once the lease "
                        "expires",
                        d.message_key,
                        d.channel,
                        settled.state,
                        exc,
                    )
                    return False
                await trio.sleep(delay)
                delay *= 2
                continue
            if not held:
                self._count("lease_lost")
                log.warning("%s on %s: lease lost before the outcome was recorded", d.message_key, d.channel)
            return held
        return False

    def _account(self, d: ClaimedDelivery, settled: Settled, verdict: Verdict) -> None:
        where = f"{d.message_key} ({d.drift_type} {d.space}/{d.name}/{d.version}) on {d.channel}"
        if settled.state == "sent":
            self._count("sent")
            self.metrics.alerts_dispatched.labels(d.channel).inc()
            delay = (dt.datetime.now(dt.UTC) - d.alert_created_at).total_seconds()
            self.metrics.alert_delivery_delay.labels(d.channel).observe(max(delay, 0.0))
            log.info("%s: sent (attempt %d)", where, d.attempts + 1)
        elif settled.state == "pending":
            self._count("retried")
            self.metrics.alerts_dispatch_retried.labels(d.channel).inc()
            log.warning(
                "%s: attempt %d failed (%s); retrying in %.1f s", where, d.attempts + 1, verdict.detail, settled.delay
            )
        else:
            self._count("failed")
            reason = "gave_up" if settled.gave_up else ("not_configured" if verdict.status is None else "rejected")
            self.metrics.alerts_dispatch_failed.labels(d.channel, reason).inc()
            log.error("%s: failed after %d attempt(s): %s", where, d.attempts + 1, settled.error)

    async def send(self, client: httpx.AsyncClient, d: ClaimedDelivery) -> Verdict:
        """One attempt at `d`: what the channel answered (Console cannot fail)."""
        if d.channel == CONSOLE:
            try:
                self.console(str(d.payload.get("text", "")))
            except OSError as exc:  # stdout closed or full: retrying will not help
                return Verdict(FAILED, f"cannot write to the console: {exc!r}")
            return Verdict(SENT)
        request = channel_request(self.settings, d.channel, d.payload, d.message_key)
        if request is None:
            return Verdict(FAILED, f"{d.channel} is not configured on this server")
        return await post(client, d.channel, request, self.settings.timeout)
