"""POST /scouter/drift refuses a created_at outside the accepted bounds with a 400 naming it; nothing is stored."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import trio

from actors.database import Database, DatabaseHandle
from actors.http import drift_blueprint
from actors.writer import WriterActor, open_inbox

from ..auth_support import Api, bearer, make_api

pytestmark = pytest.mark.postgres


@pytest.fixture
async def api(db: Database) -> AsyncIterator[tuple[Api, str]]:
    """The drift routes with a one-hour horizon (SCOUTER_MAX_FUTURE_SECONDS=3600) and a running writer."""
    api = await make_api(db, blueprints=[drift_blueprint], SCOUTER_MAX_FUTURE_SECONDS="3600")
    send, receive = open_inbox(10)
    api.ctx.writer = send
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        await nursery.start(WriterActor(receive, send, DatabaseHandle(db), api.ctx.metrics).run, stop)
        yield api, await api.login("admin", "admin")
        stop.set()


def _stamp(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _spc(created_at: str) -> dict[str, Any]:
    return {"Spc": {"created_at": created_at, "space": "sp", "name": "nm", "version": "1", "feature": "f", "value": 1}}


@pytest.mark.parametrize(
    ("created_at", "problem"),
    [
        ("9999-12-31T10:00:00Z", "must not be more than 1 hour in the future"),
        ("9999-12-31T23:59:59.999999Z", "must not be more than 1 hour in the future"),
        ("0001-01-01T00:00:00Z", "must not be before 1970-01-01T00:00:00Z"),
        ("in two hours", "must not be more than 1 hour in the future"),
    ],
)
async def test_http_ingest_refuses_created_at_out_of_bounds(
    api: tuple[Api, str], created_at: str, problem: str
) -> None:
    """The year-9999 record that used to crash maintenance at the next start, and the year-1 one stored as
    -infinity, are a 400 naming the record, the field and the bound; the good record beside them is not stored."""
    app, token = api
    if created_at == "in two hours":
        created_at = _stamp(datetime.now(UTC) + timedelta(hours=2))
    body = {"records": [_spc(_stamp(datetime.now(UTC))), _spc(created_at)]}
    response = await app.client.post("/scouter/drift", json=body, headers=bearer(token))
    assert 400 == response.status_code
    error = (await response.get_json())["error"]
    assert error.startswith(f"Invalid drift records: records[1].Spc.created_at: {problem}")
    assert 0 == await app.db.fetchval("SELECT count(*) FROM scouter.spc_drift")


async def test_http_ingest_accepts_created_at_within_the_configured_horizon(api: tuple[Api, str]) -> None:
    """Half an hour ahead is within a one-hour horizon: stored."""
    app, token = api
    body = {"records": [_spc(_stamp(datetime.now(UTC) + timedelta(minutes=30)))]}
    response = await app.client.post("/scouter/drift", json=body, headers=bearer(token))
    assert 200 == response.status_code
    assert 1 == await app.db.fetchval("SELECT count(*) FROM scouter.spc_drift")
