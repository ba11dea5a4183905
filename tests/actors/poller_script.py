"""A process that runs only drift pollers on a database, for tests that kill one mid-check.

Usage: python -m tests.actors.poller_script DSN WORKERS LEASE_SECONDS   (stops on SIGTERM / SIGINT)
"""

from __future__ import annotations

import logging
import signal
import sys

import trio
import trio_asyncio
from prometheus_client import CollectorRegistry

from actors.alert_channel import AlertChannel, open_alert_channel
from actors.database import DatabaseHandle, close_pool, open_pool
from actors.metrics import ScouterMetrics
from actors.poller import Poller, PollerConfig, poller_id
from config import DatabaseSettings
from supervisors import ChildSpec, SupervisorSpec, supervise


async def main(dsn: str, workers: int, lease: float) -> None:
    metrics = ScouterMetrics.create(CollectorRegistry(), process=False)
    send, _receive = open_alert_channel()
    async with trio_asyncio.open_loop():
        db = await open_pool(dsn, DatabaseSettings(min_pool_size=1, max_pool_size=workers + 1))
        try:
            config = PollerConfig(lease=lease, check_timeout=lease)
            handle, channel = DatabaseHandle(db), AlertChannel(send, metrics)
            children = tuple(
                ChildSpec(f"poller-{i}", Poller(poller_id(i), handle, channel, metrics, config, index=i).run)
                for i in range(workers)
            )
            stop = trio.Event()
            async with trio.open_nursery() as nursery:
                nursery.start_soon(supervise, SupervisorSpec(children), stop)
                with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
                    async for _ in signals:
                        stop.set()
                        break
        finally:
            await close_pool(db)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    trio.run(main, sys.argv[1], int(sys.argv[2]), float(sys.argv[3]))
