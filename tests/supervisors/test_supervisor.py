"""The supervision runtime in virtual time: order, strategies, intensity, two-phase stop, nesting."""

from __future__ import annotations

import functools
import math

import pytest
import trio
import trio.testing

from supervisors import (
    ChildKilled,
    ChildSpec,
    ChildState,
    Monitor,
    Restart,
    RestartIntensityExceeded,
    Strategy,
    SupervisorSpec,
    supervise,
)


class Journal:
    """Records (virtual time, event) pairs relative to the start of the test."""

    def __init__(self) -> None:
        self.t0 = trio.current_time()
        self.events: list[tuple[float, str]] = []

    def note(self, what: str) -> None:
        self.events.append((trio.current_time() - self.t0, what))

    def names(self) -> list[str]:
        return [what for _, what in self.events]


def polite(journal: Journal, name: str, *, ready_after: float = 0.0, crash_after: float | None = None):
    """A child that starts after ``ready_after``, optionally crashes later, and returns when asked to stop."""

    async def start(stop: trio.Event, task_status=trio.TASK_STATUS_IGNORED) -> None:
        journal.note(f"start {name}")
        await trio.sleep(ready_after)
        task_status.started()
        if crash_after is None:
            await stop.wait()
        else:
            with trio.move_on_after(crash_after):
                await stop.wait()
            if not stop.is_set():
                journal.note(f"crash {name}")
                raise ValueError(f"{name} boom")
        journal.note(f"stop {name}")

    return start


async def run_until(spec: SupervisorSpec, at: float, monitor: Monitor | None = None) -> None:
    """Runs ``spec`` and asks it to stop ``at`` seconds of virtual time later."""
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(functools.partial(supervise, spec, stop, monitor=monitor))
        await trio.sleep(at)
        stop.set()


async def test_crashing_child_escalates(mock_clock: trio.testing.MockClock) -> None:
    """A child that crashes every second exhausts 3 restarts in 5 s and takes its supervisor down."""
    starts: list[float] = []
    t0 = trio.current_time()

    async def flaky(stop: trio.Event, task_status=trio.TASK_STATUS_IGNORED) -> None:
        starts.append(trio.current_time() - t0)
        task_status.started()
        await trio.sleep(1)
        raise ValueError("boom")

    spec = SupervisorSpec(children=(ChildSpec("flaky", flaky),), intensity=3, period=5)
    with trio.fail_after(3600), pytest.raises(RestartIntensityExceeded) as info:
        await supervise(spec, trio.Event())

    assert [0, 1, 2, 3] == starts
    assert "flaky" == info.value.child_id
    assert "boom" == str(info.value.last_error)


async def test_restarts_spread_over_time_never_escalate(mock_clock: trio.testing.MockClock) -> None:
    """Crashes further apart than the period allow restarts forever: the window slides."""
    starts: list[float] = []

    async def slow_flaky(stop: trio.Event, task_status=trio.TASK_STATUS_IGNORED) -> None:
        starts.append(trio.current_time())
        task_status.started()
        await trio.sleep(6)
        raise ValueError("boom")

    spec = SupervisorSpec(children=(ChildSpec("slow", slow_flaky),), intensity=1, period=5)
    with trio.fail_after(3600):
        await run_until(spec, 61)
    assert 11 == len(starts)


async def test_children_start_in_order_after_ready_and_stop_in_reverse(mock_clock: trio.testing.MockClock) -> None:
    """Each child starts only once the previous one reported ready; stop runs last-started first."""
    journal = Journal()
    spec = SupervisorSpec(
        children=(
            ChildSpec("a", polite(journal, "a", ready_after=1)),
            ChildSpec("b", polite(journal, "b", ready_after=2)),
            ChildSpec("c", polite(journal, "c")),
        )
    )
    with trio.fail_after(3600):
        await run_until(spec, 10)
    assert [
        (0, "start a"),
        (1, "start b"),
        (3, "start c"),
        (10, "stop c"),
        (10, "stop b"),
        (10, "stop a"),
    ] == journal.events


