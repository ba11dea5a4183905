"""Fixtures of the process-level tests: a free pair of ports and the environment of a server on them."""

from __future__ import annotations

import pytest

from tests.supervisors.test_cli import env_for, free_port


@pytest.fixture
def port() -> int:
    return free_port()


@pytest.fixture
def server_env(port: int, fresh_database_dsn: str) -> dict[str, str]:
    """Environment of a server on ``port`` with its own empty database."""
    return env_for(port, DATABASE_URI=fresh_database_dsn)
