"""End-to-end fixtures: the real server as a subprocess, and the real scouter-ml 0.6.4 client in its own venv.

The client cannot be imported here: its top-level package is also called `scouter`. `run_client` therefore runs a
Python snippet with the client venv's interpreter, from a temporary directory so our `scouter` cannot shadow it.

    def test_something(live_server: LiveServer) -> None:
        result = run_client("from scouter.client import ScouterClient; ScouterClient()", live_server.client_env())
        assert 0 == result.returncode, result.stderr
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.services import free_port_pair

ROOT = Path(__file__).resolve().parents[2]
#: The client venv's python; `make test` sets SCOUTER_CLIENT_PYTHON, `make client` creates the default one.
CLIENT_PYTHON = Path(os.environ.get("SCOUTER_CLIENT_PYTHON", ROOT / ".venv-client" / "bin" / "python"))
#: The scouter-ml 0.25.0 venv's python (`make client` creates it too; `make test` sets SCOUTER_CLIENT_V025_PYTHON).
CLIENT_V025_PYTHON = Path(os.environ.get("SCOUTER_CLIENT_V025_PYTHON", ROOT / ".venv-client-v025" / "bin" / "python"))
#: Variables of ours or the client's that must not leak from the developer's shell into a test process.
_FOREIGN = ("SCOUTER_", "KAFKA_", "RABBITMQ_", "REDIS_", "POLLING", "DATABASE_URI", "PYTHON")


def clean_environment() -> dict[str, str]:
    return {key: value for key, value in os.environ.items() if not key.startswith(_FOREIGN)}


def server_environment(dsn: str, port: int, scratch: Path, **extra: str) -> dict[str, str]:
    """The environment of a test server on 127.0.0.1:`port` (metrics on the next port) storing in `dsn`, its folders
    under `scratch`, with `extra` settings added."""
    return {
        **clean_environment(),
        "DATABASE_URI": dsn,
        "SCOUTER_SERVER_HOST": "127.0.0.1",
        "SCOUTER_SERVER_PORT": str(port),
        "SCOUTER_DATA_DIR": str(scratch / "data"),
        "SCOUTER_STORAGE_URI": str(scratch / "storage"),
        "LOG_LEVEL": "info",
        **extra,
    }


class LiveServer:
    """`scouter serve` running in a subprocess; its stderr (the log) is collected in the background."""

    def __init__(self, env: dict[str, str], url: str) -> None:
        self.url = url
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "supervisors.main", "serve"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self._lines.append(line)

    def log(self) -> str:
        """Everything the server logged so far."""
        return "".join(self._lines)

    def client_env(self, **extra: str) -> dict[str, str]:
        """Environment for `run_client` pointing the client at this server."""
        return {"SCOUTER_SERVER_URI": self.url, **extra}

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited with {self.proc.returncode} before ready; log:\n{self.log()}")
            try:
                if httpx.get(f"{self.url}/scouter/readyz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"server not ready after {timeout} s; log:\n{self.log()}")

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM, then wait for the exit status (killed if it takes longer than `timeout`)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        self._reader.join(5)
        if self.proc.stderr is not None:
            self.proc.stderr.close()  # else an unclosed file is reported when the Popen is collected
        return code


@pytest.fixture
def live_server(fresh_database_dsn: str) -> Iterator[LiveServer]:
    """The real server on a free port with its own empty database; must stop with exit status 0."""
    port = free_port_pair()
    with tempfile.TemporaryDirectory(prefix="scouter-e2e-") as scratch:
        server = LiveServer(server_environment(fresh_database_dsn, port, Path(scratch)), f"http://127.0.0.1:{port}")
        try:
            server.wait_ready()
            yield server
        finally:
            code = server.stop()
        assert 0 == code, f"server exit status {code}; log:\n{server.log()}"


class AdminApi:
    """The API as a client uses it: an admin token, JSON in and out, every call must succeed. Close `http` after use
    (not with `with api.http`: httpx refuses to enter a client that has already sent its login request)."""

    def __init__(self, url: str) -> None:
        self.http = httpx.Client(base_url=url, timeout=30)
        response = self.http.get("/scouter/auth/login", headers={"Username": "admin", "Password": "admin"})
        response.raise_for_status()
        self.http.headers["Authorization"] = f"Bearer {response.json()['token']}"

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.http.request(method, path, **kwargs)
        assert 200 == response.status_code, f"{method} {path} {kwargs}: {response.text}"
        return response.json()

    def register(self, profile: dict[str, Any]) -> None:
        """Register `profile` (a drift profile document) and make it active."""
        config = profile["config"]
        body = {"space": config["space"], "drift_type": config["drift_type"], "profile": json.dumps(profile)}
        self.call("POST", "/scouter/profile", json=body)
        status = {
            "space": config["space"],
            "name": config["name"],
            "version": config["version"],
            "active": True,
            "drift_type": config["drift_type"],
            "deactivate_others": False,
        }
        self.call("PUT", "/scouter/profile/status", json=status)

    def records(self, records: list[dict[str, Any]]) -> None:
        """Send `records` through ``POST /scouter/drift``."""
        self.call("POST", "/scouter/drift", json={"records": records})


def run_client(
    script: str, env: Mapping[str, str], timeout: float = 120.0, *, python: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run `script` with the scouter-ml 0.6.4 venv's python (or `python`) in a scratch directory, with `env` added."""
    python = python or CLIENT_PYTHON
    if not python.exists():
        pytest.skip(f"no scouter-ml client venv at {python} (run `make client`)")
    with tempfile.TemporaryDirectory(prefix="scouter-client-") as cwd:
        return subprocess.run(
            [str(python), "-c", script],
            cwd=cwd,
            env={**clean_environment(), **env},
            capture_output=True,
            text=True,
            timeout=timeout,
        )
