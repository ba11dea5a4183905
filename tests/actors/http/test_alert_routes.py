"""Alert routes on a real PostgreSQL: the captured exchanges, upstream's filters (active=false means
all), newest first, limits; PUT with the space check; permissions on both (bug #14)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import asyncpg
import orjson
import pytest

from actors.database import Database
from actors.http import alert_blueprint

from ..auth_support import Api, bearer, make_api
from .support import captured

pytestmark = pytest.mark.postgres

T0 = dt.datetime(2026, 11, 22, 17, 6, 43, 680899, tzinfo=dt.UTC)


@pytest.fixture
async def api(db: Database) -> Api:
    return await make_api(db, blueprints=[alert_blueprint])


async def _insert(conn: asyncpg.Connection, rows: list[tuple[Any, ...]]) -> None:
    await conn.executemany(
        "INSERT INTO scouter.drift_alert (created_at, id, space, name, version, entity_name, alert, drift_type, active)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8, $9)",
        rows,
    )


def row(
    alert_id: int,
    at: dt.datetime,
    *,
    space: str = "cap",
    name: str = "model",
    version: str = "1.0.0",
    active: bool = True,
    feature: str = "feature_0",
) -> tuple[Any, ...]:
    alert = {"zone": "Zone 4", "kind": "Out of bounds", "entity_name": feature}
    return (at, alert_id, space, name, version, feature, orjson.dumps(alert).decode(), "Spc", active)


async def get(api: Api, token: str, query: dict[str, str] | str) -> tuple[int, Any]:
    if isinstance(query, str):
        response = await api.client.get(f"/scouter/alerts?{query}", headers=bearer(token))
    else:
        response = await api.client.get("/scouter/alerts", query_string=query, headers=bearer(token))
    return response.status_code, await response.get_json()


async def put(api: Api, token: str, body: Any) -> tuple[int, Any]:
    response = await api.client.put("/scouter/alerts", json=body, headers=bearer(token))
    return response.status_code, await response.get_json()


async def test_captured_exchanges_are_answered_exactly(api: Api, db: Database) -> None:
    """The alert of the capture, stored: the captured GETs get the captured body (the alert map's key order is
    PostgreSQL's, as upstream's)."""
    await db.run(_insert, [row(1, T0)])
    token = await api.login("admin", "admin")
    exchanges = captured("GET", "/scouter/alerts")
    client_calls = [e for e in exchanges if "authorization" in e["headers"] and e["response_body"]["alerts"]]
    assert 3 == len(client_calls)

    for exchange in client_calls:
        response = await api.client.get(f"/scouter/alerts?{exchange['query_raw']}", headers=bearer(token))
        assert 200 == response.status_code
        body = await response.get_json()
        assert exchange["response_body"] == body
        assert list(exchange["response_body"]["alerts"][0]) == list(body["alerts"][0])  # upstream's field order


async def test_filters_order_and_limit(api: Api, db: Database) -> None:
    """Filter on space/name/version; since is inclusive; active=true only active; active=false all; newest first;
    ties by id, newest id first; limit."""
    minute = dt.timedelta(minutes=1)
    await db.run(
        _insert,
        [
            row(1, T0, active=False),
            row(2, T0 + minute),
            row(3, T0 + minute, feature="feature_1"),
            row(4, T0 + 2 * minute, active=False),
            row(5, T0 + 3 * minute, version="2.0.0"),
            row(6, T0 + 3 * minute, name="other"),
            row(7, T0 + 3 * minute, space="elsewhere"),
        ],
    )
    token = await api.login("admin", "admin")

    def ids(body: Any) -> list[int]:
        return [a["id"] for a in body["alerts"]]

    base = {"name": "model", "space": "cap", "version": "1.0.0"}
    assert [4, 3, 2, 1] == ids((await get(api, token, {**base, "active": "false"}))[1])
    assert [4, 3, 2, 1] == ids((await get(api, token, base))[1])
    assert [3, 2] == ids((await get(api, token, {**base, "active": "true"}))[1])
    assert [4, 3] == ids((await get(api, token, {**base, "limit": "2"}))[1])
    assert [] == ids((await get(api, token, {**base, "limit": "0"}))[1])
    since = (T0 + minute).isoformat().replace("+00:00", "Z")
    assert [4, 3, 2] == ids((await get(api, token, {**base, "limit_datetime": since}))[1])
    assert [3] == ids((await get(api, token, {**base, "limit_datetime": since, "active": "true", "limit": "1"}))[1])
    assert {"alerts": []} == (await get(api, token, {**base, "name": "nobody"}))[1]


async def test_bad_queries_are_400(api: Api) -> None:
    """A missing required field, a bad bool or a negative limit: 400 naming it."""
    token = await api.login("admin", "admin")

    assert (400, {"error": "Invalid alert request: missing query parameter 'name'"}) == await get(
        api, token, {"space": "cap", "version": "1"}
    )
    assert (400, {"error": "Invalid alert request: limit: must not be negative, got -3"}) == await get(
        api, token, "name=m&space=cap&version=1&limit=-3"
    )
    assert (400, {"error": "Invalid alert request: version: must not contain NUL"}) == await get(
        api, token, "name=m&space=cap&version=1%00"
    )


async def test_put_updates_status_and_get_active_no_longer_returns_it(api: Api, db: Database) -> None:
    """PUT active=false answers {"updated": true}, stamps updated_at; GET active=true then leaves it out."""
    await db.run(_insert, [row(1, T0), row(2, T0)])
    token = await api.login("admin", "admin")

    assert (200, {"updated": True}) == await put(api, token, {"id": 1, "active": False, "space": "cap"})

    stored = await db.fetchrow(
        "SELECT active, updated_at > created_at AS touched FROM scouter.drift_alert WHERE id = 1"
    )
    assert (False, True) == (stored["active"], stored["touched"])
    _, body = await get(api, token, {"name": "model", "space": "cap", "version": "1.0.0", "active": "true"})
    assert [2] == [a["id"] for a in body["alerts"]]
    assert (200, {"updated": True}) == await put(api, token, {"id": 1, "active": True, "space": "cap"})


async def test_put_unknown_id_or_other_space_is_404(api: Api, db: Database) -> None:
    """An unknown id, or the id of another space's alert with this space: 404, nothing changed (upstream: 500)."""
    await db.run(_insert, [row(1, T0, space="elsewhere")])
    token = await api.login("admin", "admin")

    assert (404, {"error": "Alert not found"}) == await put(api, token, {"id": 99, "active": False, "space": "cap"})
    assert (404, {"error": "Alert not found"}) == await put(api, token, {"id": 1, "active": False, "space": "cap"})
    assert await db.fetchval("SELECT active FROM scouter.drift_alert WHERE id = 1")


