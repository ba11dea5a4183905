"""JSON responses shared by the profile, drift and observability routes."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import asyncpg
import msgspec
import orjson
from quart import Response

from scouter.wire.common import encode
from scouter.wire.v064 import ErrorBody

from ..database import UNAVAILABLE

log = logging.getLogger("actors.http")

JSON = "application/json"


def json_response(body: Any, status: int = 200) -> Response:
    """`body` serialised with orjson (large binned responses; the default provider is several times slower)."""
    return Response(orjson.dumps(body), status=status, content_type=JSON)


def struct_response(body: msgspec.Struct, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A declared wire struct (`scouter.wire`) as the response: the struct the OpenAPI document shows is the body."""
    return Response(encode(body), status=status, content_type=JSON, headers=headers)


def error_response(message: str, status: int) -> Response:
    """`{"error": message}` with `status`."""
    return struct_response(ErrorBody(error=message), status)


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
