"""What every child of a tree is doing right now, for readiness probes, metrics and logs."""

from __future__ import annotations

import contextvars
import enum
from collections.abc import Callable

import attrs


class ChildState(enum.Enum):
    STARTING = "starting"
    RUNNING = "running"
    STOPPING = "stopping"
    EXITED = "exited"


#: The path of the child whose task is running ("scouter/consumers/kafka-0"); log filters read it.
current_child: contextvars.ContextVar[str] = contextvars.ContextVar("current_child", default="-")


@attrs.define
class _Board:
    states: dict[tuple[str, ...], ChildState] = attrs.Factory(dict)
    restarts: dict[tuple[str, ...], int] = attrs.Factory(dict)
    on_restart: list[Callable[[str], None]] = attrs.Factory(list)
    killers: dict[tuple[str, ...], Callable[[], None]] = attrs.Factory(dict)


@attrs.frozen
class Monitor:
    """A view of one supervisor's place in the tree; ``child(name)`` gives the view for a nested supervisor.

    Synchronous and cheap: supervisors write, probes read. One board per tree.
    """

    path: tuple[str, ...] = ()
    _board: _Board = attrs.Factory(_Board)

    def child(self, name: str) -> Monitor:
        return Monitor((*self.path, name), self._board)

    def name_of(self, child_id: str) -> str:
        return "/".join((*self.path, child_id))

    def set_state(self, child_id: str, state: ChildState) -> None:
        self._board.states[(*self.path, child_id)] = state

    def forget(self, child_id: str) -> None:
        """Drop a child and everything under it (a temporary child that finished, a stopped sub-tree)."""
        prefix = (*self.path, child_id)
        for key in [k for k in self._board.states if k[: len(prefix)] == prefix]:
            del self._board.states[key]
        for key in [k for k in self._board.killers if k[: len(prefix)] == prefix]:
            del self._board.killers[key]

    def set_killer(self, child_id: str, kill: Callable[[], None]) -> None:
        """How the supervisor kills its running child ``child_id`` (see `kill`)."""
        self._board.killers[(*self.path, child_id)] = kill

    def kill(self, path: str) -> None:
        """Kill the running child at ``path`` ("scouter/drift/poller-0") as OTP's ``exit(Child, kill)`` does: it is
        cancelled wherever it is, without its stop event or grace, and its supervisor handles that as a crash
        (`ChildKilled`): restart by strategy, counted against the restart intensity. For operators and for tests
        that crash a real child of a running tree. LookupError when no child runs at ``path``."""
        try:
            kill = self._board.killers[tuple(path.split("/"))]
        except KeyError:
            raise LookupError(f"no running child at {path!r}") from None
        kill()

    def count_restart(self, child_id: str) -> None:
        key = (*self.path, child_id)
        self._board.restarts[key] = self._board.restarts.get(key, 0) + 1
        for listener in self._board.on_restart:
            listener(self.name_of(child_id))

    def add_restart_listener(self, listener: Callable[[str], None]) -> None:
        self._board.on_restart.append(listener)

    def states(self) -> dict[str, ChildState]:
        """Every known child under this view, by path."""
        n = len(self.path)
        return {"/".join(k): v for k, v in self._board.states.items() if k[:n] == self.path}

    def restarts(self) -> dict[str, int]:
        return {"/".join(k): v for k, v in self._board.restarts.items()}

    def ready(self) -> bool:
        """True when at least one child is known and every known child is running."""
        states = self.states()
        return bool(states) and all(s is ChildState.RUNNING for s in states.values())
