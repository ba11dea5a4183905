"""The front-end's graceful drain over real sockets: idle keep-alive connections do not hold it, in-flight requests
still get their answer."""

from __future__ import annotations

import functools

import trio

from actors.http import create_app, serve_http

from .test_http_front import _answer_line, make_context

GRACEFUL_TIMEOUT = 20.0


async def _request(port: int, path: str) -> tuple[trio.SocketStream, bytes]:
    """A keep-alive connection on which one GET was answered (its status line), left open."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    await stream.send_all(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    return stream, await _answer_line(stream)


async def _closed_by_server(stream: trio.SocketStream) -> bool:
    """Whether the server closed the connection (end of stream or reset) rather than leaving it open."""
    try:
        return b"" == await stream.receive_some()
    except trio.BrokenResourceError:
        return True


async def test_idle_keep_alive_connections_do_not_hold_the_drain() -> None:
    """With idle keep-alive clients on both ports and one slower request in flight, stopping the front-end answers
    the slow request, closes the idle connections and returns well within the graceful timeout (it used to wait all
    of it: quart-trio cancelled hypercorn's keep-alive idle timer, which is what closes idle connections at stop)."""
    ctx = make_context(
        SCOUTER_SERVER_HOST="127.0.0.1",
        SCOUTER_SERVER_PORT="0",
        SCOUTER_GRACEFUL_TIMEOUT=str(GRACEFUL_TIMEOUT),
    )
    app = create_app(ctx)
    slow_entered = trio.Event()

    @app.get("/slow")
    async def slow() -> dict[str, bool]:
        slow_entered.set()
        await trio.sleep(0.5)
        return {"slow": True}

    stop = trio.Event()
    slow_answer: list[bytes] = []

    async def ask_slow(port: int) -> None:
        stream, line = await _request(port, "/slow")
        slow_answer.append(line)
        await stream.aclose()

    with trio.fail_after(2 * GRACEFUL_TIMEOUT + 10):
        async with trio.open_nursery() as nursery:
            api_url, metrics_url = await nursery.start(functools.partial(serve_http, app, ctx, stop))
            api_port, metrics_port = (int(url.rsplit(":", 1)[1]) for url in (api_url, metrics_url))
            idle_api, api_line = await _request(api_port, "/scouter/healthcheck")
            idle_metrics, metrics_line = await _request(metrics_port, "/metrics")
            assert (b"HTTP/1.1 200", b"HTTP/1.1 200") == (api_line, metrics_line)
            nursery.start_soon(ask_slow, api_port)
            await slow_entered.wait()
            started = trio.current_time()
            stop.set()
        drained_in = trio.current_time() - started
        async with idle_api, idle_metrics:
            assert [b"HTTP/1.1 200"] == slow_answer
            assert await _closed_by_server(idle_api)
            assert await _closed_by_server(idle_metrics)
    assert drained_in < GRACEFUL_TIMEOUT / 4, f"drain took {drained_in:.1f} s of a {GRACEFUL_TIMEOUT:.0f} s timeout"
