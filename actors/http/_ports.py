"""The HTTP ports, bound once for the life of the tree, and what answers on them while the API does not.

The `ports` child starts first in the tree: it binds the API and metrics sockets and answers on them until the
`http` child (the last to start) serves, and again whenever it is not serving (restarting with the children after
a failed dependency, or stopped first in a drain). It answers liveness 200 "starting" (503 "draining" once the
front-end was told to stop), readiness 503 naming what the tree is waiting for, `/metrics` as usual, and a JSON 503
for every other path. Without it, a server waiting for its database at start-up refuses connections: a probe cannot
tell "waiting" from "dead", and an orchestrator kills a process that is only waiting.

Hand-over without a refused connection: whoever serves gets its own duplicate of the listening descriptor (hypercorn
closes the socket it served when it stops) while the original stays bound and listening, so a connection arriving
between one server stopping and the next starting waits in the kernel's accept queue. A fair lock passes the ports
from one server to the other; the front-end raising `claimed` asks the stand-in to step aside.
"""

from __future__ import annotations

import functools
import logging
import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import attrs
import orjson
import trio
from hypercorn.config import Config
from hypercorn.trio import serve
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from config import HttpSettings

from ._context import HttpContext
from ._health import metrics_allowed

log = logging.getLogger("actors.http")

ASGIApp = Callable[[dict[str, Any], Callable[[], Awaitable[dict[str, Any]]], Callable[..., Awaitable[None]]], Any]


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket, as hypercorn would make it (SO_REUSEADDR, TCP_NODELAY inherited by accepted sockets)."""
    family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((host.strip("[]"), port))
        sock.listen(2048)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


@attrs.define
class SharedPorts:
    """The bound API and metrics sockets, passed between the stand-in and the front-end (see the module's doc)."""

    api: socket.socket | None = None
    metrics: socket.socket | None = None
    _lock: trio.Lock = attrs.Factory(trio.Lock)
    _claimed: trio.Event = attrs.Factory(trio.Event)
    _waiting: int = 0

    @asynccontextmanager
    async def serving(self) -> AsyncIterator[tuple[str, str]]:
        """For the front-end: the ports (hypercorn `fd://` binds of fresh duplicates) once the stand-in has stepped
        aside; they go back to it on exit."""
        self._waiting += 1
        self._claimed.set()
        try:
            await self._lock.acquire()
        finally:
            self._waiting -= 1
        try:
            yield self._binds()
        finally:
            self._lock.release()

    @asynccontextmanager
    async def standing_in(self) -> AsyncIterator[tuple[tuple[str, str], trio.Event] | None]:
        """For the stand-in: the ports and the event that asks it to step aside, or None when the front-end is
        waiting for them (then the stand-in must yield the lock at once)."""
        async with self._lock:
            if self._waiting:
                yield None
                return
            self._claimed = trio.Event()
            yield self._binds(), self._claimed

    def _binds(self) -> tuple[str, str]:
        if self.api is None or self.metrics is None:
            raise RuntimeError("the ports child has not bound the HTTP ports")
        return f"fd://{os.dup(self.api.fileno())}", f"fd://{os.dup(self.metrics.fileno())}"


def metrics_app(ctx: HttpContext) -> ASGIApp:
    """A bare ASGI app for port + 1: only /metrics, as upstream."""

    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        if await _lifespan(scope, receive, send):
            return
        if scope["path"] != "/metrics":
            await _send(send, 404, b'{"error": "Not Found"}')
        else:
            await _send_metrics(send, ctx, scope)

    return app


def stand_in_app(ctx: HttpContext) -> ASGIApp:
    """What answers on the API port while the front-end does not serve."""

    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        if await _lifespan(scope, receive, send):
            return
        path, phase = scope["path"], "draining" if ctx.draining else "starting"
        problems = {**ctx.readiness().problems, "http": phase}
        if path == "/scouter/healthcheck":
            alive = {"alive": not ctx.draining, "status": phase}
            await _send(send, 503 if ctx.draining else 200, orjson.dumps(alive))
        elif path == "/scouter/readyz":
            await _send(send, 503, orjson.dumps({"ready": False, "problems": problems}))
        elif path == "/metrics":
            await _send_metrics(send, ctx, scope)
        else:
            waiting = "; ".join(f"{name}: {why}" for name, why in problems.items())
            body = {"error": "Service Unavailable", "message": f"the server is {phase} ({waiting})"}
            await _send(send, 503, orjson.dumps(body), retry_after=True)

    return app


def hypercorn_config(bind: str, settings: HttpSettings) -> Config:
    config = Config()
    config.bind = [bind]
    config.graceful_timeout = settings.graceful_timeout
    config.errorlog = logging.getLogger("hypercorn.error")
    config.accesslog = None
    config.keep_alive_timeout = 75  # longer than typical client pools, fewer reconnects under load
    return config


@attrs.define
class PortsActor:
    """Binds the ports for the tree's life and stands in on them whenever the front-end does not serve."""

    ctx: HttpContext
    ports: SharedPorts

    async def run(self, stop: trio.Event, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        settings = self.ctx.settings.http
        self.ports.api = bind_socket(settings.host, settings.port)
        try:
            self.ports.metrics = bind_socket(settings.host, settings.effective_metrics_port)
            async with trio.open_nursery() as nursery:
                await nursery.start(self._stand_in, stop)
                task_status.started()
                await stop.wait()
        finally:
            for sock in (self.ports.api, self.ports.metrics):
                if sock is not None:
                    sock.close()
            self.ports.api = self.ports.metrics = None

    async def _stand_in(self, stop: trio.Event, *, task_status: trio.TaskStatus[None]) -> None:
        settings = self.ctx.settings.http
        reported = False
        while not stop.is_set():
            async with self.ports.standing_in() as turn:
                if turn is None:  # the front-end waits for the ports: hand them over (trio's lock is fair)
                    continue
                (api, metrics), claimed = turn

                async def step_aside(claimed: trio.Event = claimed) -> None:
                    async with trio.open_nursery() as waiter:
                        for event in (claimed, stop):
                            waiter.start_soon(_set_then_cancel, event, waiter.cancel_scope)

                async with trio.open_nursery() as nursery:
                    for app, bind, mode in (
                        (stand_in_app(self.ctx), api, None),
                        (metrics_app(self.ctx), metrics, "asgi"),
                    ):
                        await nursery.start(
                            functools.partial(
                                serve, app, hypercorn_config(bind, settings), shutdown_trigger=step_aside, mode=mode
                            )
                        )
                    if not reported:
                        reported = True
                        task_status.started()


async def _set_then_cancel(event: trio.Event, scope: trio.CancelScope) -> None:
    await event.wait()
    scope.cancel()


async def _lifespan(scope, receive, send) -> bool:  # type: ignore[no-untyped-def]
    """Answer ASGI lifespan messages (True: this scope was not an HTTP request)."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return True
    return scope["type"] != "http"


async def _send_metrics(send, ctx: HttpContext, scope) -> None:  # type: ignore[no-untyped-def]
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
    if not metrics_allowed(ctx.settings.http.metrics_token, headers.get("authorization")):
        await _send(send, 401, b'{"error": "Unauthorized"}')
    else:
        await _send(send, 200, generate_latest(ctx.metrics.registry), CONTENT_TYPE_LATEST)


async def _send(
    send, status: int, body: bytes, content_type: str = "application/json", retry_after: bool = False
) -> None:  # type: ignore[no-untyped-def]
    headers = [(b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode())]
    if retry_after:
        headers.append((b"retry-after", b"1"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
