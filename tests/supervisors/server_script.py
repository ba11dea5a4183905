"""Runs the real `scouter serve` path with test-only additions: a slow route, a child that keeps crashing, or a route
that kills any child of the running tree (`Monitor.kill`).

Usage: python -m tests.supervisors.server_script {plain|slow|crash|killable}
"""

from __future__ import annotations

import os
import sys

import attrs
import trio
from quart import request

from config import load_settings
from supervisors import ChildSpec
from supervisors.logs import setup_logging
from supervisors.main import serve
from supervisors.tree import Process, Tree, build_tree


async def _crashing(stop: trio.Event, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
    task_status.started()
    await trio.sleep(0.2)
    raise RuntimeError("test child always fails")


def _build(mode: str):  # type: ignore[no-untyped-def]
    def build(settings, process: Process) -> Tree:  # type: ignore[no-untyped-def]
        extra = (ChildSpec("crasher", _crashing),) if mode == "crash" else ()
        tree = build_tree(settings, process, extra=extra)
        if mode == "slow":

            async def slow() -> dict[str, float]:
                seconds = float(request.args.get("seconds", "2"))
                await trio.sleep(seconds)
                return {"slept": seconds}

            tree.app.add_url_rule("/test/slow", "slow", slow)
        if mode == "killable":
            monitor = tree.monitor

            async def kill() -> dict[str, str]:
                child = request.args["child"]
                monitor.kill(child)  # killing "scouter/http" cancels this very request: its client sees a disconnect
                return {"killed": child}

            tree.app.add_url_rule("/test/kill", "kill", kill, methods=["POST"])
            # A test that kills every child in turn would exceed the top's real intensity (3 in 30 s) by design;
            # the intensity itself is tested in tests/supervisors/test_supervisor.py and test_cli.py.
            tree = attrs.evolve(tree, spec=attrs.evolve(tree.spec, intensity=100))
        return tree

    return build


if __name__ == "__main__":
    settings = load_settings(os.environ)
    setup_logging(settings.log.level, settings.log.json)
    sys.exit(serve(settings, build=_build(sys.argv[1])))
