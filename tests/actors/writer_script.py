"""Writes SPC batches through the real writer as fast as it can and prints each acknowledged batch id.

Usage: python -m tests.actors.writer_script DSN. Killed with SIGKILL by the test mid-stream.
"""

from __future__ import annotations

import datetime
import sys

import trio
import trio_asyncio
from prometheus_client import CollectorRegistry

from actors.database import DatabaseHandle, migrate, open_pool
from actors.metrics import ScouterMetrics
from actors.writer import WriterActor, open_inbox, write
from config import DatabaseSettings
from scouter.records import DecodedBatch, SpcRecord
from tests.drift_profiles import insert_profile, spc_profile

BATCH = 10


async def sender(inbox, worker: int) -> None:  # type: ignore[no-untyped-def]
    n = 0
    while True:
        feature = f"w{worker}-b{n}"
        now = datetime.datetime.now(datetime.UTC)
        batch = DecodedBatch.from_records(SpcRecord(now, "kill", "m", "1", feature, float(i)) for i in range(BATCH))
        result = await write(inbox, batch)
        if result.ok:
            print(f"ACK {feature}", flush=True)
        n += 1


async def main(dsn: str) -> None:
    async with trio_asyncio.open_loop():
        db = await open_pool(dsn, DatabaseSettings(max_pool_size=4, min_pool_size=1))
        await migrate(db)
        # an SPC profile for the entity: the writer also stores its summaries
        now = datetime.datetime.now(datetime.UTC)
        await db.run(insert_profile, spc_profile({"a": (0.0, 1.0)}, space="kill", name="m", version="1"), now, None)
        send, recv = open_inbox(100)
        writer = WriterActor(recv, send, DatabaseHandle(db), ScouterMetrics.create(CollectorRegistry(), process=False))
        async with trio.open_nursery() as nursery:
            await nursery.start(writer.run, trio.Event())
            print("READY", flush=True)
            for worker in range(20):
                nursery.start_soon(sender, send, worker)


if __name__ == "__main__":
    trio.run(main, sys.argv[1])
