"""The ports child: the HTTP ports answer from the moment the tree starts, and pass between its stand-in and the
front-end without refusing a connection."""

from __future__ import annotations

import functools

import httpx
import trio

from actors.http import PortsActor, SharedPorts, create_app, serve_http

from .test_http_front import make_context


async def _start_ports(nursery: trio.Nursery, ctx, stop: trio.Event) -> tuple[SharedPorts, str, str]:  # type: ignore[no-untyped-def]
    ports = SharedPorts()
    await nursery.start(PortsActor(ctx, ports).run, stop)
    assert ports.api is not None
    assert ports.metrics is not None
    return ports, f"http://127.0.0.1:{ports.api.getsockname()[1]}", f"http://127.0.0.1:{ports.metrics.getsockname()[1]}"


async def test_the_stand_in_answers_until_the_front_end_serves_and_again_after_it_stops() -> None:
    ctx = make_context(ready=False, SCOUTER_SERVER_HOST="127.0.0.1", SCOUTER_SERVER_PORT="0", METRICS_TOKEN="m")
    app = create_app(ctx)
    stop_ports = trio.Event()
    with trio.fail_after(30):
        # a new connection per request: a kept-alive one would stay with the server that accepted it
        no_keep_alive = httpx.Limits(max_keepalive_connections=0)
        async with trio.open_nursery() as nursery, httpx.AsyncClient(timeout=5, limits=no_keep_alive) as client:
            ports, api, metrics = await _start_ports(nursery, ctx, stop_ports)
            alive = await client.get(f"{api}/scouter/healthcheck")
            assert (200, {"alive": True, "status": "starting"}) == (alive.status_code, alive.json())
            ready = await client.get(f"{api}/scouter/readyz")
            assert 503 == ready.status_code
            assert {"database": "connection refused", "http": "starting"} == ready.json()["problems"]
            call = await client.post(f"{api}/scouter/drift", json={"records": []})
            assert 503 == call.status_code
            assert "1" == call.headers["retry-after"]
            assert "database: connection refused" in call.json()["message"]
            assert 401 == (await client.get(f"{metrics}/metrics")).status_code  # the metrics port serves already
            page = await client.get(f"{metrics}/metrics", headers={"Authorization": "Bearer m"})
            assert "http_requests_total" in page.text

            stop_http = trio.Event()
            async with trio.open_nursery() as front_end:
                urls = await front_end.start(functools.partial(serve_http, app, ctx, stop_http, ports=ports))
                assert [api, metrics] == urls  # the front-end serves the very ports the stand-in held
                assert {"alive": True} == (await client.get(f"{api}/scouter/healthcheck")).json()
                assert 404 == (await client.get(f"{api}/nowhere")).status_code  # the app's answer, not the stand-in's
                stop_http.set()
            # the front-end has stopped: the stand-in answers again, and says why
            alive = await client.get(f"{api}/scouter/healthcheck")
            assert (503, {"alive": False, "status": "draining"}) == (alive.status_code, alive.json())
            assert "draining" == (await client.get(f"{api}/scouter/readyz")).json()["problems"]["http"]
            assert 503 == (await client.get(f"{api}/nowhere")).status_code
            stop_ports.set()
    assert ctx.draining


async def test_front_end_restarts_refuse_no_connection() -> None:
    """Requests sent in a loop while the front-end stops and starts three times: none is refused, each is answered by
    the front-end (200) or by the stand-in (503) — but for the odd one hypercorn accepted just as its drain began,
    which it closes unanswered (a race inside hypercorn's graceful stop, the same without a stand-in)."""
    ctx = make_context(ready=True, SCOUTER_SERVER_HOST="127.0.0.1", SCOUTER_SERVER_PORT="0")
    app = create_app(ctx)
    stop_ports = trio.Event()
    answers: list[int] = []
    failures: list[str] = []
    unanswered: list[int] = []
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            ports, api, _ = await _start_ports(nursery, ctx, stop_ports)
            sending = trio.Event()

            async def send_in_a_loop() -> None:
                # a new connection per request: each one goes through the accept queue the servers hand over
                async with httpx.AsyncClient(timeout=10, limits=httpx.Limits(max_keepalive_connections=0)) as client:
                    while not sending.is_set():
                        try:
                            answers.append((await client.get(f"{api}/scouter/healthcheck")).status_code)
                        except httpx.ConnectError as exc:
                            failures.append(repr(exc))
                        except httpx.RemoteProtocolError:
                            unanswered.append(1)

            for _ in range(3):
                nursery.start_soon(send_in_a_loop)
            for _ in range(3):
                stop_http = trio.Event()
                await nursery.start(functools.partial(serve_http, app, ctx, stop_http, ports=ports))
                await trio.sleep(0.3)
                stop_http.set()
                await trio.sleep(0.3)
            sending.set()
            await trio.sleep(0.5)
            stop_ports.set()
    assert [] == failures
    assert {200, 503} == set(answers), answers
    assert len(unanswered) < len(answers) / 20, (len(unanswered), len(answers))
