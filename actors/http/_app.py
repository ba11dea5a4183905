"""The quart-trio application: blueprints, JSON errors, request metrics."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

import trio
from quart import Blueprint, Response, g, request
from quart_trio import QuartTrio
from werkzeug.exceptions import HTTPException

from scouter.wire.v064 import ErrorBody

from ..database import UNAVAILABLE
from . import _health
from ._context import HttpContext
from ._guard import refuse_unauthenticated
from ._responses import error_response, struct_response

log = logging.getLogger("actors.http")


def create_app(ctx: HttpContext, blueprints: Iterable[Blueprint] = ()) -> QuartTrio:
    """An app serving health and metrics plus ``blueprints``; handlers reach ``ctx`` through ``context()``."""
    app = QuartTrio("scouter")
    app.config["MAX_CONTENT_LENGTH"] = ctx.settings.http.max_body_bytes
    app.config["PROVIDE_AUTOMATIC_OPTIONS"] = True
    app.extensions["scouter"] = ctx
    app.register_blueprint(_health.blueprint)
    for blueprint in blueprints:
        app.register_blueprint(blueprint)

    @app.before_request
    async def _start_timer() -> None:
        g.started = time.perf_counter()

    @app.before_request
    async def _read_body() -> Response | None:
        # A protected route's request without valid credentials is refused first, its body never read (an
        # anonymous client must not make us buffer up to MAX_CONTENT_LENGTH); that answer closes the connection.
        refused = await refuse_unauthenticated()
        if refused is not None:
            return refused
        # Otherwise the whole body is read before any answer, even when the route ignores it (404, 405, a GET with
        # a body): a response that completes before the body has arrived leaves the keep-alive connection stuck
        # (quart-trio cancels hypercorn's clean-up of it), so the client's next request on it is never answered.
        # Routes that read the body get this cached copy; one over MAX_CONTENT_LENGTH is a 413 here.
        await request.get_data(cache=True)
        return None

    @app.after_request
    async def _count(response: Response) -> Response:
        rule = request.url_rule.rule if request.url_rule is not None else "unmatched"
        labels = (request.method, rule, str(response.status_code))
        ctx.metrics.http_requests.labels(*labels).inc()
        started = getattr(g, "started", None)
        if started is not None:
            ctx.metrics.http_duration.labels(*labels).observe(time.perf_counter() - started)
        return response

    @app.teardown_appcontext
    async def _drop_request_state(_: BaseException | None) -> None:
        # A finished request context lingers in a reference cycle until the GC finds it; let it hold nothing big.
        for key in list(g):
            g.pop(key, None)

    @app.errorhandler(HTTPException)
    async def _http_error(error: HTTPException) -> Response:
        code = error.code or 500
        if code in (404, 405):
            return error_response(f"{error.name}: {request.method} {request.path}", code)
        if code == 413:
            # The rest of the oversized body is never read: this connection cannot carry another request.
            return struct_response(ErrorBody(error=error.description or error.name), code, {"Connection": "close"})
        return error_response(error.description or error.name, code)

    @app.errorhandler(Exception)
    async def _crash(error: Exception) -> Response:
        if isinstance(error, trio.Cancelled):  # cancellation belongs to the server, never a 500
            raise error
        if isinstance(error, UNAVAILABLE):  # an outage, not a bug: tell the client to come back
            log.warning("database unavailable for %s %s: %r", request.method, request.path, error)
            return struct_response(ErrorBody(error="Database unavailable, retry later"), 503, {"Retry-After": "5"})
        log.error("unhandled error in %s %s", request.method, request.path, exc_info=error)
        return error_response("Internal Server Error", 500)

    return app
