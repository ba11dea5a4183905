"""The client's HTTP path on a real database: the API app with a running batched writer, and captured traffic.

The `client_api` fixture (conftest.py) yields a `ClientApi`:

    async def test_x(client_api: ClientApi) -> None:
        response = await client_api.post("/scouter/drift", {...})
"""

from __future__ import annotations

from typing import Any

import attrs

from actors.database import Database
from actors.writer import WriterActor
from tests.captures import http_session

from ..auth_support import Api, bearer


def captured(method: str, path: str, status: int | None = 200) -> list[dict[str, Any]]:
    """Captured exchanges of `method path` (with that response status, unless None)."""
    return [
        line
        for line in http_session()
        if line.get("method") == method and line.get("path") == path and status in (None, line.get("status"))
    ]


@attrs.define
class ClientApi:
    """An `Api` with the profile, drift and observability routes, a writer, and an admin token."""

    api: Api
    token: str
    writer: WriterActor

    @property
    def db(self) -> Database:
        return self.api.db

    async def get(self, path: str, query: dict[str, Any] | None = None, token: str | None = None) -> Any:
        return await self.api.client.get(path, query_string=query, headers=bearer(token or self.token))

    async def post(self, path: str, body: Any, token: str | None = None) -> Any:
        return await self.api.client.post(path, json=body, headers=bearer(token or self.token))

    async def put(self, path: str, body: Any, token: str | None = None) -> Any:
        return await self.api.client.put(path, json=body, headers=bearer(token or self.token))

    async def post_raw(self, path: str, data: bytes, token: str | None = None) -> Any:
        headers = {**bearer(token or self.token), "Content-Type": "application/json"}
        return await self.api.client.post(path, data=data, headers=headers)