async def test_supervisor_reports_ready_after_all_children(mock_clock: trio.testing.MockClock) -> None:
    """supervise() itself reports ready only when its last child has."""
    journal = Journal()
    spec = SupervisorSpec(children=(ChildSpec("a", polite(journal, "a", ready_after=2)),))
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        await nursery.start(functools.partial(supervise, spec, stop))
        journal.note("ready")
        stop.set()
    assert [(0, "start a"), (2, "ready"), (2, "stop a")] == journal.events


async def test_stubborn_child_is_cancelled_at_its_deadline(mock_clock: trio.testing.MockClock) -> None:
    """Phase two: a child that ignores the stop request is cancelled exactly when its shutdown grace runs out."""
    journal = Journal()

    async def stubborn(stop: trio.Event, task_status=trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        try:
            await trio.sleep_forever()
        finally:
            journal.note("cancelled")

    async def slow_to_stop(stop: trio.Event, task_status=trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        await stop.wait()
        await trio.sleep(1.5)  # drains within its grace
        journal.note("drained")

    spec = SupervisorSpec(
        children=(ChildSpec("drainer", slow_to_stop, shutdown=5), ChildSpec("stubborn", stubborn, shutdown=2.5))
    )
    with trio.fail_after(3600):
        await run_until(spec, 10)
    assert [(12.5, "cancelled"), (14, "drained")] == journal.events


async def test_zero_shutdown_cancels_at_once(mock_clock: trio.testing.MockClock) -> None:
    """shutdown=0 skips the polite phase."""
    journal = Journal()

    async def child(stop: trio.Event, task_status=trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        try:
            await trio.sleep_forever()
        finally:
            journal.note("cancelled")

    with trio.fail_after(3600):
        await run_until(SupervisorSpec(children=(ChildSpec("x", child, shutdown=0),)), 3)
    assert [(3, "cancelled")] == journal.events


async def test_one_for_one_restarts_only_the_failed_child(mock_clock: trio.testing.MockClock) -> None:
    """one_for_one: siblings of a crashed child keep running."""
    journal = Journal()
    spec = SupervisorSpec(
        children=(
            ChildSpec("a", polite(journal, "a")),
            ChildSpec("b", polite(journal, "b", crash_after=4)),
            ChildSpec("c", polite(journal, "c")),
        ),
        strategy=Strategy.ONE_FOR_ONE,
    )
    with trio.fail_after(3600):
        await run_until(spec, 6)
    assert ["start a", "start b", "start c", "crash b", "start b", "stop c", "stop b", "stop a"] == journal.names()


async def test_one_for_all_restarts_everyone_in_order(mock_clock: trio.testing.MockClock) -> None:
    """one_for_all: the others stop in reverse order, then all start again in order."""
    journal = Journal()
    spec = SupervisorSpec(
        children=(
            ChildSpec("a", polite(journal, "a")),
            ChildSpec("b", polite(journal, "b", crash_after=4)),
            ChildSpec("c", polite(journal, "c")),
        ),
        strategy=Strategy.ONE_FOR_ALL,
    )
    with trio.fail_after(3600):
        await run_until(spec, 6)
    assert [
        "start a", "start b", "start c",
        "crash b", "stop c", "stop a",
        "start a", "start b", "start c",
        "stop c", "stop b", "stop a",
    ] == journal.names()  # fmt: skip


async def test_rest_for_one_restarts_the_failed_child_and_those_after_it(mock_clock: trio.testing.MockClock) -> None:
    """rest_for_one: children started before the failed one are untouched."""
    journal = Journal()
    spec = SupervisorSpec(
        children=(
            ChildSpec("a", polite(journal, "a")),
            ChildSpec("b", polite(journal, "b", crash_after=4)),
            ChildSpec("c", polite(journal, "c")),
        ),
        strategy=Strategy.REST_FOR_ONE,
    )
    with trio.fail_after(3600):
        await run_until(spec, 6)
    assert [
        "start a", "start b", "start c",
        "crash b", "stop c",
        "start b", "start c",
        "stop c", "stop b", "stop a",
    ] == journal.names()  # fmt: skip


@pytest.mark.parametrize(
    ("restart", "raises", "expected_starts"),
    [
        (Restart.PERMANENT, False, 3),
        (Restart.PERMANENT, True, 3),
        (Restart.TRANSIENT, False, 1),
        (Restart.TRANSIENT, True, 3),
        (Restart.TEMPORARY, False, 1),
        (Restart.TEMPORARY, True, 1),
    ],
)
async def test_restart_types(
    mock_clock: trio.testing.MockClock, restart: Restart, raises: bool, expected_starts: int
) -> None:
    """permanent restarts on any exit, transient only on a crash, temporary never."""
    starts = 0

    async def child(stop: trio.Event, task_status=trio.TASK_STATUS_IGNORED) -> None:
        nonlocal starts
        starts += 1
        task_status.started()
        await trio.sleep(4)
        if raises:
            raise ValueError("boom")

    spec = SupervisorSpec(children=(ChildSpec("x", child, restart=restart),), intensity=10, period=1)
    with trio.fail_after(3600):
        await run_until(spec, 10)
    assert expected_starts == starts


async def test_failed_start_counts_as_a_restart(mock_clock: trio.testing.MockClock) -> None:
    """A child that raises before reporting ready is retried within the intensity, then the supervisor gives up."""
    attempts = 0

    async def broken(stop: trio.Event, task_status=trio.TASK_STATUS_IGNORED) -> None:
        nonlocal attempts
        attempts += 1
        await trio.sleep(0.5)
        raise ConnectionError("no database")

    spec = SupervisorSpec(children=(ChildSpec("db", broken),), intensity=2, period=10)
    with trio.fail_after(3600), pytest.raises(RestartIntensityExceeded) as info:
        await supervise(spec, trio.Event())
    assert 3 == attempts
    assert isinstance(info.value.last_error, ConnectionError)


async def test_nested_supervisor_escalates_to_its_parent(mock_clock: trio.testing.MockClock) -> None:
    """A sub-supervisor that gives up is a crashed child of its parent; the root names the innermost child."""
    journal = Journal()
    inner_monitor = Monitor(("root",)).child("inner")

    async def flaky(stop: trio.Event, task_status=trio.TASK_STATUS_IGNORED) -> None:
        journal.note("start flaky")
        task_status.started()
        await trio.sleep(1)
        raise ValueError("deep boom")

    inner = SupervisorSpec(children=(ChildSpec("flaky", flaky),), intensity=1, period=10)
    outer = SupervisorSpec(
        children=(
            ChildSpec("sibling", polite(journal, "sibling")),
            ChildSpec("inner", functools.partial(supervise, inner, monitor=inner_monitor), shutdown=math.inf),
        ),
        intensity=1,
        period=10,
    )
    with trio.fail_after(3600), pytest.raises(RestartIntensityExceeded) as info:
        await supervise(outer, trio.Event(), monitor=Monitor(("root",)))
    assert ("inner/flaky", "deep boom") == (info.value.root_cause()[0], str(info.value.root_cause()[1]))
    # inner gives up after 2 starts; the parent restarts it once (2 more starts), then gives up and stops sibling
    assert ["start sibling"] + ["start flaky"] * 4 + ["stop sibling"] == journal.names()


async def test_monitor_tracks_states_and_readiness(mock_clock: trio.testing.MockClock) -> None:
    """The monitor shows starting, running, then nothing once the tree has stopped."""
    monitor = Monitor(("scouter",))
    gate = trio.Event()

    async def gated(stop: trio.Event, task_status=trio.TASK_STATUS_IGNORED) -> None:
        await gate.wait()
        task_status.started()
        await stop.wait()

    sub = SupervisorSpec(children=(ChildSpec("leaf", polite(Journal(), "leaf")),))
    spec = SupervisorSpec(
        children=(
            ChildSpec("sub", functools.partial(supervise, sub, monitor=monitor.child("sub")), shutdown=math.inf),
            ChildSpec("gated", gated),
        )
    )
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(functools.partial(supervise, spec, stop, monitor=monitor))
        await trio.testing.wait_all_tasks_blocked()
        assert {
            "scouter/sub": ChildState.RUNNING,
            "scouter/sub/leaf": ChildState.RUNNING,
            "scouter/gated": ChildState.STARTING,
        } == monitor.states()
        assert not monitor.ready()
        gate.set()
        await trio.testing.wait_all_tasks_blocked()
        assert monitor.ready()
        stop.set()
    assert {} == monitor.states()


async def test_stop_during_start_is_prompt(mock_clock: trio.testing.MockClock) -> None:
    """A stop request reaches a child that is still starting; later children are never started."""
    journal = Journal()

    async def never_ready(stop: trio.Event, task_status=trio.TASK_STATUS_IGNORED) -> None:
        await stop.wait()
        journal.note("gave up starting")

    spec = SupervisorSpec(children=(ChildSpec("slow", never_ready), ChildSpec("after", polite(journal, "after"))))
    with trio.fail_after(3600):
        await run_until(spec, 7)
    assert [(7, "gave up starting")] == journal.events


async def test_restart_listener_sees_every_restart(mock_clock: trio.testing.MockClock) -> None:
    """Restart listeners (metrics) hear each restart with the child's path."""
    monitor = Monitor(("root",))
    heard: list[str] = []
    monitor.add_restart_listener(heard.append)
    journal = Journal()
    spec = SupervisorSpec(children=(ChildSpec("b", polite(journal, "b", crash_after=2)),), intensity=5, period=100)
    with trio.fail_after(3600):
        await run_until(spec, 5, monitor)
    assert ["root/b", "root/b"] == heard
    assert {"root/b": 2} == monitor.restarts()


async def test_a_killed_child_is_restarted_as_a_crash(
    mock_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    """Monitor.kill cancels a running child where it is (no stop event, no grace); its supervisor handles it as a
    crash: rest_for_one restarts it and those after it, counts the restart, and a nested child is found by path."""
    monitor = Monitor(("root",))
    journal = Journal()
    killed_with: list[BaseException] = []

    async def cleanup_on_cancel(stop: trio.Event, task_status=trio.TASK_STATUS_IGNORED) -> None:
        journal.note("start b")
        task_status.started()
        try:
            await stop.wait()
        except trio.Cancelled as cancelled:
            killed_with.append(cancelled)
            journal.note("b cancelled")
            raise
        journal.note("stop b")

    sub = SupervisorSpec(children=(ChildSpec("leaf", polite(journal, "leaf")),))
    spec = SupervisorSpec(
        children=(
            ChildSpec("a", polite(journal, "a")),
            ChildSpec("b", cleanup_on_cancel, shutdown=math.inf),
            ChildSpec("sub", functools.partial(supervise, sub, monitor=monitor.child("sub")), shutdown=math.inf),
        ),
        strategy=Strategy.REST_FOR_ONE,
    )
    stop = trio.Event()
    with trio.fail_after(3600):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(functools.partial(supervise, spec, stop, monitor=monitor))
            await trio.sleep(1)
            monitor.kill("root/b")
            await trio.sleep(1)
            assert monitor.ready()
            monitor.kill("root/sub/leaf")
            await trio.sleep(1)
            with pytest.raises(LookupError, match="root/nope"):
                monitor.kill("root/nope")
            stop.set()
    assert [
        "start a", "start b", "start leaf",
        "b cancelled", "stop leaf",
        "start b", "start leaf",
        "start leaf",
        "stop leaf", "stop b", "stop a",
    ] == journal.names()  # fmt: skip
    assert 1 == len(killed_with)
    assert {"root/b": 1, "root/sub/leaf": 1} == monitor.restarts()
    assert f"root/b crashed: {ChildKilled('b')!r}" in caplog.text
