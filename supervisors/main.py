"""The ``scouter`` command: serve, config, version."""

from __future__ import annotations

import argparse
import importlib.metadata
import logging
import os
import sys
from collections.abc import Sequence

import trio
import trio_asyncio

from actors.metrics import ScouterMetrics
from config import DEFAULT_SECRET, ConfigError, Settings, describe, load_settings

from ._signals import Ending, serve_until_signalled
from ._spec import RestartIntensityExceeded
from .logs import setup_logging
from .tree import Process, TreeBuilder, build_tree

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
    if defaults and settings.auth.strict_secrets:
        raise ConfigError([f"{name}: still the built-in default (SCOUTER_STRICT_SECRETS=true)" for name in defaults])
    return settings


def serve(settings: Settings, build: TreeBuilder = build_tree) -> int:
    """Run the tree until a stop signal. 0 after a graceful stop, 1 when the tree gave up or the drain was cut."""
    process = Process(metrics=ScouterMetrics.create())
    pending = [settings]

    def prepare():  # type: ignore[no-untyped-def]
        fresh = pending.pop() if pending else _load(os.environ)  # SIGHUP re-reads the environment
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


async def _amain(prepare, hard_deadline: float) -> Ending:  # type: ignore[no-untyped-def]
    failure: RestartIntensityExceeded | None = None
    async with trio_asyncio.open_loop():  # exactly one asyncio loop, around the whole tree
        try:
            return await serve_until_signalled(prepare, hard_deadline=hard_deadline)
        except RestartIntensityExceeded as exc:
            failure = exc
    raise failure


def _cmd_serve(args: argparse.Namespace) -> int:
    try:
        settings = _load(os.environ)
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"scouter: invalid configuration: {problem}", file=sys.stderr)
        return 2
    setup_logging(settings.log.level, settings.log.json)
    return serve(settings)


def _cmd_config(args: argparse.Namespace) -> int:
    try:
        settings = load_settings(os.environ)
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"scouter: invalid configuration: {problem}", file=sys.stderr)
        return 2
    rows = list(describe(settings))
    width = max(len(name) for name, _, _ in rows)
    for name, value, help_text in rows:
        print(f"{name:<{width}}  {value:<40}  # {help_text}")
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
        description="Run the server. Configured only by environment variables; see `scouter config`.",
    )
    serve_cmd.set_defaults(func=_cmd_serve)
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
