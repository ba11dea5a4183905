"""What request handlers may reach: kept in ``app.extensions["scouter"]``, never in globals."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs
from quart import current_app

from config import Settings
from scouter.auth import LoginLimits

from ..archive_reader import ArchiveReader
from ..database import Database, DatabaseHandle
from ..metrics import ScouterMetrics
from ..writer import InboxSender
from ._auth_cache import AuthCache


@attrs.frozen
class Readiness:
    ready: bool
    problems: dict[str, str]


@attrs.define
class HttpContext:
    settings: Settings
    metrics: ScouterMetrics
    readiness: Callable[[], Readiness]
    database: DatabaseHandle = attrs.Factory(DatabaseHandle)
    writer: InboxSender | None = None
    #: The archived part of drift queries reaching past retention; None answers from PostgreSQL alone.
    archive: ArchiveReader | None = None
    draining: bool = False
    #: Failed logins per user name and client address, and per address; per process (replicas each keep their own,
    #: which only loosens the bound).
    login_throttle: LoginLimits = attrs.Factory(LoginLimits)
    #: Verified tokens and recently read user rows (see _auth_cache for what that costs in staleness).
    auth_cache: AuthCache = attrs.Factory(AuthCache)
    #: What the server learned at run time (bound URLs...), for logs and tests.
    services: dict[str, Any] = attrs.Factory(dict)

    @property
    def db(self) -> Database:
        """The pool; raises if the database actor is not running (the route then answers 503)."""
        return self.database.get()


def context() -> HttpContext:
    ctx: HttpContext = current_app.extensions["scouter"]
    return ctx
