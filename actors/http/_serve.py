"""The HTTP front-end as a supervised child: hypercorn on the API port and on the metrics port."""

from __future__ import annotations

import functools
import logging

import trio
from hypercorn.config import Config
from hypercorn.trio import serve
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from quart_trio import QuartTrio

from config import HttpSettings

from ._context import HttpContext
from ._health import metrics_allowed

log = logging.getLogger("actors.http")


def _config(host: str, port: int, settings: HttpSettings) -> Config:
    config = Config()
    config.bind = [f"{host}:{port}"]
    config.graceful_timeout = settings.graceful_timeout
    config.errorlog = logging.getLogger("hypercorn.error")
    config.accesslog = None
    config.keep_alive_timeout = 75  # longer than typical client pools, fewer reconnects under load
    return config


def _metrics_app(ctx: HttpContext):  # type: ignore[no-untyped-def]
    """A bare ASGI app for port + 1: only /metrics, as upstream."""

    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        if scope["path"] != "/metrics":
            status, body, ctype = 404, b'{"error": "Not Found"}', "application/json"
        elif not metrics_allowed(ctx.settings.http.metrics_token, headers.get("authorization")):
            status, body, ctype = 401, b'{"error": "Unauthorized"}', "application/json"
        else:
            status, body, ctype = 200, generate_latest(ctx.metrics.registry), CONTENT_TYPE_LATEST
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", ctype.encode()), (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})

    return app


async def serve_http(
    app: QuartTrio, ctx: HttpContext, stop: trio.Event, *, task_status: trio.TaskStatus[list[str]]
) -> None:
    """Serve the API and the metrics page until ``stop``; then close the listeners and let requests finish.

    Reports ready with the bound URLs (API first), so ``port=0`` is usable in tests.
    """
    settings = ctx.settings.http
    async with trio.open_nursery() as nursery:
        api_urls = await nursery.start(
            functools.partial(serve, app, _config(settings.host, settings.port, settings), shutdown_trigger=stop.wait)
        )
        metrics_urls = await nursery.start(
            functools.partial(
                serve,
                _metrics_app(ctx),
                _config(settings.host, settings.effective_metrics_port, settings),
                shutdown_trigger=stop.wait,
                mode="asgi",
            )
        )
        # The context outlives this child (the tree builds it once): a restarted front-end serves, it is not draining.
        ctx.draining = False
        log.info("serving API on %s, metrics on %s", ", ".join(api_urls), ", ".join(metrics_urls))
        ctx.services["urls"] = api_urls
        ctx.services["metrics_urls"] = metrics_urls
        task_status.started(list(api_urls) + list(metrics_urls))
        await stop.wait()
        ctx.draining = True
        log.info("HTTP draining: listeners closed, in-flight requests get %.0f s", settings.graceful_timeout)
