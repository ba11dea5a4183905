"""stdlib logging for the server: plain or JSON lines, each naming the actor (supervised child) that wrote it."""

from __future__ import annotations

import datetime
import logging
import sys

import orjson

from ._monitor import current_child

_LEVELS = {
    "trace": logging.DEBUG,
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
}


class _ActorFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.actor = current_child.get()
        return True


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "ts": datetime.datetime.fromtimestamp(record.created, datetime.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "actor": getattr(record, "actor", "-"),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info)
        return orjson.dumps(line).decode()


def setup_logging(level: str, json: bool) -> None:
    """Replace the root handlers with one stderr handler; idempotent (SIGHUP may call it again)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_ActorFilter())
    handler.setFormatter(
        _JsonFormatter() if json else logging.Formatter("%(asctime)s %(levelname)-7s [%(actor)s] %(name)s: %(message)s")
    )
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(_LEVELS.get(level.lower(), logging.INFO))
    # Chatty libraries stay at warning unless we debug.
    for name in ("hypercorn.access", "aiokafka", "aio_pika", "aiormq", "asyncio"):
        logging.getLogger(name).setLevel(logging.DEBUG if level.lower() in ("trace", "debug") else logging.WARNING)
