"""Shared test set-up: real-service fixtures come from tests/plugins/services.py."""

import pytest
import trio.testing

pytest_plugins = ["tests.plugins.services"]


@pytest.fixture
def mock_clock() -> trio.testing.MockClock:
    """Virtual time that jumps as soon as every task is blocked."""
    return trio.testing.MockClock(autojump_threshold=0)
