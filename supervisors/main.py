"""The ``scouter`` command: serve, archive, rollup rebuild, config, version."""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib.metadata
import logging
import os
import sys
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from pathlib import Path
from typing import TextIO

import attrs
import trio
import trio_asyncio

from actors.archive_compactor import CompactionReport
from actors.archive_store import StoreHandle, store_root
from actors.archiver import ArchiveProgress, ArchiverActor, ArchiveReport
from actors.database import UNAVAILABLE, DatabaseHandle, close_pool, migrate, open_pool
from actors.metrics import ScouterMetrics
from actors.postgres import EmbeddedPostgres
from actors.rollup_rebuild import RebuildProgress, RebuildReport, rebuild_rollups
from config import (
    DEFAULT_DATABASE_URI,
    DEFAULT_SECRET,
    ENV_FILE,
    FILE_SUFFIX,
    ConfigError,
    DatabaseSettings,
    Settings,
    describe,
    load_settings,
    settings_environment,
)

from ._signals import Ending, serve_until_signalled
from ._spec import RestartIntensityExceeded
from .logs import setup_logging
from .tree import Process, TreeBuilder, _default_database_answers, build_tree

log = logging.getLogger("scouter")

UPSTREAM_VERSION = "0.6.4"


def _version() -> str:
    try:
        return importlib.metadata.version("scouter-py")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _secret_problems(settings: Settings) -> list[str]:
    auth = settings.auth
    names = {
        "SCOUTER_ENCRYPT_SECRET": auth.encrypt_secret,
        "SCOUTER_REFRESH_SECRET": auth.refresh_secret,
        "SCOUTER_BOOTSTRAP_KEY": auth.bootstrap_key,
    }
    return [name for name, value in names.items() if value == DEFAULT_SECRET]


def _load(env: dict[str, str] | os._Environ[str]) -> Settings:
    settings = load_settings(env)
    defaults = _secret_problems(settings)
    if settings.auth.strict_secrets and settings.auth.default_password == "admin":
        # The first start would create admin/admin; strict mode creates no account with a built-in password.
        defaults.append("SCOUTER_DEFAULT_PASSWORD")
    if defaults and settings.auth.strict_secrets:
        raise ConfigError([f"{name}: still the built-in default (SCOUTER_STRICT_SECRETS=true)" for name in defaults])
    return settings


def serve(settings: Settings, build: TreeBuilder = build_tree) -> int:
    """Run the tree until a stop signal. 0 after a graceful stop, 1 when the tree gave up or the drain was cut."""
    process = Process(metrics=ScouterMetrics.create())
    pending = [settings]

    def prepare():  # type: ignore[no-untyped-def]
        # SIGHUP re-reads the environment, SCOUTER_ENV_FILE and every NAME_FILE: a rotated secret is picked up here
        fresh = pending.pop() if pending else _load(os.environ)
        for name in _secret_problems(fresh):
            log.warning("%s is the built-in default secret: anyone can forge tokens; set it", name)
        return build(fresh, process).run

    log.info("scouter-py %s (API of scouter %s) starting", _version(), UPSTREAM_VERSION)
    try:
        ending = trio.run(_amain, prepare, settings.shutdown_deadline)
    except RestartIntensityExceeded as exc:
        child, error = exc.root_cause()
        log.critical("giving up: %s restarted too often; last error: %r", child, error)
        return 1
    if ending is Ending.FORCED:
        log.warning("stopped before the drain finished")
        return 1
    log.info("stopped gracefully")
    return 0


def freeze_startup_heap() -> None:
    """Everything imported and built so far lives for the whole process: keep the collector from rescanning it,
    which shortens the full collections that otherwise show up as latency spikes (and, while a Kafka backlog drains,
    took a third of the event loop's time)."""
    gc.collect()
    gc.freeze()


async def _amain(prepare, hard_deadline: float) -> Ending:  # type: ignore[no-untyped-def]
    failure: RestartIntensityExceeded | None = None
    freeze_startup_heap()
    async with trio_asyncio.open_loop():  # exactly one asyncio loop, around the whole tree
        try:
            return await serve_until_signalled(prepare, hard_deadline=hard_deadline)
        except RestartIntensityExceeded as exc:
            failure = exc
    raise failure


BAD_CONFIGURATION = 2  # exit status for an invalid environment, whatever the command


def _settings_or_report(load: Callable[[Mapping[str, str]], Settings]) -> Settings | None:
    """Settings from the environment, or None after printing one line per bad variable to stderr."""
    try:
        return load(os.environ)
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"scouter: invalid configuration: {problem}", file=sys.stderr)
        return None


def _cmd_serve(args: argparse.Namespace) -> int:
    settings = _settings_or_report(_load)
    if settings is None:
        return BAD_CONFIGURATION
    setup_logging(settings.log.level, settings.log.json)
    return serve(settings)


# --- scouter archive ------------------------------------------------------------------------------------------------


