"""The HTTP front-end through quart-trio's in-memory test client, and once over a real socket."""

from __future__ import annotations

import functools

import httpx
import trio
from prometheus_client import CollectorRegistry

from actors.http import HttpContext, Readiness, create_app, serve_http
from actors.metrics import ScouterMetrics
from config import load_settings


def make_context(ready: bool = True, **env: str) -> HttpContext:
    return HttpContext(
        settings=load_settings(env),
        metrics=ScouterMetrics.create(CollectorRegistry(), process=False),
        readiness=lambda: Readiness(ready, {} if ready else {"database": "connection refused"}),
    )


async def test_healthcheck_has_upstream_shape() -> None:
    """GET /scouter/healthcheck answers 200 {"alive": true}."""
    client = create_app(make_context()).test_client()
    response = await client.get("/scouter/healthcheck")
    assert 200 == response.status_code
    assert {"alive": True} == await response.get_json()


async def test_readiness_reports_problems() -> None:
    """Readiness is 503 naming the failing dependency, 200 once all is well."""
    response = await create_app(make_context(ready=False)).test_client().get("/scouter/readyz")
    assert 503 == response.status_code
    assert {"ready": False, "problems": {"database": "connection refused"}} == await response.get_json()
    assert 200 == (await create_app(make_context()).test_client().get("/scouter/readyz")).status_code


async def test_draining_fails_health_and_readiness() -> None:
    """While draining, liveness and readiness both answer 503."""
    ctx = make_context()
    ctx.draining = True
    client = create_app(ctx).test_client()
    assert 503 == (await client.get("/scouter/healthcheck")).status_code
    assert 503 == (await client.get("/scouter/readyz")).status_code


async def test_errors_are_json() -> None:
    """Unknown paths, wrong methods and handler crashes answer JSON error bodies."""
    app = create_app(make_context())

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("kaput")

    client = app.test_client()
    not_found = await client.get("/nope")
    assert (404, {"error": "Not Found: GET /nope"}) == (not_found.status_code, await not_found.get_json())
    wrong = await client.delete("/scouter/healthcheck")
    assert 405 == wrong.status_code
    assert "Method Not Allowed" in (await wrong.get_json())["error"]
    crash = await client.get("/boom")
    assert (500, {"error": "Internal Server Error"}) == (crash.status_code, await crash.get_json())


async def test_metrics_count_requests_by_route_template() -> None:
    """Requests are counted by method, matched route template and status."""
    ctx = make_context()
    client = create_app(ctx).test_client()
    await client.get("/scouter/healthcheck")
    await client.get("/nope")
    text = (await (await client.get("/metrics")).get_data()).decode()
    assert 'http_requests_total{method="GET",path="/scouter/healthcheck",status="200"} 1.0' in text
    assert 'http_requests_total{method="GET",path="unmatched",status="404"} 1.0' in text
    assert "http_requests_duration_seconds_bucket" in text


async def test_metrics_token_is_required_when_set() -> None:
    """With METRICS_TOKEN set, /metrics needs the bearer token."""
    client = create_app(make_context(METRICS_TOKEN="t0k")).test_client()
    assert 401 == (await client.get("/metrics")).status_code
    assert 200 == (await client.get("/metrics", headers={"Authorization": "Bearer t0k"})).status_code


async def test_serves_api_and_metrics_ports_over_real_sockets() -> None:
    """serve_http binds both ports, answers over TCP, and returns promptly after stop."""
    ctx = make_context(SCOUTER_SERVER_HOST="127.0.0.1", SCOUTER_SERVER_PORT="0", METRICS_TOKEN="m")
    app = create_app(ctx)
    stop = trio.Event()
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            api_url, metrics_url = await nursery.start(functools.partial(serve_http, app, ctx, stop))
            async with httpx.AsyncClient() as client:
                assert {"alive": True} == (await client.get(f"{api_url}/scouter/healthcheck")).json()
                assert 401 == (await client.get(f"{metrics_url}/metrics")).status_code
                page = await client.get(f"{metrics_url}/metrics", headers={"Authorization": "Bearer m"})
                assert "http_requests_total" in page.text
                assert 404 == (await client.get(f"{metrics_url}/scouter/healthcheck")).status_code
            stop.set()
    assert ctx.draining


async def _answer_line(stream: trio.SocketStream) -> bytes:
    """The status line of the next response on `stream` (its headers and body are read and dropped)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = await stream.receive_some()
        assert chunk, "the server closed the connection"
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")
    )
    while len(rest) < length:
        rest += await stream.receive_some()
    return head.split(b"\r\n")[0].strip()


async def test_a_body_sent_after_the_headers_does_not_stall_the_connection() -> None:
    """A request answered without reading its body (405, 404, a GET), whose body arrives after the headers: the next
    request on the same keep-alive connection is still answered."""
    ctx = make_context(SCOUTER_SERVER_HOST="127.0.0.1", SCOUTER_SERVER_PORT="0")
    app = create_app(ctx)
    stop = trio.Event()
    body = b'{"space": "cap"}'
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            api_url, _ = await nursery.start(functools.partial(serve_http, app, ctx, stop))
            port = int(api_url.rsplit(":", 1)[1])
            answers = []
            for method, path in (("PATCH", "/scouter/healthcheck"), ("POST", "/nowhere"), ("GET", "/scouter/readyz")):
                stream = await trio.open_tcp_stream("127.0.0.1", port)
                head = f"{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n"
                await stream.send_all(head.encode())
                await trio.sleep(0.05)  # the body comes later, as from a slow client
                await stream.send_all(body)
                first = await _answer_line(stream)
                await stream.send_all(b"GET /scouter/healthcheck HTTP/1.1\r\nHost: x\r\n\r\n")
                with trio.move_on_after(3):
                    answers.append((first, await _answer_line(stream)))
                await stream.aclose()
            stop.set()
    assert [
        (b"HTTP/1.1 405", b"HTTP/1.1 200"),
        (b"HTTP/1.1 404", b"HTTP/1.1 200"),
        (b"HTTP/1.1 200", b"HTTP/1.1 200"),
    ] == answers
