"""A RabbitMQ that refuses our login is an outage of that broker alone: the rest of the server keeps serving."""

from __future__ import annotations

import contextlib
import time
import urllib.parse

import httpx

from tests.services import scratch_database
from tests.supervisors.test_cli import SCOUTER, Server, env_for, free_port

STARTS = 5
HOLD = 12.0  # seconds each server must keep running while its consumers retry the refused login


def wrong_password(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    netloc = f"{parts.username or 'guest'}:not-the-password@{parts.hostname}:{parts.port or 5672}"
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def test_a_refused_rabbitmq_login_leaves_the_server_serving(postgres_dsn: str, rabbitmq_url: str) -> None:
    """Five servers start with a wrong RabbitMQ password: every one comes up and stays up, ready except for its
    consumers (readiness names them and the refused login), while the consumers retry with backoff."""
    addr = wrong_password(rabbitmq_url)
    with contextlib.ExitStack() as stack:
        servers: list[tuple[Server, str]] = []
        for _ in range(STARTS):
            dsn = stack.enter_context(scratch_database(postgres_dsn))
            port = free_port()
            env = env_for(port, DATABASE_URI=dsn, RABBITMQ_ADDR=addr, RABBITMQ_CONSUMER_COUNT="2",
                          POLLING_WORKER_COUNT="0")  # fmt: skip
            server = Server([*SCOUTER, "serve"], env)
            stack.callback(server.kill)
            servers.append((server, f"http://127.0.0.1:{port}"))
        for server, _ in servers:
            server.wait_for_log("serving API on", timeout=90)
        deadline = time.monotonic() + HOLD
        while time.monotonic() < deadline:  # traffic keeps the garbage collector busy, as a live server's would
            for server, url in servers:
                assert server.proc.poll() is None, f"a server exited; log:\n{server.log()}"
                assert 200 == httpx.get(f"{url}/scouter/healthcheck", timeout=5).status_code
                ready = httpx.get(f"{url}/scouter/readyz", timeout=5)
                assert 503 == ready.status_code
                problems = ready.json()["problems"]
                assert {"rabbitmq-0", "rabbitmq-1"} == set(problems), problems
                assert "ACCESS_REFUSED" in problems["rabbitmq-0"] or "authentication" in problems["rabbitmq-0"].lower()
            time.sleep(0.2)
        for server, _ in servers:
            log = server.log()
            assert "TrioInternalError" not in log, log
            assert log.count("RabbitMQ not reachable yet") >= 4, log  # retried, with backoff
            server.proc.terminate()
            assert 0 == server.wait(60), server.log()
