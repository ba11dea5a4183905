"""``GET /scouter/observability/metrics`` (server.md §2.12), with real bucket widths (§12 #1).

Route metrics are unnested and aggregated per route and bucket in PostgreSQL. Bodies are upstream's: success
``{"status": "success", "data": [...]}``, errors ``{"status": "error", "message": ...}``. Read permission on the
space is required (upstream checked none, §12 #14).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from quart import Blueprint, Response, request

from scouter.auth import Requirement
from scouter.binned import observability_response
from scouter.queries import ObservabilityQuery, QueryError, parse_observability_query
from scouter.sql import OBSERVABILITY_BUCKETS
from scouter.wire.v064 import ObservabilityMetricRequest, ObservabilityMetrics, StatusErrorBody

from ..database import Database
from ._context import context
from ._guard import guarded
from ._openapi import BEARER, OBSERVABILITY_ERROR, QUERY_ERRORS, documented
from ._responses import DB_ERRORS, database_failure, struct_response

blueprint = Blueprint("observability", __name__)


def _error(message: str, status: int) -> Response:
    return struct_response(StatusErrorBody(status="error", message=message), status)


async def observability_postgres_part(db: Database, query: ObservabilityQuery) -> Sequence[Any]:
    """Per route and bucket aggregates from PostgreSQL (see `scouter.sql.OBSERVABILITY_BUCKETS`)."""
    window = query.window
    return await db.fetch(
        OBSERVABILITY_BUCKETS, query.space, query.name, query.version, query.bucket, window.begin, window.end
    )


@blueprint.get("/scouter/observability/metrics")
@documented(
    tags=["observability"],
    summary="Per-route latency percentiles, request and error counts per bucket.",
    security=BEARER,
    query=ObservabilityMetricRequest,
    responses={
        **QUERY_ERRORS,
        200: ObservabilityMetrics,
        400: OBSERVABILITY_ERROR,
        500: OBSERVABILITY_ERROR,
        503: OBSERVABILITY_ERROR,
    },
)
@guarded(Requirement.read())
async def observability_metrics() -> Response:
    try:
        query = parse_observability_query(request.args, datetime.now(UTC))
    except QueryError as exc:
        return _error(f"Invalid request: {exc.reason}", 400)
    try:
        rows = await observability_postgres_part(context().db, query)
    except DB_ERRORS as exc:
        status, detail = database_failure(exc)
        return _error(f"Failed to query observability metrics: {detail}", status)
    return struct_response(observability_response(rows))
