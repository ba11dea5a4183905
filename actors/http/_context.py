"""What request handlers may reach: kept in ``app.extensions["scouter"]``, never in globals."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs
from quart import current_app

from config import Settings

from ..metrics import ScouterMetrics


@attrs.frozen
class Readiness:
    ready: bool
    problems: dict[str, str]


@attrs.define
class HttpContext:
    settings: Settings
    metrics: ScouterMetrics
    readiness: Callable[[], Readiness]
    draining: bool = False
    #: Filled in by later parts of the tree (database pool, writer inbox, auth...), by name.
    services: dict[str, Any] = attrs.Factory(dict)


def context() -> HttpContext:
    ctx: HttpContext = current_app.extensions["scouter"]
    return ctx
