"""Named health checks that actors set and the readiness probe reads (database reachable, broker connected...)."""

from __future__ import annotations

import attrs


@attrs.define
class HealthBoard:
    """Synchronous and cheap: an actor flips its check when its outside dependency comes or goes."""

    _checks: dict[str, str | None] = attrs.Factory(dict)

    def ok(self, name: str) -> None:
        self._checks[name] = None

    def failing(self, name: str, why: str) -> None:
        self._checks[name] = why

    def forget(self, name: str) -> None:
        self._checks.pop(name, None)

    def problems(self) -> dict[str, str]:
        return {name: why for name, why in self._checks.items() if why is not None}
