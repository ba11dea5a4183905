"""The servers this test process owns: their work directory, their common life cycle, and stopping them all.

One work directory per process (under /tmp when root, so servers running as other users can reach it), removed by
`stop_all` (registered with atexit) unless a start failed or SCOUTER_TEST_KEEP_SERVICE_DIRS is set. Each service
module caches the address it found or started and registers with `forget_at_stop_all` to drop it.
"""

from __future__ import annotations

import abc
import atexit
import contextlib
import logging
import os
import pwd
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

from tests.services._ports import _free_port
from tests.services._process import _Child, _is_root

ENV_FORCE_PRIVATE = "SCOUTER_TEST_FORCE_PRIVATE"
ENV_KEEP_DIRS = "SCOUTER_TEST_KEEP_SERVICE_DIRS"

log = logging.getLogger(__name__)
S = TypeVar("S", bound="OwnedServer")


def _forced_private(service: str) -> bool:
    wanted = {part.strip().lower() for part in os.environ.get(ENV_FORCE_PRIVATE, "").split(",")}
    return service in wanted or "all" in wanted


def _under_home(path: Path) -> bool:
    homes = {Path("/root"), Path("/home")}
    with contextlib.suppress(KeyError):
        homes.add(Path(pwd.getpwuid(os.geteuid()).pw_dir))
    resolved = path.resolve()
    return any(home != Path("/") and resolved.is_relative_to(home) for home in homes)


def _temp_root() -> Path:
    # As root, servers run as other users that must traverse the parents of their directories: never under a home.
    root = Path(tempfile.gettempdir())
    if _is_root() and _under_home(root):
        root = Path("/tmp")
    return root


# --------------------------------------------------------------------------------------------------------------------
# process-wide state: one work directory, the servers we own, who forgets a cached address


_lock = threading.RLock()
_work_dir: Path | None = None
_keep_work_dir = False  # set when a start failed, so its log outlives the process
_owned: list[OwnedServer] = []
_forgetters: list[Callable[[], None]] = []
_atexit_registered = False


def _new_dir(name: str) -> Path:
    """A fresh directory under this process's work directory (created on first use, removed by `stop_all`)."""
    global _work_dir, _atexit_registered
    with _lock:
        if _work_dir is None or not _work_dir.exists():
            _work_dir = Path(tempfile.mkdtemp(prefix=f"scouter-test-services-{os.getpid()}-", dir=_temp_root()))
            _work_dir.chmod(0o755)  # servers running as other users traverse it
        if not _atexit_registered:
            atexit.register(stop_all)
            _atexit_registered = True
        path = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=_work_dir))
        path.chmod(0o755)
        return path


def _own(server: S) -> S:
    with _lock:
        _owned.append(server)
    return server


def _disown(server: OwnedServer) -> None:
    with _lock:
        if server in _owned:
            _owned.remove(server)


def start_owned(server: S) -> S:
    """Start a server this process owns (stopped at exit); on failure it is disowned and the error raised."""
    _own(server)
    t0 = time.monotonic()
    try:
        server.start()
    except BaseException:
        _disown(server)
        raise
    log.info("started %r in %.2f s", server, time.monotonic() - t0)
    return server


def _failed() -> None:
    global _keep_work_dir
    _keep_work_dir = True


def forget_at_stop_all(forget: Callable[[], None]) -> None:
    """Have `stop_all` call `forget` (a service module's reset of its cached address) after stopping the servers."""
    with _lock:
        _forgetters.append(forget)


def stop_all() -> None:
    """Stop every server this process started, forget cached addresses, remove the work directory."""
    global _work_dir
    with _lock:
        servers = list(reversed(_owned))
        for server in servers:
            try:
                server.close()
            except Exception:  # keep stopping the others
                log.exception("stopping %r failed", server)
        _owned.clear()
        for forget in _forgetters:
            forget()
        if _work_dir is not None and not _keep_work_dir and not os.environ.get(ENV_KEEP_DIRS):
            shutil.rmtree(_work_dir, ignore_errors=True)
        _work_dir = None


# --------------------------------------------------------------------------------------------------------------------
# the servers this process owns


class OwnedServer(abc.ABC):
    """A server process this test process starts and owns, in a folder of its own with one log file and a port.

    Subclasses say how to run the server and how to tell it is ready (`_start`); starting, its failure (the work
    directory is kept for the log), stopping, restarting and closing are the same for every server. `stop()` +
    `start()` keeps the folder and the port.
    """

    #: Sent to stop the server, and to it when this process dies.
    stop_signal: int = signal.SIGTERM
    start_timeout: float = 60
    stop_timeout: float = 15

    def __init__(self, name: str, log_name: str, *, port: int | None = None) -> None:
        self.root = _new_dir(name)
        self.log_path = self.root / log_name
        self.log_path.touch()
        self.port = port or _free_port()
        self._child: _Child | None = None

    @property
    def running(self) -> bool:
        return self._child is not None and self._child.alive()

    def start(self, timeout: float | None = None) -> None:
        """Start the server and wait until it is ready; on failure stop what was started and keep the log."""
        if self.running:
            return
        try:
            self._start(self.start_timeout if timeout is None else timeout)
        except BaseException:
            _failed()
            self.stop()
            raise

    @abc.abstractmethod
    def _start(self, timeout: float) -> None:
        """Prepare and `_run` the server, ready within `timeout` seconds."""

    def _run(
        self,
        what: str,
        argv: list[str],
        *,
        env: dict[str, str],
        ready: Callable[[], bool],
        timeout: float,
        user: str | None = None,
        interval: float = 0.1,
    ) -> None:
        """Spawn the server's process (as `user`) and poll `ready` until it answers."""
        self._child = _Child(
            what, argv, env=env, log_path=self.log_path, cwd=self.root, user=user, death_signal=self.stop_signal
        )
        self._child.wait_ready(ready, timeout, interval)

    def stop(self, timeout: float | None = None) -> None:
        """Send `stop_signal`, kill the process group after `timeout` seconds; idempotent."""
        if self._child is not None:
            self._child.stop(self.stop_signal, self.stop_timeout if timeout is None else timeout)
            self._child = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def close(self) -> None:
        self.stop()
        _disown(self)


@contextlib.contextmanager
def _private_server(server: S) -> Iterator[S]:
    """`server` started for the caller alone, then stopped and its folder removed."""
    start_owned(server)
    try:
        yield server
    finally:
        server.close()
        shutil.rmtree(server.root, ignore_errors=True)
