"""`scouter serve` with the gap between COMMIT and the broker acknowledgement widened, for the SIGKILL tests.

Usage: python -m tests.e2e.slow_ack_server (configured by the environment, like `scouter serve`). Every Kafka offset
commit and every RabbitMQ ack waits SCOUTER_TEST_ACK_DELAY seconds (default 0.1) first, so that a SIGKILL at a random
moment often lands after the rows are committed and before the broker hears about it: the case that duplicates rows
unless the positions and digests stored with the rows are honoured.
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any

from actors import kafka, rabbitmq
from supervisors.main import main

DELAY = float(os.environ.get("SCOUTER_TEST_ACK_DELAY", "0.1"))

_ack = rabbitmq._Link.ack
_commit = kafka.KafkaConsumerActor._commit_offsets


async def _slow_ack(self: Any, last: Any) -> None:
    await asyncio.sleep(DELAY)
    await _ack(self, last)


async def _slow_commit(self: Any, consumer: Any) -> None:
    if self._commit:
        await asyncio.sleep(DELAY)
    await _commit(self, consumer)


rabbitmq._Link.ack = _slow_ack  # type: ignore[method-assign]
kafka.KafkaConsumerActor._commit_offsets = _slow_commit  # type: ignore[method-assign]

if __name__ == "__main__":
    sys.exit(main(["serve"]))
