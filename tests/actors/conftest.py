"""Fixtures for actor tests against the real services: one trio-asyncio loop per test, a migrated database, the
metrics, the database's clock, and the fake alert channel server the dispatcher's tests send to."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator

import pytest
import trio
import trio_asyncio
from prometheus_client import CollectorRegistry

from actors.database import Database, DatabaseHandle, close_pool, migrate, open_pool
from actors.metrics import ScouterMetrics
from config import DatabaseSettings

from .fake_channel import FakeChannel


@pytest.fixture
async def aio_loop() -> AsyncIterator[None]:
    """The one asyncio loop of this test (asyncpg, aiokafka and aio-pika live in it); outermost fixture."""
    async with trio_asyncio.open_loop():
        yield


@pytest.fixture
async def db(aio_loop: None, fresh_database_dsn: str) -> AsyncIterator[Database]:
    """A pool on a fresh, migrated database, closed (shielded, bounded) after the test."""
    database = await open_pool(fresh_database_dsn, DatabaseSettings(max_pool_size=10, min_pool_size=1))
    await migrate(database)
    yield database
    await close_pool(database)


@pytest.fixture
def db_handle(db: Database) -> DatabaseHandle:
    """The handle actors read the pool from, already filled."""
    return DatabaseHandle(db)


@pytest.fixture
def metrics() -> ScouterMetrics:
    """The server's metrics on a registry of this test's own."""
    return ScouterMetrics.create(CollectorRegistry(), process=False)


@pytest.fixture
async def now(db: Database) -> dt.datetime:
    """The database's clock at the start of the test (times in the test are relative to it)."""
    value: dt.datetime = await db.fetchval("SELECT now()")
    return value


@pytest.fixture
async def channel() -> AsyncIterator[tuple[FakeChannel, str]]:
    """The fake alert channel server on 127.0.0.1 and its base URL (the dispatcher's tests)."""
    server = FakeChannel()
    async with trio.open_nursery() as nursery:
        base = await nursery.start(server.serve)
        yield server, base
        nursery.cancel_scope.cancel(reason="test over")
