"""The HTTP front-end as a supervised child: hypercorn on the API port and on the metrics port."""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio
from hypercorn.trio import serve
from quart_trio import QuartTrio

from config import HttpSettings

from ._context import HttpContext
from ._ports import ASGIApp, SharedPorts, hypercorn_config, metrics_app

log = logging.getLogger("actors.http")


def settled_sends(app: ASGIApp) -> ASGIApp:
    """The ASGI ``app`` with each of its ``send`` calls shielded from the app's own cancellation.

    Why: hypercorn does its keep-alive bookkeeping inside the app's final ``send`` (recycle the connection, start the
    idle timer that closes it after ``keep_alive_timeout`` or at once when the server stops). quart-trio cancels its
    request nursery as soon as hypercorn hands it ``http.disconnect`` during that very call, which kills the idle
    timer before it starts: the idle connection then never times out, and a stop waits the whole graceful timeout
    for it. Shielding only lets that bookkeeping finish (hypercorn already shields the socket write itself, so a
    slow client holds a send no longer than before).
    """

    async def shielded_app(scope, receive, send):  # type: ignore[no-untyped-def]
        async def settled_send(message: dict[str, object]) -> None:
            with trio.CancelScope(shield=True):
                await send(message)

        await app(scope, receive, settled_send)

    return shielded_app


@asynccontextmanager
async def _binds(settings: HttpSettings, ports: SharedPorts | None) -> AsyncIterator[tuple[str, str]]:
    if ports is None:  # serving alone (tests of the front-end): bind the ports here
        yield f"{settings.host}:{settings.port}", f"{settings.host}:{settings.effective_metrics_port}"
        return
    async with ports.serving() as binds:
        yield binds


async def serve_http(
    app: QuartTrio,
    ctx: HttpContext,
    stop: trio.Event,
    *,
    ports: SharedPorts | None = None,
    task_status: trio.TaskStatus[list[str]],
) -> None:
    """Serve the API and the metrics page until ``stop``; then close the listeners and let requests finish.

    With ``ports`` (the tree's), serve the sockets the `ports` child bound, taken over from its stand-in and given
    back on exit; without, bind them here. Reports ready with the bound URLs (API first), so ``port=0`` is usable in
    tests.
    """
    settings = ctx.settings.http
    async with _binds(settings, ports) as (api_bind, metrics_bind), trio.open_nursery() as nursery:
        api_urls = await nursery.start(
            functools.partial(
                serve, settled_sends(app), hypercorn_config(api_bind, settings), shutdown_trigger=stop.wait, mode="asgi"
            )
        )
        metrics_urls = await nursery.start(
            functools.partial(
                serve,
                metrics_app(ctx),
                hypercorn_config(metrics_bind, settings),
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
