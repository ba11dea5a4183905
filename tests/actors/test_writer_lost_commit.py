"""The writer across a connection cut around COMMIT (a real PostgreSQL behind a TCP proxy the test controls).

A retry after a lost connection must know whether the first COMMIT happened: HTTP records have no dedupe hook, so a
blind retry of a committed group stores every row twice.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import pytest
import trio
import trio.testing

from actors._kafka_positions import positions_hook
from actors.database import Database, close_pool, open_pool
from actors.writer import InTransaction, WriteResult, write
from config import DatabaseSettings
from tests.actors.test_writer import count, make_writer, spc_batch
from tests.pg_proxy import PostgresProxy


@pytest.fixture
async def proxy(aio_loop: None, fresh_database_dsn: str) -> AsyncIterator[PostgresProxy]:
    url = urlsplit(fresh_database_dsn)
    proxy = PostgresProxy(url.hostname or "127.0.0.1", url.port or 5432)
    async with trio.open_nursery() as nursery:
        await nursery.start(proxy.serve)
        yield proxy
        nursery.cancel_scope.cancel()


async def write_through(
    proxy: PostgresProxy, dsn: str, batches: dict[str, int], hooks: dict[str, InTransaction] | None = None
) -> dict[str, WriteResult]:
    """Each of ``batches`` (feature → rows) written by a writer whose pool goes through ``proxy``, as one group;
    ``hooks``: the in-transaction hook of some of them."""
    proxied = await open_pool(proxy.dsn(dsn), DatabaseSettings(max_pool_size=2, min_pool_size=1))
    results: dict[str, WriteResult] = {}
    try:
        writer = make_writer(proxied)
        stop = trio.Event()

        async def sender(feature: str, rows: int) -> None:
            hook = (hooks or {}).get(feature)
            results[feature] = await write(writer.inbox_sender, spc_batch(feature, rows), in_transaction=hook)

        with trio.fail_after(30):
            async with trio.open_nursery() as nursery:
                for feature, rows in batches.items():
                    nursery.start_soon(sender, feature, rows)
                await trio.testing.wait_all_tasks_blocked()  # all queued: one group, one transaction
                await nursery.start(writer.run, stop)
                while len(results) < len(batches):
                    await trio.sleep(0.01)
                stop.set()
    finally:
        await close_pool(proxied)
    return results


async def test_a_lost_commit_reply_does_not_store_the_rows_twice(
    db: Database, proxy: PostgresProxy, fresh_database_dsn: str
) -> None:
    """The COMMIT reaches PostgreSQL, the connection dies before its reply: every sender is answered ok, and each
    row is stored once."""
    proxy.cut_next_commit()
    results = await write_through(proxy, fresh_database_dsn, {"a": 3, "b": 5})
    assert 1 == proxy.commits_cut
    assert {"a": WriteResult(True, rows=3), "b": WriteResult(True, rows=5)} == results
    assert 3 == await count(db, "a")
    assert 5 == await count(db, "b")


async def test_a_commit_that_never_arrived_is_retried(
    db: Database, proxy: PostgresProxy, fresh_database_dsn: str
) -> None:
    """The connection dies before the COMMIT reaches PostgreSQL: the transaction is rolled back, the retry stores
    the rows, once."""
    proxy.cut_next_commit(forward=False)
    results = await write_through(proxy, fresh_database_dsn, {"a": 3})
    assert 1 == proxy.commits_cut
    assert {"a": WriteResult(True, rows=3)} == results
    assert 3 == await count(db, "a")


async def test_a_transaction_left_open_on_the_server_is_ended_then_retried(
    db: Database, proxy: PostgresProxy, fresh_database_dsn: str
) -> None:
    """The client's side is cut before COMMIT, the server's session stays idle in its transaction (a half-open
    connection): the writer ends that session, learns the transaction was rolled back, and stores the rows once."""
    proxy.cut_next_commit(forward=False, half_open=True)
    results = await write_through(proxy, fresh_database_dsn, {"a": 3})
    assert 1 == proxy.commits_cut
    assert {"a": WriteResult(True, rows=3)} == results
    assert 3 == await count(db, "a")


async def test_a_lost_commit_reply_is_settled_with_the_id_the_kafka_positions_statement_read(
    db: Database, proxy: PostgresProxy, fresh_database_dsn: str
) -> None:
    """A Kafka batch's positions statement also reads the transaction's id, and the writer then reads none itself:
    a lost COMMIT reply is settled with that id, so the batch is answered as stored (not as a duplicate of itself)
    and its rows and position are stored once."""
    proxy.cut_next_commit()
    hook = positions_hook("g", [("t", 0, 0, 3, False)], [], [bytes(32)], [])
    results = await write_through(proxy, fresh_database_dsn, {"a": 3, "b": 5}, {"a": hook})
    assert 1 == proxy.commits_cut
    assert {"a": WriteResult(True, rows=3), "b": WriteResult(True, rows=5)} == results
    assert 3 == await count(db, "a")
    assert 5 == await count(db, "b")
    assert 3 == await db.fetchval("SELECT next_offset FROM scouter.consumer_offsets WHERE consumer_group = 'g'")
