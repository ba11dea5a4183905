"""The supervisor: start children in order, restart them by strategy, stop them in reverse, in two phases.

Each running child has its own cancel scope and stop event; its exit comes back to the supervisor as a message on
an internal channel, so one loop decides every restart and nothing races.
"""

from __future__ import annotations

import collections
import functools
import logging
import math
from typing import Any

import attrs
import trio

from ._monitor import ChildState, Monitor, current_child
from ._spec import ChildKilled, ChildSpec, Restart, RestartIntensityExceeded, Strategy, SupervisorSpec

__all__ = ["RestartWindow", "supervise"]

log = logging.getLogger("supervisors")


@attrs.define
class RestartWindow:
    """Sliding window on trio's clock: ``allow()`` records a restart and is False once too many fall in a period."""

    intensity: int
    period: float
    _times: collections.deque[float] = attrs.field(factory=collections.deque, init=False)

    def allow(self) -> bool:
        now = trio.current_time()
        self._times.append(now)
        while now - self._times[0] >= self.period:
            self._times.popleft()
        return len(self._times) <= self.intensity


@attrs.define(eq=False)
class _Running:
    spec: ChildSpec
    scope: trio.CancelScope = attrs.Factory(trio.CancelScope)
    stop: trio.Event = attrs.Factory(trio.Event)
    finished: trio.Event = attrs.Factory(trio.Event)
    killed: bool = False


@attrs.frozen
class _Exit:
    run: _Running
    error: Exception | None


class _GiveUp(Exception):
    def __init__(self, failure: RestartIntensityExceeded) -> None:
        self.failure = failure


class _StartedFlag:
    """Wraps a task_status so the child task knows whether its child reported ready."""

    def __init__(self, inner: trio.TaskStatus[Any]) -> None:
        self.inner = inner
        self.started_ = False

    def started(self, value: Any = None) -> None:
        self.started_ = True
        self.inner.started(value)


