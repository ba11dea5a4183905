"""Liveness, readiness and the Prometheus page on the API port."""

from __future__ import annotations

import hmac

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from quart import Blueprint, Response, request

from scouter.wire.v064 import Alive, ErrorBody, Ready

from ._context import context
from ._openapi import METRICS_TEXT, METRICS_TOKEN, documented
from ._responses import struct_response

blueprint = Blueprint("health", __name__)


@blueprint.get("/scouter/healthcheck")
@documented(tags=["health"], summary="Liveness (503 while draining).", responses={200: Alive, 503: Alive})
async def healthcheck() -> Response:
    """Upstream's liveness shape; 503 while draining so balancers stop sending work."""
    if context().draining:
        return struct_response(Alive(alive=False, status="draining"), 503)
    return struct_response(Alive(alive=True))


@blueprint.get("/scouter/readyz")
@documented(
    tags=["health"],
    summary="Readiness: 200 once every child runs and every dependency answers, else 503 naming the problems.",
    responses={200: Ready, 503: Ready},
)
async def readyz() -> Response:
    """200 only when every child runs and every outside dependency answers."""
    ctx = context()
    state = ctx.readiness()
    problems = dict(state.problems)
    if ctx.draining:
        problems["http"] = "draining"
    if state.ready and not problems:
        return struct_response(Ready(ready=True))
    return struct_response(Ready(ready=False, problems=problems), 503)


def metrics_allowed(token: str | None, authorization: str | None) -> bool:
    """No token configured, or the request's `Authorization: Bearer <token>` matches it (in constant time)."""
    if token is None:
        return True
    if authorization is None:
        return False
    return hmac.compare_digest(authorization.encode(), f"Bearer {token}".encode())


@blueprint.get("/metrics")
@documented(
    tags=["health"],
    responses={200: METRICS_TEXT, 401: ErrorBody},
    security=METRICS_TOKEN,
    content_types={200: "text/plain"},
)
async def metrics() -> Response:
    """Prometheus metrics (also on port + 1); needs `Bearer <SCOUTER_METRICS_TOKEN>` when that is set."""
    ctx = context()
    if not metrics_allowed(ctx.settings.http.metrics_token, request.headers.get("Authorization")):
        return struct_response(ErrorBody(error="Unauthorized"), 401)
    return Response(generate_latest(ctx.metrics.registry), content_type=CONTENT_TYPE_LATEST)
