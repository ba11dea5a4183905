"""The aiokafka side of the Kafka consumer: client options, rate-limited client logs, the rebalance listener.

Everything here runs on the asyncio side (the listener inside aiokafka's rebalance) or before the client exists.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.helpers import create_ssl_context

from config import KafkaSettings

from ._kafka_positions import Partitions

log = logging.getLogger("actors.kafka")


def consumer_options(settings: KafkaSettings, index: int) -> dict[str, Any]:
    """AIOKafkaConsumer keyword arguments: manual commits, upstream's SASL rule (only with user *and* password)."""
    options: dict[str, Any] = {
        "bootstrap_servers": settings.brokers,
        "group_id": settings.group,
        "client_id": f"scouter-{settings.group}-{index}",
        "enable_auto_commit": False,
        "auto_offset_reset": settings.offset_reset.lower(),
        "session_timeout_ms": settings.session_timeout_ms,
        "heartbeat_interval_ms": settings.heartbeat_interval_ms,
        "max_poll_records": settings.max_batch,
        "retry_backoff_ms": 500,  # metadata retries while a broker is away: fewer, quieter
    }
    if settings.username and settings.password:
        options.update(
            security_protocol=settings.security_protocol,
            sasl_mechanism=settings.sasl_mechanism,
            sasl_plain_username=settings.username,
            sasl_plain_password=settings.password,
        )
        if settings.security_protocol in ("SSL", "SASL_SSL"):
            options["ssl_context"] = create_ssl_context(cafile=settings.cert_location)
    return options


class _RepeatFilter(logging.Filter):
    """Lets one record per (logger, message template) through every ``every`` seconds.

    aiokafka logs every reconnect attempt at ERROR (several lines per 100 ms per consumer while a broker is down).
    """

    def __init__(self, every: float = 30.0) -> None:
        super().__init__()
        self.every = every
        self.last: dict[tuple[str, str], float] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, str(record.msg))
        now = time.monotonic()
        if now - self.last.get(key, -self.every) < self.every:
            return False
        self.last[key] = now
        return True


_AIOKAFKA_LOGGERS = (
    "aiokafka",
    "aiokafka.conn",
    "aiokafka.client",
    "aiokafka.cluster",
    "aiokafka.consumer.consumer",
    "aiokafka.consumer.fetcher",
    "aiokafka.consumer.group_coordinator",
)
_repeat_filter = _RepeatFilter()


def quiet_client_logs() -> None:
    """Rate-limit aiokafka's repeated connection errors (idempotent)."""
    for name in _AIOKAFKA_LOGGERS:
        logger = logging.getLogger(name)
        if _repeat_filter not in logger.filters:
            logger.addFilter(_repeat_filter)


class Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    """Runs in asyncio, inside aiokafka's rebalance.

    ``idle`` is set while no write request of this consumer is at the writer. Batches fetched (and decoded) but not
    yet handed to the writer are made stale by the generation bump and dropped by the consumer's store stage: the
    partitions' next owner (or this consumer, after the assignment) starts from the positions stored in PostgreSQL.
    """

    def __init__(
        self,
        consumer: AIOKafkaConsumer,
        state: Partitions,
        idle: asyncio.Event,
        grace: float,
        revoked: Callable[[Iterable[TopicPartition]], None],
        name: str,
    ) -> None:
        self.name = name
        self.consumer = consumer
        self.state = state
        self.idle = idle
        self.grace = grace
        self.revoked = revoked

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        self.state.generation += 1  # first: nothing fetched so far is handed to the writer any more
        if revoked:
            log.info("%s: revoked %s", self.name, _listed(revoked))
        # Let the batch at the writer reach PostgreSQL first, so the next owner starts after it. Bounded: past the
        # grace, the conditional offset upsert still keeps the two owners from storing the same messages twice.
        if not self.idle.is_set():
            try:
                await asyncio.wait_for(self.idle.wait(), self.grace)
            except TimeoutError:
                log.warning("%s: partitions revoked while a batch was still being stored", self.name)
        self.state.forget(revoked)
        self.revoked(revoked)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        self.state.forget(assigned)
        self.state.assignments += 1
        self.state.generation += 1
        if assigned:
            self.consumer.pause(*assigned)
            self.state.pending |= set(assigned)
            log.info("%s: assigned %s", self.name, _listed(assigned))


def _listed(tps: Iterable[TopicPartition]) -> str:
    return ", ".join(f"{tp.topic}/{tp.partition}" for tp in sorted(tps))