async def supervise(
    spec: SupervisorSpec,
    stop: trio.Event,
    *,
    monitor: Monitor | None = None,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run ``spec`` until ``stop`` is set, then stop every child in reverse order and return.

    Reports ready (``task_status.started()``) once every child has. Raises ``RestartIntensityExceeded`` when a
    child exits more often than the spec allows, after stopping the others. Has the shape of a child's start
    function, so ``functools.partial(supervise, sub_spec, monitor=m)`` nests.
    """
    await _Supervisor(spec, monitor or Monitor()).run(stop, task_status)


class _Supervisor:
    def __init__(self, spec: SupervisorSpec, monitor: Monitor) -> None:
        self.spec = spec
        self.monitor = monitor
        self.window = RestartWindow(spec.intensity, spec.period)
        self.running: list[_Running | None] = [None] * len(spec.children)
        self.removed: set[int] = set()
        self.stopping = False
        self.starting: _Running | None = None
        self.exits_send, self.exits_recv = trio.open_memory_channel[_Exit | None](math.inf)
        self.nursery: trio.Nursery | None = None

    async def run(self, stop: trio.Event, task_status: trio.TaskStatus[None]) -> None:
        failure: RestartIntensityExceeded | None = None
        async with trio.open_nursery() as nursery:
            self.nursery = nursery
            nursery.start_soon(self._forward_stop, stop)
            try:
                if await self._start_from(0):
                    task_status.started()
                while not self.stopping:
                    message = await self.exits_recv.receive()
                    if message is None or self.stopping:
                        break
                    await self._handle_exit(message)
            except _GiveUp as give_up:
                failure = give_up.failure
                self.stopping = True
            await self._stop_from(0)
            nursery.cancel_scope.cancel(reason="supervisor stopped")
        if failure is not None:
            log.error("%s: giving up: %s", "/".join(self.monitor.path) or "supervisor", failure)
            raise failure

    async def _forward_stop(self, stop: trio.Event) -> None:
        await stop.wait()
        self.stopping = True
        if self.starting is not None:  # a child still starting is asked to stop too
            self._ask_to_stop(self.starting)
        self.exits_send.send_nowait(None)

    # -- starting -------------------------------------------------------------------------------------------
    async def _start_from(self, first: int) -> bool:
        """Start every child from ``first`` on that is not running; False if a stop request cut it short."""
        for index in range(first, len(self.running)):
            if self.stopping:
                return False
            if self.running[index] is None and index not in self.removed and not await self._start_child(index):
                return False
        return not self.stopping

    async def _start_child(self, index: int) -> bool:
        spec = self.spec.children[index]
        assert self.nursery is not None
        while True:
            run = _Running(spec)
            self.running[index] = run
            self.starting = run
            self.monitor.set_state(spec.id, ChildState.STARTING)
            try:
                await self.nursery.start(self._child_task, run, name=self.monitor.name_of(spec.id))
            except Exception as exc:
                self.running[index] = None
                self.monitor.forget(spec.id)
                if self.stopping:
                    return False
                log.warning("%s failed to start: %r", self.monitor.name_of(spec.id), exc)
                self._count_restart(spec, exc)
                if spec.restart is Restart.TEMPORARY:
                    self.removed.add(index)
                    return True
                continue
            finally:
                self.starting = None
            if self.stopping:
                return False
            self.monitor.set_state(spec.id, ChildState.RUNNING)
            self.monitor.set_killer(spec.id, functools.partial(self._kill, run))
            log.debug("%s started", self.monitor.name_of(spec.id))
            return True

    async def _child_task(self, run: _Running, task_status: trio.TaskStatus[None]) -> None:
        current_child.set(self.monitor.name_of(run.spec.id))
        status = _StartedFlag(task_status)
        error: Exception | None = None
        try:
            with run.scope:
                await run.spec.start(run.stop, task_status=status)
        except Exception as exc:  # Cancelled and KeyboardInterrupt are BaseException and pass through
            if not status.started_:
                raise  # surfaces from nursery.start() as a failed start
            error = exc
        finally:
            run.finished.set()
        if run.killed and error is None:
            error = ChildKilled(run.spec.id)
        if not status.started_:
            status.started()  # finished its work before saying it was ready: count it as started, then exited
        if run.stop.is_set():
            if error is not None:
                log.warning("%s failed while stopping: %r", self.monitor.name_of(run.spec.id), error)
            return
        self.exits_send.send_nowait(_Exit(run, error))

    # -- restarting -----------------------------------------------------------------------------------------
    def _count_restart(self, spec: ChildSpec, error: Exception | None) -> None:
        if not self.window.allow():
            raise _GiveUp(RestartIntensityExceeded(spec.id, error))
        self.monitor.count_restart(spec.id)

    async def _handle_exit(self, message: _Exit) -> None:
        run, error = message.run, message.error
        try:
            index = self.running.index(run)
        except ValueError:
            return  # an exit of a child we already replaced
        spec = run.spec
        self.running[index] = None
        name = self.monitor.name_of(spec.id)
        if error is not None:
            log.warning("%s crashed: %r", name, error, exc_info=error)
        else:
            log.info("%s exited", name)
        if not (spec.restart is Restart.PERMANENT or (spec.restart is Restart.TRANSIENT and error is not None)):
            self.removed.add(index)
            self.monitor.forget(spec.id)
            return
        self.monitor.set_state(spec.id, ChildState.EXITED)
        self._count_restart(spec, error)
        log.warning("%s: restarting (%s)", name, self.spec.strategy.value)
        if self.spec.strategy is Strategy.ONE_FOR_ONE:
            await self._start_child(index)
        elif self.spec.strategy is Strategy.ONE_FOR_ALL:
            await self._stop_from(0)
            await self._start_from(0)
        else:
            await self._stop_from(index + 1)
            await self._start_from(index)

    def _kill(self, run: _Running) -> None:
        if run.finished.is_set() or run.stop.is_set():
            raise LookupError(f"{self.monitor.name_of(run.spec.id)} is not running")
        run.killed = True
        run.scope.cancel(reason=f"{run.spec.id} killed")

    # -- stopping -------------------------------------------------------------------------------------------
    def _ask_to_stop(self, run: _Running) -> None:
        """Phase one: set the stop event; phase two is armed now as a deadline on the child's scope."""
        run.stop.set()
        grace = run.spec.shutdown
        if grace <= 0:
            run.scope.cancel(reason=f"stopping {run.spec.id}")
        elif grace != math.inf:
            run.scope.deadline = min(run.scope.deadline, trio.current_time() + grace)

    async def _stop_from(self, first: int) -> None:
        """Stop running children from ``first`` on, last started first; temporary ones are not started again."""
        for index in reversed(range(first, len(self.running))):
            run = self.running[index]
            if run is None:
                continue
            self.monitor.set_state(run.spec.id, ChildState.STOPPING)
            self._ask_to_stop(run)
            await run.finished.wait()
            self.running[index] = None
            self.monitor.forget(run.spec.id)
            if run.spec.restart is Restart.TEMPORARY:
                self.removed.add(index)
            log.debug("%s stopped", self.monitor.name_of(run.spec.id))
