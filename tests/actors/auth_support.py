"""An API app on a real database, with the default users, for route tests; reusable by later route tests.

api = await make_api(db, blueprints=[my_blueprint])
token = await api.login("admin", "admin")
response = await api.client.get("/scouter/...", headers=bearer(token))
"""

from __future__ import annotations

import functools
import time
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any

import attrs
import httpx
import hypercorn.config
import hypercorn.trio
import trio
from prometheus_client import CollectorRegistry
from quart import Blueprint
from quart.typing import TestClientProtocol
from quart_trio import QuartTrio

from actors.database import Database, DatabaseHandle
from actors.http import HttpContext, Readiness, auth_blueprint, create_app, user_blueprint
from actors.metrics import ScouterMetrics
from actors.users import ensure_default_users
from config import load_settings
from scouter.auth import Identity, mint_access

# Distinct secrets of >= 32 bytes: PyJWT warns on shorter HMAC keys, and warnings are errors here.
ACCESS_SECRET = "access-secret-for-the-tests-0123456789"
REFRESH_SECRET = "refresh-secret-for-the-tests-0123456789"
BOOTSTRAP_KEY = "bootstrap-key-for-the-tests-0123456789"
AUTH_ENV = {
    "SCOUTER_ENCRYPT_SECRET": ACCESS_SECRET,
    "SCOUTER_REFRESH_SECRET": REFRESH_SECRET,
    "SCOUTER_BOOTSTRAP_KEY": BOOTSTRAP_KEY,
}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@attrs.define
class Api:
    client: TestClientProtocol
    ctx: HttpContext
    db: Database
    app: QuartTrio

    async def login(self, username: str, password: str) -> str:
        """Log in through the route; fails the test unless it answers 200."""
        response = await self.client.get("/scouter/auth/login", headers={"Username": username, "Password": password})
        assert 200 == response.status_code, await response.get_data(as_text=True)
        token: str = (await response.get_json())["token"]
        return token

    def token(self, username: str, *, age: float = 0.0, **claims: Any) -> str:
        """An access token for `username` signed with the app's secret, minted `age` seconds ago."""
        return mint_access(Identity(username, **claims), ACCESS_SECRET, time.time() - age)

    async def create_user(self, username: str, **fields: Any) -> dict[str, Any]:
        """Create a user through POST /scouter/user with the bootstrap key; password = username."""
        body = {"username": username, "password": username, "email": f"{username}@example.com", **fields}
        response = await self.client.post("/scouter/user", json=body, headers={"x-bootstrap-token": BOOTSTRAP_KEY})
        assert 200 == response.status_code, await response.get_data(as_text=True)
        created: dict[str, Any] = await response.get_json()
        return created


async def make_api(db: Database, blueprints: Iterable[Blueprint] = (), **env: str) -> Api:
    """The app with the auth and user routes plus `blueprints`, the default users created in `db`."""
    ctx = HttpContext(
        settings=load_settings({**AUTH_ENV, **env}),
        metrics=ScouterMetrics.create(CollectorRegistry(), process=False),
        readiness=lambda: Readiness(True, {}),
        database=DatabaseHandle(db),
    )
    await ensure_default_users(db, ctx.settings.auth)
    app = create_app(ctx, [auth_blueprint, user_blueprint, *blueprints])
    return Api(app.test_client(), ctx, db, app)


@asynccontextmanager
async def served(api: Api) -> AsyncIterator[httpx.AsyncClient]:
    """`api`'s app on a real hypercorn socket (127.0.0.1, a free port), and an HTTP client pointed at it."""
    config = hypercorn.config.Config()
    config.bind = ["127.0.0.1:0"]
    config.accesslog = None
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        urls = await nursery.start(functools.partial(hypercorn.trio.serve, api.app, config, shutdown_trigger=stop.wait))
        async with httpx.AsyncClient(base_url=urls[0], timeout=10) as client:
            yield client
        stop.set()
