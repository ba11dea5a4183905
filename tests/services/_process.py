"""Child processes of the test services: spawned (as another user when root), dying with us, logging to a file.

Also `_run_async`, which runs an asyncio client library from any thread, event loop or none.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import pwd
import signal
import subprocess
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")


class ServiceError(RuntimeError):
    """A test service could not be found or started; the message names what failed and where its log is."""


def _run_async(make: Callable[[], Awaitable[T]], timeout: float) -> T:
    """Run `make()` to completion in a fresh thread with its own asyncio loop, bounded by `timeout` seconds.

    A separate thread keeps this usable from code that already runs an event loop (trio, trio-asyncio, asyncio).
    """
    outcome: dict[str, Any] = {}

    async def bounded() -> T:
        return await asyncio.wait_for(make(), timeout)

    def target() -> None:
        try:
            outcome["value"] = asyncio.run(bounded())
        except BaseException as exc:  # handed back to the caller's thread
            outcome["error"] = exc

    thread = threading.Thread(target=target, name="tests.services-async", daemon=True)
    thread.start()
    thread.join(timeout + 10)
    if thread.is_alive():
        raise ServiceError(f"async helper did not finish within {timeout + 10:.0f} s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def _tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"(log unreadable: {exc})"
    return "\n".join(text.splitlines()[-lines:])


_PR_SET_PDEATHSIG = 1


def _die_with_parent(sig: int) -> Callable[[], None] | None:
    """A preexec_fn that makes the child receive `sig` if this thread dies (e.g. pytest is SIGKILLed).

    Linux clears the setting when the parent *thread* exits, so it is only armed when spawning from the main thread.
    Popen applies it after switching user, so it survives `user=`.
    """
    if threading.current_thread() is not threading.main_thread():
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None

    def arm() -> None:
        libc.prctl(_PR_SET_PDEATHSIG, sig)

    return arm


def _is_root() -> bool:
    return os.geteuid() == 0


def _user_kwargs(user: str | None) -> dict[str, Any]:
    """Popen arguments that drop to `user` with its own primary group and no root supplementary groups."""
    if user is None:
        return {}
    entry = pwd.getpwnam(user)
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


def _chown(path: Path, user: str | None) -> None:
    if user is None:
        return
    entry = pwd.getpwnam(user)
    os.chown(path, entry.pw_uid, entry.pw_gid)


class _Child:
    """One server process we spawned, with its output in a log file."""

    def __init__(
        self,
        what: str,
        argv: list[str],
        *,
        env: dict[str, str],
        log_path: Path,
        cwd: Path,
        user: str | None,
        death_signal: int,
    ) -> None:
        self.what = what
        self.log_path = log_path
        with log_path.open("ab") as out:
            out.write(f"\n==== {time.strftime('%H:%M:%S')} start: {' '.join(argv)}\n".encode())
            out.flush()
            try:
                self.proc = subprocess.Popen(
                    argv,
                    env=env,
                    cwd=cwd,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # a terminal's Ctrl-C reaches pytest, which then stops us in order
                    preexec_fn=_die_with_parent(death_signal),
                    **_user_kwargs(user),
                )
            except OSError as exc:
                raise ServiceError(f"{what}: cannot run {argv[0]}: {exc} (log: {log_path})") from exc

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, sig: int, timeout: float) -> None:
        """Signal the process, wait up to `timeout`, then kill its whole process group."""
        if not self.alive():
            return
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            log.warning(
                "%s did not stop within %.0f s after %s; killing it (log: %s)",
                self.what,
                timeout,
                signal.Signals(sig).name,
                self.log_path,
            )
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def wait_ready(self, check: Callable[[], bool], timeout: float, interval: float = 0.1) -> None:
        """Poll `check` until true; fail early if the process exits, and name the log either way."""
        deadline = time.monotonic() + timeout
        last_error: BaseException | None = None
        while True:
            if not self.alive():
                raise ServiceError(
                    f"{self.what} exited with code {self.proc.returncode} before it was ready "
                    f"(log: {self.log_path}):\n{_tail(self.log_path)}"
                )
            try:
                if check():
                    return
            except Exception as exc:  # readiness probes fail in many ways while a server boots
                last_error = exc
            if time.monotonic() > deadline:
                raise ServiceError(
                    f"{self.what} was not ready within {timeout:.0f} s (last probe error: {last_error!r}; "
                    f"log: {self.log_path}):\n{_tail(self.log_path)}"
                )
            time.sleep(interval)


def _run_logged(
    what: str,
    argv: list[str],
    *,
    log_path: Path,
    cwd: Path,
    user: str | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 120,
) -> None:
    with log_path.open("ab") as out:
        out.write(f"\n==== {time.strftime('%H:%M:%S')} run: {' '.join(argv)}\n".encode())
        out.flush()
        try:
            result = subprocess.run(
                argv,
                env=env,
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=timeout,
                check=False,
                **_user_kwargs(user),
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ServiceError(f"{what} failed: {exc} (log: {log_path})") from exc
    if result.returncode != 0:
        raise ServiceError(f"{what} exited with code {result.returncode} (log: {log_path}):\n{_tail(log_path)}")
