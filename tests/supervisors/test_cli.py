"""The `scouter` command as a real process: exit codes, signals, graceful drain, SIGHUP restart."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.services import free_port_pair

ROOT = Path(__file__).resolve().parents[2]
SCOUTER = [sys.executable, "-m", "supervisors.main"]


def free_port() -> int:
    """A port that is free now, with the next one free too (metrics listen on port + 1), outside the ephemeral
    range so that a SIGHUP restart can rebind both."""
    return free_port_pair()


def env_for(port: int, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "RABBITMQ_", "SCOUTER_", "POLLING"))}
    env.update(SCOUTER_SERVER_HOST="127.0.0.1", SCOUTER_SERVER_PORT=str(port), LOG_LEVEL="info", **extra)
    return env


class Server:
    """A server subprocess whose stderr is collected in the background."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(args, cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line)

    def log(self) -> str:
        return "".join(self.lines)

    def wait_for_log(self, text: str, timeout: float = 20, count: int = 1) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.log().count(text) >= count:
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"{text!r} not seen {count}x; log:\n{self.log()}")

    def wait(self, timeout: float = 30) -> int:
        code = self.proc.wait(timeout)
        self._reader.join(5)
        return code

    def kill(self) -> None:
        """Kill it if it still runs, and close its stderr pipe (every test ends with this)."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._reader.join(5)
        if self.proc.stderr is not None:
            self.proc.stderr.close()  # else an unclosed file is reported when the Popen is collected


def run_scouter(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*SCOUTER, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("command", ["serve", "archive", "config"])
def test_bad_env_var_exits_2_naming_it(command: str) -> None:
    """POLLING_WORKER_COUNT=abc: exit status 2 and one line naming the variable and the value, for every command."""
    result = run_scouter(command, env={**os.environ, "POLLING_WORKER_COUNT": "abc"})
    assert 2 == result.returncode
    assert "POLLING_WORKER_COUNT='abc'" in result.stderr


def test_bad_secret_value_is_masked() -> None:
    """A bad secret-bearing variable is named but its value is not printed."""
    result = run_scouter("serve", env={**os.environ, "DATABASE_URI": "mysql://root:hunter2@db/x"})
    assert 2 == result.returncode
    assert "DATABASE_URI='***'" in result.stderr
    assert "hunter2" not in result.stderr


STRICT_SECRET_VARS = ("SCOUTER_ENCRYPT_SECRET", "SCOUTER_REFRESH_SECRET", "SCOUTER_BOOTSTRAP_KEY")


def test_strict_secrets_refuse_defaults() -> None:
    """SCOUTER_STRICT_SECRETS=true refuses to start with the built-in secrets."""
    result = run_scouter("serve", env={**os.environ, "SCOUTER_STRICT_SECRETS": "true"})
    assert 2 == result.returncode
    assert "SCOUTER_ENCRYPT_SECRET" in result.stderr


def test_strict_secrets_refuse_the_built_in_admin_password() -> None:
    """Strict mode with every secret set still refuses SCOUTER_DEFAULT_PASSWORD left at the built-in `admin`."""
    secrets = {name: f"{name.lower()}-0123456789-0123456789-0123" for name in STRICT_SECRET_VARS}
    result = run_scouter("serve", env={**os.environ, **secrets, "SCOUTER_STRICT_SECRETS": "true"})
    assert 2 == result.returncode
    assert "SCOUTER_DEFAULT_PASSWORD" in result.stderr


def test_config_masks_secrets_and_version_prints() -> None:
    """`scouter config` lists settings with secrets masked; `scouter version` names the client it serves."""
    result = run_scouter("config", env={**os.environ, "SCOUTER_ENCRYPT_SECRET": "s3cret-value", "KAFKA_BROKERS": "k:9"})
    assert 0 == result.returncode
    assert "s3cret-value" not in result.stdout
    assert "SCOUTER_ENCRYPT_SECRET" in result.stdout
    assert "KAFKA_WORKER_COUNT" in result.stdout
    assert "0.6.4" in run_scouter("version").stdout


def test_config_says_where_a_value_came_from(tmp_path: Path) -> None:
    """`scouter config` explains the env file and NAME_FILE sources and names the file behind each such value,
    still masking secrets."""
    (tmp_path / "secret").write_text("from-a-secret-file\n")
    (tmp_path / "scouter.env").write_text(f"MAX_POOL_SIZE=7\nSCOUTER_ENCRYPT_SECRET_FILE={tmp_path / 'secret'}\n")
    result = run_scouter("config", env={**os.environ, "SCOUTER_ENV_FILE": str(tmp_path / "scouter.env")})
    assert 0 == result.returncode, result.stderr
    assert f"SCOUTER_ENV_FILE={tmp_path / 'scouter.env'}" in result.stdout
    assert "NAME_FILE=/path" in result.stdout
    lines = {line.split()[0]: line for line in result.stdout.splitlines() if not line.startswith("#")}
    assert f"7 (SCOUTER_ENV_FILE={tmp_path / 'scouter.env'})" in lines["MAX_POOL_SIZE"]
    assert f"'***' (SCOUTER_ENCRYPT_SECRET_FILE={tmp_path / 'secret'})" in lines["SCOUTER_ENCRYPT_SECRET"]
    assert "from-a-secret-file" not in result.stdout


def test_unreadable_secret_file_exits_2_naming_it(tmp_path: Path) -> None:
    """`scouter serve` with a NAME_FILE that cannot be read: exit status 2, the variable and the path named."""
    missing = tmp_path / "nowhere"
    result = run_scouter("serve", env={**os.environ, "SCOUTER_ENCRYPT_SECRET_FILE": str(missing)})
    assert 2 == result.returncode
    assert f"SCOUTER_ENCRYPT_SECRET_FILE='{missing}': cannot read it" in result.stderr


@pytest.mark.parametrize("command", ["serve", "config", "version"])
def test_every_command_has_help(command: str) -> None:
    """Each subcommand answers --help."""
    result = run_scouter(command, "--help")
    assert 0 == result.returncode
    assert "usage: scouter" in result.stdout


def test_sigterm_lets_a_slow_request_finish_and_exits_0(port: int, server_env: dict[str, str]) -> None:
    """SIGTERM with a slow request in flight: the request completes with 200, health was up before, exit 0."""
    server = Server([sys.executable, "-m", "tests.supervisors.server_script", "slow"], server_env)
    try:
        server.wait_for_log("serving API on")
        base = f"http://127.0.0.1:{port}"
        assert {"alive": True} == httpx.get(f"{base}/scouter/healthcheck").json()
        assert 200 == httpx.get(f"{base}/scouter/readyz").status_code
        result: dict[str, httpx.Response] = {}
        slow = threading.Thread(target=lambda: result.update(r=httpx.get(f"{base}/test/slow?seconds=2", timeout=10)))
        slow.start()
        time.sleep(0.5)
        server.proc.send_signal(signal.SIGTERM)
        slow.join(10)
        assert 200 == result["r"].status_code
        assert {"slept": 2.0} == result["r"].json()
        assert 0 == server.wait()
        assert "stopped gracefully" in server.log()
    finally:
        server.kill()


def test_second_sigterm_cancels_the_drain(port: int, server_env: dict[str, str]) -> None:
    """A second SIGTERM during the drain stops at once, without waiting for the slow request."""
    server = Server([sys.executable, "-m", "tests.supervisors.server_script", "slow"], server_env)
    try:
        server.wait_for_log("serving API on")

        def doomed_request() -> None:
            with contextlib.suppress(httpx.HTTPError):  # the forced stop drops it: that is the point
                httpx.get(f"http://127.0.0.1:{port}/test/slow?seconds=30", timeout=40)

        slow = threading.Thread(target=doomed_request, daemon=True)
        slow.start()
        time.sleep(0.5)
        server.proc.send_signal(signal.SIGTERM)
        server.wait_for_log("shutting down gracefully")
        started = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)
        assert 1 == server.wait(15)
        assert time.monotonic() - started < 10
        assert "second SIGTERM" in server.log()
    finally:
        server.kill()


def test_sighup_restarts_the_tree_in_the_same_process(port: int, server_env: dict[str, str]) -> None:
    """SIGHUP: restart logged, the port is served again by the same process, SIGINT then stops it with 0."""
    server = Server([*SCOUTER, "serve"], server_env)
    try:
        server.wait_for_log("serving API on")
        pid = server.proc.pid
        server.proc.send_signal(signal.SIGHUP)
        server.wait_for_log("serving API on", count=2)
        assert "SIGHUP: restarting the tree gracefully" in server.log()
        assert 200 == httpx.get(f"http://127.0.0.1:{port}/scouter/healthcheck").status_code
        assert pid == server.proc.pid
        server.proc.send_signal(signal.SIGINT)
        assert 0 == server.wait()
    finally:
        server.kill()


def test_child_crashing_beyond_intensity_exits_non_zero(port: int, server_env: dict[str, str]) -> None:
    """A child that crashes more often than the intensity allows takes the process down with status 1,
    and the last log line names the child and its error."""
    server = Server([sys.executable, "-m", "tests.supervisors.server_script", "crash"], server_env)
    try:
        assert 1 == server.wait(30)
        assert "giving up: crasher restarted too often" in server.log()
        assert "test child always fails" in server.log()
        assert server.log().count("crasher crashed") >= 4
    finally:
        server.kill()
