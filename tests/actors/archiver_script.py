"""Runs one archive pass that prints each upload and then dawdles before marking, to be killed in that window.

Usage: python -m tests.actors.archiver_script DSN STORE_DIR. The test SIGKILLs it after the second ``UPLOADED``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import trio
import trio_asyncio
from obstore.store import LocalStore
from prometheus_client import CollectorRegistry

from actors.archive_store import StoreHandle, put_object
from actors.archiver import ArchiverActor
from actors.database import DatabaseHandle, open_pool
from actors.metrics import ScouterMetrics
from config import DatabaseSettings


def put_and_dawdle(store: Any, key: str, data: bytes) -> None:
    put_object(store, key, data)
    print(f"UPLOADED {key}", flush=True)
    time.sleep(2)  # the group's transaction stays open: uploaded, not marked


async def main(dsn: str, root: str) -> None:
    async with trio_asyncio.open_loop():
        db = await open_pool(dsn, DatabaseSettings(max_pool_size=2, min_pool_size=1))
        actor = ArchiverActor(
            DatabaseHandle(db),
            StoreHandle.of(LocalStore(Path(root), mkdir=True)),
            30,
            ScouterMetrics.create(CollectorRegistry(), process=False),
            put=put_and_dawdle,
        )
        await actor.run_once()
        print("DONE", flush=True)


if __name__ == "__main__":
    trio.run(main, sys.argv[1], sys.argv[2])
