"""A RabbitMQ that refuses the login: the consumer retries with backoff and leaves no connection for the garbage
collector to close (aio-pika's __del__ would schedule asyncio work from inside whatever trio-asyncio was doing,
which killed the process with TrioInternalError)."""

from __future__ import annotations

import gc
import urllib.parse
from collections.abc import AsyncIterator

import aio_pika
import pytest
import trio

from actors.database import Database
from actors.rabbitmq import RabbitConsumerActor
from config import RabbitSettings
from tests.actors.brokers import Harness, unique

pytestmark = [pytest.mark.rabbitmq, pytest.mark.postgres]


@pytest.fixture
async def harness(db: Database) -> AsyncIterator[Harness]:
    async with Harness.open(db) as h:
        yield h


def unclosed_connections() -> list[aio_pika.Connection]:
    gc.collect()
    return [o for o in gc.get_objects() if isinstance(o, aio_pika.Connection) and not o.is_closed]


async def test_a_refused_login_is_retried_and_leaves_no_connection_open(harness: Harness, rabbitmq_url: str) -> None:
    """Wrong password: the consumer reports itself not ready naming the refusal, tries again with backoff, and
    every refused connection is closed by us, not left to the garbage collector."""
    parts = urllib.parse.urlsplit(rabbitmq_url)
    wrong = parts._replace(netloc=f"guest:not-the-password@{parts.hostname}:{parts.port or 5672}").geturl()
    settings = RabbitSettings(addr=wrong, queue=unique("refused"))
    actor = RabbitConsumerActor(settings, 0, harness.handle, harness.inbox, harness.board, harness.metrics)
    before = len(unclosed_connections())
    with trio.fail_after(30):
        async with harness.running(actor):
            while harness.counter("scouter_broker_reconnects_total", transport="rabbitmq") < 3:
                await trio.sleep(0.1)
            problem = harness.board.problems()["rabbitmq-0"]
            assert "ACCESS_REFUSED" in problem or "authentication" in problem.lower(), problem
    assert before == len(unclosed_connections())
