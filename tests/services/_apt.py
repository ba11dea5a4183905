"""Debian packages the test services install on first use (as root only): RabbitMQ, npm, Chromium."""

from __future__ import annotations

import os
from pathlib import Path

from tests.services._owned import _lock, _new_dir
from tests.services._process import ServiceError, _is_root, _run_logged

_apt_updated = False


def _apt_get_install(package: str) -> Path:
    """`apt-get install -y package` (root only; `apt-get update` once per process); returns the log's path."""
    global _apt_updated
    log_path = _new_dir("apt") / "apt.log"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    lock = ["-o", "DPkg::Lock::Timeout=300"]
    with _lock:
        if not _apt_updated:
            _run_logged(
                "apt-get update", ["apt-get", *lock, "update"], log_path=log_path, cwd=Path("/"), env=env, timeout=600
            )
            _apt_updated = True
        _run_logged(
            f"apt-get install {package}",
            ["apt-get", *lock, "install", "-y", package],
            log_path=log_path,
            cwd=Path("/"),
            env=env,
            timeout=900,
        )
    return log_path


CHROMIUM = Path("/usr/bin/chromium")


def ensure_chromium() -> Path:
    """Debian's Chromium for the dashboard's browser test: `apt-get install chromium` unless /usr/bin/chromium
    exists (root only). Playwright drives this binary; its own browser downloads are never used."""
    if CHROMIUM.exists():
        return CHROMIUM
    if not _is_root():
        raise ServiceError(
            f"Chromium is not installed ({CHROMIUM} missing) and only root may apt-get install "
            "chromium; install it to run the browser test"
        )
    log_path = _apt_get_install("chromium")
    if not CHROMIUM.exists():
        raise ServiceError(f"apt-get installed chromium but {CHROMIUM} is missing (log: {log_path})")
    return CHROMIUM
