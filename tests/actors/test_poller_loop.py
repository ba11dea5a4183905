"""The poller's loop in virtual time, on a scripted database: when it polls, sleeps, backs off and stops."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest
import trio
import trio.testing
from prometheus_client import CollectorRegistry

from actors.alert_channel import AlertChannel, open_alert_channel
from actors.database import DatabaseHandle
from actors.metrics import ScouterMetrics
from actors.poller import ClaimedCheck, Poller, PollerConfig

CLAIMED = ClaimedCheck(
    uid="u",
    space="s",
    name="n",
    version="v",
    drift_type="Custom",
    profile="{}",
    schedule="0 0 0 * * *",
    due_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    previous_run=None,
    failures=0,
    lease_token=uuid.uuid4(),
    reclaimed_from=None,
)


class ScriptedDb:
    """Answers each claim with the next scripted value (raising it when it is an exception)."""

    def __init__(self, *answers: Any) -> None:
        self.answers = list(answers)
        self.calls: list[float] = []

    async def run(self, work: Any, *args: Any, transaction: bool = False) -> Any:
        await trio.lowlevel.checkpoint()
        self.calls.append(trio.current_time())
        answer = self.answers.pop(0) if self.answers else None
        if isinstance(answer, BaseException):
            raise answer
        return answer


class CountingPoller(Poller):
    """Records checks instead of running them."""

    async def check(self, claimed: ClaimedCheck) -> str:
        await trio.lowlevel.checkpoint()
        return "clean"


def make(db: ScriptedDb, index: int = 0, **config: Any) -> Poller:
    metrics = ScouterMetrics.create(CollectorRegistry(), process=False)
    send, _ = open_alert_channel(1)
    handle = DatabaseHandle(db)  # type: ignore[arg-type]  # duck-typed Database
    return CountingPoller("w/poller-0", handle, AlertChannel(send, metrics), metrics, PollerConfig(**config), index)


async def run_until(poller: Poller, stop_at: float) -> float:
    """Run the loop, set stop at `stop_at`, return when the loop returned (relative to the start)."""
    t0 = trio.current_time()
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(poller.run, stop)
        await trio.sleep(stop_at)
        stop.set()
    return trio.current_time() - t0


async def test_sleeps_follow_what_is_due(autojump_clock: trio.testing.MockClock) -> None:
    """Nothing active: 10 s; due in 2.5 s: 2.5 s; due but locked: 0.2 s; after a check: at once."""
    db = ScriptedDb(None, 2.5, -1.0, CLAIMED, None)
    t0 = trio.current_time()
    with trio.fail_after(100):
        await run_until(make(db), 20)
    assert [0.0, 10.0, 12.5, 12.7, 12.7] == [round(t - t0, 6) for t in db.calls]


async def test_first_poll_is_staggered(autojump_clock: trio.testing.MockClock) -> None:
    """Poller 3 of a group polls first after 3 x 0.2 s."""
    db = ScriptedDb()
    t0 = trio.current_time()
    with trio.fail_after(100):
        await run_until(make(db, index=3), 1)
    assert [0.6] == [round(t - t0, 6) for t in db.calls]


async def test_database_outage_backs_off(autojump_clock: trio.testing.MockClock) -> None:
    """Claims failing with connection errors are retried after about 0.5 s, 1 s, 2 s, then normal polling."""
    db = ScriptedDb(OSError("refused"), ConnectionError("reset"), OSError("refused"), 5.0)
    t0 = trio.current_time()
    with trio.fail_after(100):
        await run_until(make(db), 9)
    gaps = [b - a for a, b in zip([t0, *db.calls], db.calls, strict=False)][1:]
    assert 5 == len(db.calls)
    assert 0.4 <= gaps[0] <= 0.6
    assert 0.8 <= gaps[1] <= 1.2
    assert 1.6 <= gaps[2] <= 2.4
    assert 5.0 == round(gaps[3], 6)


async def test_stop_interrupts_idle_sleep(autojump_clock: trio.testing.MockClock) -> None:
    """Asked to stop 3 s into a 10 s idle sleep, the loop returns at once."""
    with trio.fail_after(100):
        assert 3.0 == round(await run_until(make(ScriptedDb(None)), 3), 6)


async def test_a_bug_crashes_the_poller(autojump_clock: trio.testing.MockClock) -> None:
    """An error that is not an outage (a bug) leaves the loop, for the supervisor to restart it."""
    poller = make(ScriptedDb(KeyError("bug")))
    with trio.fail_after(100), pytest.raises(KeyError, match="bug"):
        await poller.run(trio.Event())
