"""JSON responses shared by the profile, drift and observability routes."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import asyncpg
import orjson
from quart import Response

from ..database import UNAVAILABLE

log = logging.getLogger("actors.http")

JSON = "application/json"


def json_response(body: Any, status: int = 200) -> Response:
    """`body` serialised with orjson (large binned responses; the default provider is several times slower)."""
    return Response(orjson.dumps(body), status=status, content_type=JSON)


def raw_json_response(text: bytes | str, status: int = 200) -> Response:
    """A body that already is JSON text."""
    return Response(text, status=status, content_type=JSON)


def database_failure(exc: BaseException) -> tuple[int, str]:
    """(status, detail) for an error of a database call: 503 when PostgreSQL is out of reach, else 500."""
    if isinstance(exc, (*UNAVAILABLE, TimeoutError, asyncio.TimeoutError)):  # incl. DatabaseUnavailable
        log.warning("database unavailable: %r", exc)
        return 503, "database unavailable"
    if isinstance(exc, asyncpg.PostgresError):
        log.error("database error: %r", exc)
        return 500, f"{type(exc).__name__}: {exc}"
    raise exc  # a bug, not a database error: the app's handler logs it and answers 500


DB_ERRORS = (asyncpg.PostgresError, *UNAVAILABLE, TimeoutError, RuntimeError)
