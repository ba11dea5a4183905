"""serve_until_signalled in-process, with real signals sent to this process."""

from __future__ import annotations

import os
import signal

import trio

from supervisors import Ending, serve_until_signalled


async def test_sighup_rebuilds_and_sigterm_stops() -> None:
    """SIGHUP stops the running tree and runs a freshly prepared one; SIGTERM then ends gracefully."""
    runs: list[str] = []
    generation = 0

    def prepare():  # type: ignore[no-untyped-def]
        nonlocal generation
        generation += 1
        name = f"tree-{generation}"

        async def run(stop: trio.Event) -> None:
            runs.append(f"start {name}")
            await stop.wait()
            runs.append(f"stop {name}")

        return run

    async def send_signals() -> None:
        await trio.sleep(0.2)
        os.kill(os.getpid(), signal.SIGHUP)
        await trio.sleep(0.2)
        os.kill(os.getpid(), signal.SIGTERM)

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(send_signals)
            ending = await serve_until_signalled(prepare)
    assert Ending.GRACEFUL == ending
    assert ["start tree-1", "stop tree-1", "start tree-2", "stop tree-2"] == runs


async def test_refused_reload_keeps_the_running_tree() -> None:
    """When preparing the new tree fails (bad settings), SIGHUP is refused and the old tree keeps running."""
    runs: list[str] = []
    calls = 0

    def prepare():  # type: ignore[no-untyped-def]
        nonlocal calls
        calls += 1
        if calls > 1:
            raise ValueError("POLLING_WORKER_COUNT='abc': expected a whole number")

        async def run(stop: trio.Event) -> None:
            runs.append("start")
            await stop.wait()
            runs.append("stop")

        return run

    async def send_signals() -> None:
        await trio.sleep(0.2)
        os.kill(os.getpid(), signal.SIGHUP)
        await trio.sleep(0.2)
        runs.append("still running")
        os.kill(os.getpid(), signal.SIGINT)

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(send_signals)
            ending = await serve_until_signalled(prepare)
    assert Ending.GRACEFUL == ending
    assert ["start", "still running", "stop"] == runs


async def test_hard_deadline_cuts_a_stuck_drain() -> None:
    """A tree that ignores its stop event is cancelled when the hard deadline passes: a forced ending."""

    def prepare():  # type: ignore[no-untyped-def]
        async def run(stop: trio.Event) -> None:
            await trio.sleep_forever()

        return run

    async def send_signal() -> None:
        await trio.sleep(0.1)
        os.kill(os.getpid(), signal.SIGTERM)

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(send_signal)
            ending = await serve_until_signalled(prepare, hard_deadline=0.3)
    assert Ending.FORCED == ending