@attrs.define
class ProgressBar:
    """One pass's progress on a terminal: a bar redrawn in place; elsewhere (a pipe, a log file) one line at the
    start and one every tenth of the way, so logs stay readable."""

    out: TextIO
    tty: bool
    width: int = 30
    _last_tenth: int = -1
    _started: float = attrs.field(factory=time.monotonic)

    def __call__(self, p: ArchiveProgress) -> None:
        if p.groups_total == 0:
            return
        fraction = p.groups_done / p.groups_total
        text = f"{p.groups_done}/{p.groups_total} objects, {p.rows_done:,}/{p.rows_total:,} rows"
        if self.tty:
            filled = round(self.width * fraction)
            bar = "#" * filled + "-" * (self.width - filled)
            elapsed = time.monotonic() - self._started
            self.out.write(f"\rarchiving [{bar}] {fraction:4.0%} {text} {elapsed:.0f}s")
            if p.groups_done == p.groups_total:
                self.out.write("\n")
        else:
            tenth = int(fraction * 10)
            if tenth == self._last_tenth:
                return
            self._last_tenth = tenth
            self.out.write(f"archiving: {fraction:4.0%} {text}\n")
        self.out.flush()


@contextlib.asynccontextmanager
async def _database_uri(settings: DatabaseSettings) -> AsyncIterator[str]:
    """The database the server would use: DATABASE_URI, the default URI, or the embedded PostgreSQL on its data
    directory (started for the command and stopped after; it refuses while a server runs on the same data)."""
    if settings.uri is not None:
        yield settings.uri
    elif settings.embedded == "never" or (settings.embedded == "auto" and _default_database_answers()):
        yield DEFAULT_DATABASE_URI
    else:
        embedded = EmbeddedPostgres(Path(settings.data_dir))
        stop = trio.Event()
        async with trio.open_nursery() as nursery:
            uri: str = await nursery.start(embedded.run, stop)
            try:
                yield uri
            finally:
                stop.set()


async def _archive_once(settings: Settings, progress: ProgressBar) -> tuple[ArchiveReport, CompactionReport]:
    async with trio_asyncio.open_loop(), _database_uri(settings.database) as uri:
        db = await open_pool(uri, attrs.evolve(settings.database, min_pool_size=1, max_pool_size=2))
        try:
            await migrate(db)  # as the server would on start: the command may run before any server did
            actor = ArchiverActor(
                DatabaseHandle(db),
                StoreHandle(settings.storage),
                settings.database.retention_days,
                ScouterMetrics.create(process=False),
            )
            report = await actor.run_once(progress=progress)
            return report, (CompactionReport(skipped=True) if report.skipped else await actor.compact_once())
        finally:
            await close_pool(db)


