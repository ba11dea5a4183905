"""Signals only set events: SIGTERM/SIGINT stop the tree in order, SIGHUP rebuilds it, a second stop signal insists."""

from __future__ import annotations

import enum
import logging
import signal
from collections.abc import Awaitable, Callable
from typing import Any

import attrs
import trio

from ._spec import RestartIntensityExceeded

__all__ = ["Ending", "serve_until_signalled"]

log = logging.getLogger("supervisors")

#: Builds the next tree to run; raising refuses a SIGHUP reload and keeps the running tree.
Prepare = Callable[[], Callable[[trio.Event], Awaitable[Any]]]


class Ending(enum.Enum):
    GRACEFUL = "graceful"  # the tree stopped in order after SIGTERM/SIGINT
    FORCED = "forced"  # a second signal, or the hard deadline, cut the drain short


@attrs.define
class _Round:
    stop: trio.Event = attrs.Factory(trio.Event)
    next_tree: Callable[[trio.Event], Awaitable[Any]] | None = None
    forced: bool = False


async def serve_until_signalled(prepare: Prepare, *, hard_deadline: float = 60.0) -> Ending:
    """Run ``prepare()``'s tree until a stop signal; SIGHUP stops it gracefully and runs a freshly prepared one.

    The orderly part of shutdown lives in the supervisors; ``hard_deadline`` after the first stop signal, and a
    second stop signal at once, cancel whatever is left. Raises ``RestartIntensityExceeded`` if the tree gives up.
    """
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM, signal.SIGHUP) as signals:
        run_tree = prepare()
        while True:
            round_ = _Round()
            failure: RestartIntensityExceeded | None = None
            completed = False
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_watch, signals, round_, nursery.cancel_scope, prepare, hard_deadline)
                try:
                    await run_tree(round_.stop)
                except RestartIntensityExceeded as exc:
                    failure = exc
                completed = True
                nursery.cancel_scope.cancel(reason="tree stopped")
            if failure is not None:
                raise failure
            if round_.forced or not completed:
                return Ending.FORCED
            if round_.next_tree is None:
                return Ending.GRACEFUL
            log.warning("SIGHUP: tree stopped, starting it again with fresh settings")
            run_tree = round_.next_tree


async def _watch(signals: Any, round_: _Round, outer: trio.CancelScope, prepare: Prepare, hard_deadline: float) -> None:
    async for signum in signals:
        name = signal.Signals(signum).name
        if signum == signal.SIGHUP:
            if round_.stop.is_set():
                log.info("SIGHUP ignored: already stopping")
                continue
            try:
                round_.next_tree = prepare()
            except Exception as exc:  # a bad reload keeps the running tree
                log.error("SIGHUP: reload refused, keeping the running tree: %s", exc)
                continue
            log.warning("SIGHUP: restarting the tree gracefully")
            round_.stop.set()
            continue
        if round_.stop.is_set() and round_.next_tree is None:
            log.warning("second %s: cancelling what is left", name)
            round_.forced = True
            outer.cancel(reason=f"second {name}")
            return
        log.warning("%s: shutting down gracefully (send it again to stop at once)", name)
        round_.next_tree = None  # a stop signal during a reload wins
        round_.stop.set()
        outer.deadline = trio.current_time() + hard_deadline