async def test_put_malformed_bodies_are_422(api: Api) -> None:
    """Wrong types or missing fields: 422 naming the field."""
    token = await api.login("admin", "admin")

    assert (422, {"error": 'Invalid alert update: id: expected a 32-bit integer, got "1"'}) == await put(
        api, token, {"id": "1", "active": False, "space": "cap"}
    )
    assert (422, {"error": "missing field 'space'"}) == await put(api, token, {"id": 1, "active": False})
    assert (422, {"error": "Invalid alert update: space: must not contain NUL"}) == await put(
        api, token, {"id": 1, "active": False, "space": "c\x00p"}
    )


async def test_permissions_on_the_alert_space(api: Api, db: Database) -> None:
    """Bug #14 fixed: GET needs read on the space, PUT write on it; no token is a 401."""
    await db.run(_insert, [row(1, T0)])
    await api.create_user("other", permissions=["read:other", "write:other"])
    await api.create_user("reader", permissions=["read:cap"])
    await api.create_user("writer", permissions=["read:cap", "write:cap"])
    query = {"name": "model", "space": "cap", "version": "1.0.0"}
    body = {"id": 1, "active": False, "space": "cap"}
    other, reader, writer = [await api.login(name, name) for name in ("other", "reader", "writer")]

    assert (403, {"error": "Permission denied"}) == await get(api, other, query)
    assert (403, {"error": "Permission denied"}) == await put(api, other, body)
    assert 200 == (await get(api, reader, query))[0]
    assert (403, {"error": "Permission denied"}) == await put(api, reader, body)
    assert (200, {"updated": True}) == await put(api, writer, body)
    response = await api.client.get("/scouter/alerts", query_string=query)
    assert 401 == response.status_code
