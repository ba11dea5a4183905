"""The HTTP front-end restarted by its supervisor serves again at once: live, ready, on the same ports."""

from __future__ import annotations

import sys
import time

import httpx
import pytest

from tests.supervisors.test_cli import Server

KILLABLE = [sys.executable, "-m", "tests.supervisors.server_script", "killable"]
GRACEFUL_TIMEOUT = 30.0  # long, so that a drain waiting it out (an idle keep-alive connection once did) shows


def wait_for(url: str, code: int, server: Server, timeout: float = 30) -> httpx.Response:
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        assert server.proc.poll() is None, f"the server exited; log:\n{server.log()}"
        try:
            response = httpx.get(url, timeout=5)
            if response.status_code == code:
                return response
            last = (response.status_code, response.text)
        except httpx.TransportError as exc:
            last = exc
        time.sleep(0.1)
    raise AssertionError(f"{url} never answered {code} (last: {last!r}); log:\n{server.log()}")


@pytest.mark.parametrize("killed", ["scouter/http", "scouter/archiver"])
def test_a_restarted_http_child_is_live_ready_and_rebinds_at_once(
    killed: str, port: int, server_env: dict[str, str]
) -> None:
    """Kill the http child (or the archiver before it: rest_for_one then stops http gracefully and starts it again)
    while a keep-alive connection is open: http binds both ports again within seconds (no 'Address already in
    use'), and healthcheck and readiness answer 200, not 'draining'. The idle keep-alive connection does not hold
    the drain of the stopped front-end: it serves again well within the graceful timeout."""
    server = Server(KILLABLE, {**server_env, "SCOUTER_GRACEFUL_TIMEOUT": str(GRACEFUL_TIMEOUT)})
    api = f"http://127.0.0.1:{port}"
    try:
        wait_for(f"{api}/scouter/readyz", 200, server, timeout=60)
        with httpx.Client(base_url=api, timeout=10) as keep_alive:
            assert 200 == keep_alive.get("/scouter/healthcheck").status_code
            try:
                httpx.post(f"{api}/test/kill", params={"child": killed}, timeout=10)
            except httpx.TransportError:
                pass  # the request that kills the front-end (directly or by rest_for_one) dies with it
            server.wait_for_log(f"{killed} crashed: ChildKilled", timeout=10)
            crashed = time.monotonic()
            server.wait_for_log("serving API on", count=2, timeout=GRACEFUL_TIMEOUT + 30)
            assert time.monotonic() - crashed < GRACEFUL_TIMEOUT / 3, "the drain waited for the idle connection"
            restarted = time.monotonic()
            assert {"alive": True} == wait_for(f"{api}/scouter/healthcheck", 200, server, timeout=10).json()
            assert time.monotonic() - restarted < 5
            assert {"ready": True} == wait_for(f"{api}/scouter/readyz", 200, server).json()
            assert 200 == httpx.get(f"http://127.0.0.1:{port + 1}/metrics", timeout=5).status_code
        assert "Address already in use" not in server.log()
        server.proc.terminate()
        assert 0 == server.wait(60), server.log()
    finally:
        server.kill()
