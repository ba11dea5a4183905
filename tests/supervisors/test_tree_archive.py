"""The archiver in the tree: after the dispatcher, before HTTP, sharing its store with the drift queries."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from actors.archive_reader import ArchiveReader
from actors.metrics import ScouterMetrics
from config import load_settings
from supervisors.tree import ARCHIVER_GRACE, Process, build_tree


def test_archiver_child_and_the_read_back_share_one_store() -> None:
    """'archiver' starts right before 'http' with its grace; the HTTP context's archive reader uses the same store
    handle, the same retention, and the archive interval comes from SCOUTER_ARCHIVE_INTERVAL_SECONDS."""
    settings = load_settings({
        "DATABASE_URI": "postgresql://u@127.0.0.1:9/db",
        "DATA_RETENTION_PERIOD": "7",
        "SCOUTER_ARCHIVE_INTERVAL_SECONDS": "120",
        "SCOUTER_STORAGE_URI": "memory:///",
    })  # fmt: skip
    tree = build_tree(settings, Process(ScouterMetrics.create(CollectorRegistry(), process=False)))
    ids = [child.id for child in tree.spec.children]
    assert ids.index("archiver") == ids.index("http") - 1
    (child,) = [c for c in tree.spec.children if c.id == "archiver"]
    assert ARCHIVER_GRACE == child.shutdown
    archiver = child.start.__self__  # the bound ArchiverActor.run
    reader = tree.http.archive
    assert isinstance(reader, ArchiveReader)
    assert reader.stores is archiver.stores
    assert (7, 7, 120.0) == (reader.retention_days, archiver.retention_days, archiver.interval)
    assert reader.stores.get() is archiver.stores.get()
