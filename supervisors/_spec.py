"""OTP vocabulary as frozen data: what to run, how to restart it, how long it may take to stop."""

from __future__ import annotations

import enum
import math
from collections.abc import Awaitable, Callable
from typing import Any

import attrs

#: A child's start function: ``await start(stop, task_status=...)``. It calls ``task_status.started()`` once it is
#: ready (the next sibling starts only then) and returns soon after ``stop`` is set.
StartFn = Callable[..., Awaitable[Any]]


class Restart(enum.Enum):
    PERMANENT = "permanent"  # restarted whenever it exits
    TRANSIENT = "transient"  # restarted only if it raised
    TEMPORARY = "temporary"  # never restarted


class Strategy(enum.Enum):
    ONE_FOR_ONE = "one_for_one"  # restart only the child that exited
    ONE_FOR_ALL = "one_for_all"  # stop all others (reverse order), restart all
    REST_FOR_ONE = "rest_for_one"  # stop and restart the children started after it


def _positive(instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not value >= 0:
        raise ValueError(f"{attribute.name} must be >= 0, got {value!r}")


@attrs.frozen
class ChildSpec:
    """One supervised child.

    ``shutdown`` is the grace between the stop request and cancellation; 0 cancels at once and ``math.inf`` waits
    for as long as it takes (right for sub-supervisors, whose own children have deadlines).
    """

    id: str
    start: StartFn
    restart: Restart = Restart.PERMANENT
    shutdown: float = attrs.field(default=5.0, validator=_positive)


@attrs.frozen
class SupervisorSpec:
    """A supervisor: more than ``intensity`` restarts within ``period`` seconds makes it give up and fail upward."""

    children: tuple[ChildSpec, ...] = attrs.field(converter=tuple)
    strategy: Strategy = Strategy.ONE_FOR_ONE
    intensity: int = attrs.field(default=3, validator=attrs.validators.ge(0))
    period: float = attrs.field(default=5.0, validator=_positive)

    def __attrs_post_init__(self) -> None:
        ids = [child.id for child in self.children]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"duplicate child ids: {', '.join(duplicates)}")


class ChildKilled(Exception):
    """A child was killed through `Monitor.kill`: the crash its supervisor sees."""

    def __init__(self, child_id: str) -> None:
        self.child_id = child_id
        super().__init__(f"{child_id} was killed")


class RestartIntensityExceeded(Exception):
    """A supervisor gave up: ``child_id`` exited more often than its intensity allows."""

    def __init__(self, child_id: str, last_error: BaseException | None) -> None:
        self.child_id = child_id
        self.last_error = last_error
        why = "exited normally" if last_error is None else f"last error: {last_error!r}"
        super().__init__(f"child {child_id!r} restarted too often ({why})")

    def root_cause(self) -> tuple[str, BaseException | None]:
        """The innermost child that gave up, with its last error (nested supervisors wrap each other)."""
        path, error = [self.child_id], self.last_error
        while isinstance(error, RestartIntensityExceeded):
            path.append(error.child_id)
            error = error.last_error
        return "/".join(path), error


INFINITY = math.inf
