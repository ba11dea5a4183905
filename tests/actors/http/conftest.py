"""Fixtures of the route tests: the client's HTTP path on a real database."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import trio

from actors.database import Database, DatabaseHandle
from actors.http import (
    alert_blueprint,
    drift_blueprint,
    observability_blueprint,
    out_of_scope_blueprint,
    profile_blueprint,
)
from actors.writer import WriterActor, open_inbox

from ..auth_support import make_api
from .support import ClientApi


@pytest.fixture
async def client_api(db: Database) -> AsyncIterator[ClientApi]:
    """The app on a fresh database with the default users; the writer runs until the test ends (then drains)."""
    blueprints = [profile_blueprint, drift_blueprint, observability_blueprint, alert_blueprint, out_of_scope_blueprint]
    api = await make_api(db, blueprints=blueprints)
    send, receive = open_inbox(100)
    writer = WriterActor(receive, send, DatabaseHandle(db), api.ctx.metrics)
    api.ctx.writer = send
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        await nursery.start(writer.run, stop)
        yield ClientApi(api, await api.login("admin", "admin"), writer)
        stop.set()