def _leaf(exc: BaseException) -> BaseException:
    """The first exception inside nested groups (the loop and the nurseries wrap what went wrong)."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


def _cmd_archive(args: argparse.Namespace) -> int:
    settings = _settings_or_report(load_settings)
    if settings is None:
        return BAD_CONFIGURATION
    setup_logging(settings.log.level, settings.log.json)
    progress = ProgressBar(sys.stderr, sys.stderr.isatty())
    root = store_root(settings.storage)
    try:
        report, compaction = trio.run(_archive_once, settings, progress)
    except KeyboardInterrupt:
        print("\nscouter archive: interrupted; the object in flight was rolled back", file=sys.stderr)
        return 1
    except Exception as exc:  # a failed upload, bad credentials, no database: say what, exit 1
        log.debug("archive pass failed", exc_info=True)
        cause = _leaf(exc)
        what = "database unavailable" if isinstance(cause, UNAVAILABLE) else "failed"
        print(f"\nscouter archive: {what}: {cause!r}", file=sys.stderr)
        return 1
    if report.skipped:
        print("another replica holds the archive lock and is archiving now: nothing done")
        return 0
    print(
        f"archived {report.rows:,} rows in {report.objects:,} objects ({report.bytes:,} bytes) to {root} "
        f"in {report.duration:.1f} s"
    )
    if report.quarantined_rows:
        print(f"{report.quarantined_rows:,} rows could not be archived: moved to scouter.quarantine (see the log)")
    if compaction.days or compaction.failed_days:
        print(
            f"compacted {compaction.days:,} complete days ({compaction.objects_retired:,} objects into "
            f"{compaction.days:,}) in {compaction.duration:.1f} s"
        )
    if compaction.failed_days:
        print(f"{compaction.failed_days:,} days could not be compacted and stay hourly (see the log)")
    return 0


# --- scouter rollup rebuild -----------------------------------------------------------------------------------------


def _day_progress(out: TextIO) -> Callable[[RebuildProgress], None]:
    tty = out.isatty()

    def show(p: RebuildProgress) -> None:
        text = f"rollups: day {p.days_done}/{p.days_total} ({p.day:%Y-%m-%d}) built"
        out.write(f"\r{text}" + ("\n" if p.days_done == p.days_total else "") if tty else f"{text}\n")
        out.flush()

    return show


async def _rebuild_once(settings: Settings, progress: Callable[[RebuildProgress], None]) -> RebuildReport:
    async with trio_asyncio.open_loop(), _database_uri(settings.database) as uri:
        db = await open_pool(uri, attrs.evolve(settings.database, min_pool_size=1, max_pool_size=2))
        try:
            await migrate(db)
            return await rebuild_rollups(db, progress)
        finally:
            await close_pool(db)


def _cmd_rollup(args: argparse.Namespace) -> int:
    settings = _settings_or_report(load_settings)
    if settings is None:
        return BAD_CONFIGURATION
    setup_logging(settings.log.level, settings.log.json)
    try:
        report = trio.run(_rebuild_once, settings, _day_progress(sys.stderr))
    except KeyboardInterrupt:
        print(
            "\nscouter rollup rebuild: interrupted; the days built so far are kept, rerun to carry on", file=sys.stderr
        )
        return 1
    except Exception as exc:
        log.debug("rollup rebuild failed", exc_info=True)
        cause = _leaf(exc)
        what = "database unavailable" if isinstance(cause, UNAVAILABLE) else "failed"
        print(f"\nscouter rollup rebuild: {what}: {cause!r}", file=sys.stderr)
        return 1
    covered = "every stored row" if report.since is None else f"rows from {report.since.isoformat()} on"
    print(f"rebuilt the rollups of {report.days} day(s); rollups now cover {covered}")
    if report.stopped_at is not None:
        print(f"stopped at {report.stopped_at:%Y-%m-%d}: rows of that day were archived and dropped; older days stay "
              "read from the rows and the archive")  # fmt: skip
    return 0


def _cmd_config(args: argparse.Namespace) -> int:
    settings = _settings_or_report(load_settings)
    if settings is None:
        return BAD_CONFIGURATION
    origins = settings_environment(os.environ).origins
    env_file = os.environ.get(ENV_FILE, "").strip()
    source = f"the environment and {ENV_FILE}={env_file}" if env_file else f"the environment ({ENV_FILE} unset)"
    print(f"# Read from {source}. Any NAME below may instead be given as NAME{FILE_SUFFIX}=/path: the file's")
    print("# content (a Docker or Kubernetes secret). `scouter serve` reads them all again on SIGHUP and restarts")
    print("# with the new values, or refuses invalid ones (logged, naming the variable) and keeps serving.")
    rows = list(describe(settings))
    width = max(len(name) for name, _, _ in rows)
    for name, value, help_text in rows:
        shown = f"{value} ({origins[name]})" if name in origins else value
        print(f"{name:<{width}}  {shown:<40}  # {help_text}")
    return 0


def _cmd_version(args: argparse.Namespace) -> int:
    print(f"scouter-py {_version()} (compatible with scouter-ml {UPSTREAM_VERSION})")
    return 0


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="scouter", description="Scouter ML-monitoring server (Python).")
    commands = root.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve_cmd = commands.add_parser(
        "serve",
        help="run the server until SIGTERM/SIGINT (SIGHUP restarts it with fresh settings)",
        description="Run the server. Configured by environment variables, an env file (SCOUTER_ENV_FILE) and "
        "NAME_FILE variables, all re-read on SIGHUP; see `scouter config`.",
    )
    serve_cmd.set_defaults(func=_cmd_serve)
    archive_cmd = commands.add_parser(
        "archive",
        help="run one archive pass now, with progress on a terminal",
        description="Archive now, once: rows older than DATA_RETENTION_PERIOD days are written as hourly Parquet "
        "objects to SCOUTER_STORAGE_URI and marked archived, and each complete day's objects are then compacted "
        "into one, as the server's archiver does every "
        "SCOUTER_ARCHIVE_INTERVAL_SECONDS (one replica at a time: while another holds the lock, nothing is done). "
        "Exit status 0 when the pass completed (or was not needed), 1 when it failed.",
    )
    archive_cmd.set_defaults(func=_cmd_archive)
    rollup_cmd = commands.add_parser(
        "rollup",
        help="rollup maintenance: `scouter rollup rebuild` builds the rollups of rows stored before they existed",
        description="rebuild: build the per-minute rollups of the rows stored before the rollups existed, one UTC "
        "day at a time, newest first, with progress; the server keeps serving meanwhile (reads of days not built yet "
        "come from the rows). Interrupted, it keeps the days it built; rerun to carry on.",
    )
    rollup_cmd.add_argument("action", choices=["rebuild"])
    rollup_cmd.set_defaults(func=_cmd_rollup)
    config_cmd = commands.add_parser(
        "config",
        help="print the effective settings, secrets masked",
        description="Print every setting, its effective value and what it does.",
    )
    config_cmd.set_defaults(func=_cmd_config)
    version_cmd = commands.add_parser("version", help="print the version", description="Print the version.")
    version_cmd.set_defaults(func=_cmd_version)
    return root


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
