"""The archive's object store (obstore) and its Parquet files (pyarrow): blocking calls, run them in a thread.

obstore's async API is asyncio-only, so everything here is synchronous and meant for ``trio.to_thread`` or an
executor (dependencies.md §4.6); it releases the GIL while it waits on the network or the disk.

``SCOUTER_STORAGE_URI`` selects the store (server.md §8.1): a local path (made absolute, created if missing),
``file://``, ``s3://bucket[/prefix]`` (region ``AWS_REGION``), ``gs://bucket[/prefix]``, ``az://container[/prefix]``
or ``memory:///`` (one process only: tests). Cloud credentials come from each provider's usual environment variables,
which obstore reads itself (``AWS_ACCESS_KEY_ID``, ``AWS_ENDPOINT``, ``GOOGLE_SERVICE_ACCOUNT``,
``AZURE_STORAGE_ACCOUNT_NAME``…); ``GOOGLE_ACCOUNT_JSON_BASE64`` is decoded into the GCS service-account key.
"""

from __future__ import annotations

import base64
import binascii
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeAlias
from urllib.parse import urlsplit

import attrs
import obstore
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from obstore.exceptions import BaseError
from obstore.store import AzureStore, GCSStore, LocalStore, MemoryStore, S3Store

from config import StorageSettings
from scouter.archive import ArchiveKind

__all__ = [
    "SCHEMAS",
    "ObjectStore",
    "StorageError",
    "StoreHandle",
    "UnarchivableRows",
    "decode_parquet",
    "encode_parquet",
    "get_object",
    "merge_parquet",
    "open_store",
    "put_object",
    "store_root",
]

ObjectStore: TypeAlias = LocalStore | MemoryStore | S3Store | GCSStore | AzureStore


class StorageError(ValueError):
    """``SCOUTER_STORAGE_URI`` (or its credentials) cannot make a store."""


class UnarchivableRows(ValueError):
    """Rows whose values do not fit the archive schema (a negative PSI bin id or count)."""


def _schema(*columns: tuple[str, pa.DataType]) -> pa.Schema:
    # every column non-nullable; created_at is naive timestamp[ns] holding UTC, as upstream writes it
    entity = [
        ("created_at", pa.timestamp("ns")),
        ("space", pa.string()),
        ("name", pa.string()),
        ("version", pa.string()),
    ]
    return pa.schema([pa.field(name, kind, nullable=False) for name, kind in (*entity, *columns)])


#: server.md §8.1, per kind.
SCHEMAS: dict[str, pa.Schema] = {
    "spc": _schema(("feature", pa.string()), ("value", pa.float64())),
    "psi": _schema(("feature", pa.string()), ("bin_id", pa.uint64()), ("bin_count", pa.uint64())),
    "custom": _schema(("metric", pa.string()), ("value", pa.float64())),
}


def open_store(settings: StorageSettings) -> ObjectStore:
    """The store ``settings.uri`` names; `StorageError` when it cannot be made (bad URI, bad credentials)."""
    uri = settings.uri
    scheme = urlsplit(uri).scheme if "://" in uri else ""
    try:
        if scheme == "":
            return LocalStore(Path(uri).expanduser().absolute(), mkdir=True)
        if scheme == "file":
            return LocalStore.from_url(uri, mkdir=True)
        if scheme == "memory":
            return MemoryStore()
        if scheme == "s3":
            return S3Store.from_url(uri, region=settings.aws_region)
        if scheme == "gs":
            if settings.google_account_json_base64:
                key = _decode_google_key(settings.google_account_json_base64)
                return GCSStore.from_url(uri, service_account_key=key)
            return GCSStore.from_url(uri)
        if scheme == "az":
            return AzureStore.from_url(uri)
    except (BaseError, ValueError, OSError) as exc:  # a bad URI, bad credentials, a folder that cannot be made
        raise StorageError(f"SCOUTER_STORAGE_URI {uri!r}: {exc}") from exc
    raise StorageError(f"SCOUTER_STORAGE_URI {uri!r}: unsupported scheme {scheme!r}")


@attrs.define
class StoreHandle:
    """The process's one store, opened on first use: the archiver and the read-back share it (a ``memory:///``
    store exists once per process), and a store that cannot be opened fails the pass or query that needs it, not
    the start of the server."""

    settings: StorageSettings
    store: ObjectStore | None = None

    @classmethod
    def of(cls, store: ObjectStore, uri: str = "memory:///") -> StoreHandle:
        """A handle on an existing store (tests, tools)."""
        return cls(StorageSettings(uri=uri), store)

    def get(self) -> ObjectStore:
        if self.store is None:
            self.store = open_store(self.settings)
        return self.store


