"""Runs one compaction pass that stops in a window to be killed in: after the first daily object is written (before
its transaction), or after the first day is committed (before its hourly objects are deleted).

Usage: python -m tests.actors.compaction_script DSN STORE_DIR NOW STAGE, STAGE "uploaded" or "committed"; prints
that word in capitals when it gets there, then dawdles. The test SIGKILLs it then.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import trio
import trio_asyncio
from obstore.store import LocalStore

from actors.archive_compactor import ArchiveCompactor, delete_objects
from actors.archive_store import StoreHandle, put_object
from actors.database import DatabaseHandle, open_pool
from config import DatabaseSettings


def dawdle(word: str) -> None:
    print(word, flush=True)
    time.sleep(30)


async def main(dsn: str, root: str, now: str, stage: str) -> None:
    def put(store: Any, key: str, data: bytes) -> None:
        put_object(store, key, data)
        if stage == "uploaded":
            dawdle("UPLOADED")

    def delete(store: Any, keys: Sequence[str]) -> None:
        if stage == "committed":
            dawdle("COMMITTED")
        delete_objects(store, keys)

    async with trio_asyncio.open_loop():
        db = await open_pool(dsn, DatabaseSettings(max_pool_size=2, min_pool_size=1))
        compactor = ArchiveCompactor(
            DatabaseHandle(db),
            StoreHandle.of(LocalStore(Path(root), mkdir=True)),
            30,
            lambda: datetime.fromisoformat(now),
            put=put,
            delete=delete,
        )
        await compactor.run_once()
        print("DONE", flush=True)


if __name__ == "__main__":
    trio.run(main, *sys.argv[1:5])
