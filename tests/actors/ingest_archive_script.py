"""Ingest through the real writer while the real archiver archives and compacts the same days, to be SIGKILLed.

Usage: python -m tests.actors.ingest_archive_script DSN STORE_DIR STAGE. Senders write SPC batches of `BATCH` rows
dated over two complete days past retention (and a few now), each batch one feature named after it, and print
``ACK <feature>`` once the writer has acknowledged it (after COMMIT). Once `FIRST_PASS_AFTER` batches are
acknowledged, archive, compaction and maintenance passes run in turns for as long as the process lives: every pass
finds late rows for hours already archived (later parts) and for days already compacted (merged with the daily
object), and maintenance deletes the archived rows from PostgreSQL meanwhile.

STAGE says where the passes stop, printing a word and dawdling (in a worker thread: ingest carries on) for the test
to SIGKILL the process there:

* ``ingest``: nowhere, the kill lands wherever the passes and the writer are;
* ``archiving``: the archiver about to upload an hourly object (``ARCHIVING``), ``archived``: the upload done, its
  rows not marked yet (``ARCHIVED``);
* ``compacting``: a daily object about to be written (``COMPACTING``), ``uploaded``: written, its archive_log
  transaction not run yet (``UPLOADED``);
* ``committed``: a day's compaction committed, its hourly objects not deleted yet (``COMMITTED``).

Both sides of each upload, so that a pass committing before its upload would be caught as well as one committing
half of what it must.

The dawdling starts at the second pass, when the first has archived and compacted everything there was.
"""

from __future__ import annotations

import datetime
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import trio
import trio_asyncio
from obstore.store import LocalStore
from prometheus_client import CollectorRegistry

from actors.archive_compactor import ArchiveCompactor, delete_objects
from actors.archive_store import StoreHandle, put_object
from actors.archiver import ArchiverActor
from actors.database import DatabaseHandle, migrate, open_pool
from actors.maintenance import MaintenanceActor
from actors.metrics import ScouterMetrics
from actors.writer import WriterActor, open_inbox, write
from config import DatabaseSettings
from scouter.archive import floor_day
from scouter.records import DecodedBatch, SpcRecord
from scouter.sql import PARTITIONED_TABLES

UTC = datetime.UTC
BATCH = 5
SENDERS = 8
RETENTION_DAYS = 30
PARTITION_RETENTION_DAYS = next(t.retention_days for t in PARTITIONED_TABLES if t.name == "spc_drift")
FIRST_PASS_AFTER = 40
#: Two complete UTC days past the archive's retention and the partitions': the rows' days (most batches),
#: archived and compacted while written, and deleted from PostgreSQL by maintenance once archived (they wait in the
#: default partition: no partition is made for days that old).
DAY0 = floor_day(datetime.datetime.now(UTC) - datetime.timedelta(days=PARTITION_RETENTION_DAYS + 5))
ENTITY = ("kill", "m", "1")


_OUTPUT = threading.Lock()


def say(line: str) -> None:
    """One whole line on stdout: the senders (event loop) and the dawdling passes (worker threads) both print, and
    print() writes a line's text and its end separately."""
    with _OUTPUT:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def created_at(worker: int, n: int, i: int) -> datetime.datetime:
    """Row `i` of batch `n` of `worker`: one batch in ten now (live rows), the others spread over DAY0's two days,
    a batch's rows in different hours (so that one batch lands in several objects)."""
    if n % 10 == 9:
        return datetime.datetime.now(UTC)
    minutes = (worker * 211 + n * 97 + i * 613) % (2 * 24 * 60)
    return DAY0 + datetime.timedelta(minutes=minutes, seconds=i, microseconds=worker * 1000 + n % 1000)


class Passes:
    """The archive and compaction passes, with the stage's dawdle from the second pass on."""

    def __init__(self, stage: str) -> None:
        self.stage = stage
        self.passes = 0

    def dawdle(self, stage: str) -> None:
        if self.stage == stage and self.passes >= 2:
            say(stage.upper())
            time.sleep(60)

    def archive_put(self, store: Any, key: str, data: bytes) -> None:
        self.dawdle("archiving")
        put_object(store, key, data)
        self.dawdle("archived")

    def compaction_put(self, store: Any, key: str, data: bytes) -> None:
        self.dawdle("compacting")
        put_object(store, key, data)
        self.dawdle("uploaded")

    def compaction_delete(self, store: Any, keys: Sequence[str]) -> None:
        self.dawdle("committed")
        delete_objects(store, keys)


async def main(dsn: str, root: str, stage: str) -> None:
    async with trio_asyncio.open_loop():
        db = await open_pool(dsn, DatabaseSettings(max_pool_size=6, min_pool_size=1))
        await migrate(db)
        handle = DatabaseHandle(db)
        metrics = ScouterMetrics.create(CollectorRegistry(), process=False)
        stores = StoreHandle.of(LocalStore(Path(root), mkdir=True))
        passes = Passes(stage)
        archiver = ArchiverActor(handle, stores, RETENTION_DAYS, metrics, put=passes.archive_put, compact=False)
        compactor = ArchiveCompactor(
            handle,
            stores,
            RETENTION_DAYS,
            archiver.clock,
            put=passes.compaction_put,
            delete=passes.compaction_delete,
        )
        maintenance = MaintenanceActor(handle, days_ahead=1)
        send, recv = open_inbox(100)
        writer = WriterActor(recv, send, handle, metrics)
        acknowledged = 0

        async def sender(worker: int) -> None:
            nonlocal acknowledged
            n = 0
            while True:
                feature = f"w{worker}-b{n}"
                batch = DecodedBatch.from_records(
                    SpcRecord(created_at(worker, n, i), *ENTITY, feature, float(i)) for i in range(BATCH)
                )
                result = await write(send, batch)
                if result.ok:
                    say(f"ACK {feature}")
                    acknowledged += 1
                n += 1

        async with trio.open_nursery() as nursery:
            await nursery.start(writer.run, trio.Event())
            say("READY")
            for worker in range(SENDERS):
                nursery.start_soon(sender, worker)
            while acknowledged < FIRST_PASS_AFTER:
                await trio.sleep(0.01)
            while True:
                passes.passes += 1
                await archiver.run_once()
                await compactor.run_once()
                await maintenance.run_once()
                say(f"PASS {passes.passes}")
                await trio.sleep(0.05)


if __name__ == "__main__":
    trio.run(main, *sys.argv[1:4])