def _decode_google_key(text: str) -> str:
    try:
        return base64.b64decode(text, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise StorageError(f"GOOGLE_ACCOUNT_JSON_BASE64 is not base64 of UTF-8 JSON: {exc}") from exc


def store_root(settings: StorageSettings) -> str:
    """The storage root for messages: a local path made absolute, a URI as given."""
    uri = settings.uri
    return str(Path(uri).expanduser().absolute()) if "://" not in uri else uri


def put_object(store: ObjectStore, key: str, data: bytes) -> None:
    """Write (or overwrite) one object; local stores write a temporary file and rename it, so never half a file."""
    obstore.put(store, key, data)


def get_object(store: ObjectStore, key: str) -> bytes | None:
    """The object's bytes, or None when it does not exist."""
    try:
        return bytes(obstore.get(store, key).bytes())
    except FileNotFoundError:
        return None


def encode_parquet(kind: ArchiveKind, space: str, name: str, version: str, rows: Sequence[Sequence[Any]]) -> bytes:
    """One zstd Parquet file of `rows` (``created_us``, key, values... as `scouter.sql.archive_rows` selects them).

    Raises `UnarchivableRows` when a PSI bin id or count is negative (the archive's columns are unsigned).
    """
    schema = SCHEMAS[kind.name]
    n = len(rows)
    columns = list(zip(*rows, strict=True)) if rows else [[] for _ in range(2 + len(kind.values))]
    created = pa.array(columns[0], pa.int64())
    # microseconds to nanoseconds, then reinterpret as naive timestamp[ns]
    created_ns = pc.multiply_checked(created, pa.scalar(1000, pa.int64())).cast(pa.timestamp("ns"))
    arrays: list[pa.Array] = [
        created_ns,
        pa.repeat(pa.scalar(space, pa.string()), n),
        pa.repeat(pa.scalar(name, pa.string()), n),
        pa.repeat(pa.scalar(version, pa.string()), n),
        pa.array(columns[1], pa.string()),
    ]
    for column, field in zip(columns[2:], kind.values, strict=True):
        target = schema.field(field).type
        if pa.types.is_unsigned_integer(target):
            signed = pa.array(column, pa.int64())
            if n and pc.min(signed).as_py() < 0:
                raise UnarchivableRows(f"{field} must not be negative")
            arrays.append(signed.cast(target))
        else:
            arrays.append(pa.array(column, target))
    return _parquet_bytes(kind, pa.Table.from_arrays(arrays, schema=schema))


def _parquet_bytes(kind: ArchiveKind, table: pa.Table) -> bytes:
    """`table` as zstd Parquet: the strings dictionary-encoded, created_at delta-encoded (rows come in time order,
    and Parquet's default tries a dictionary of timestamps, gives up and stores them plain: a day's object is tens of
    times larger and its decoding three times slower)."""
    sink = io.BytesIO()
    strings = ["space", "name", "version", kind.key]
    pq.write_table(
        table,
        sink,
        compression="zstd",
        use_dictionary=strings,
        column_encoding={"created_at": "DELTA_BINARY_PACKED"},
    )
    return sink.getvalue()


def decode_parquet(data: bytes, columns: Sequence[str] | None = None, dictionary: Sequence[str] = ()) -> pa.Table:
    """A Parquet file's table (`columns` only, when given; `dictionary` columns kept dictionary-encoded, which
    saves materialising the same few strings per row). ``ParquetFile.read`` is several times faster than
    ``read_table`` on many small files: it skips the dataset machinery."""
    reader = pq.ParquetFile(pa.BufferReader(data), read_dictionary=list(dictionary) or None)
    return reader.read(columns=list(columns) if columns else None, use_threads=False)


def merge_parquet(kind: ArchiveKind, blobs: Sequence[bytes]) -> tuple[int, bytes]:
    """(rows, one zstd Parquet file) holding every row of the Parquet files `blobs`, sorted by created_at (so readers
    that prune row groups by their statistics skip most of a day). The day's rows are held in memory once."""
    schema = SCHEMAS[kind.name]
    tables = [decode_parquet(blob).select(schema.names).cast(schema) for blob in blobs]
    table = pa.concat_tables(tables).sort_by("created_at") if tables else schema.empty_table()
    return table.num_rows, _parquet_bytes(kind, table)
