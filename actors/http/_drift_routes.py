"""Drift ingest over HTTP (server.md §2.9) and the binned drift queries (§2.10).

``POST /scouter/drift`` decodes the ServerRecords body strictly, hands it to the batched writer and answers 200
only once the rows are committed. A malformed body is a 400 naming the problem, and nothing of it is stored; a body
over ``SCOUTER_MAX_BODY_BYTES`` is a 413 before it is read whole (quart stops buffering at the limit). The hot path
is the codec plus one channel round trip to the writer: no per-record work here.

``GET /scouter/drift/{spc,psi,custom}`` aggregate per bucket, over one or two *parts* of the window: PostgreSQL
alone, or, for a window beginning before ``now - DATA_RETENTION_PERIOD``, the rows not archived yet from PostgreSQL
plus the archived ones from Parquet (`actors.archive_reader`). Both parts have the same mergeable form;
`scouter.binned` merges them bucket by bucket and shapes the client's response.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import attrs
import orjson
import trio
from quart import Blueprint, Response, g, request

from scouter.auth import Requirement, can_write, first_unwritable
from scouter.binned import (
    custom_response,
    merge_custom,
    merge_psi,
    merge_spc,
    psi_response,
    spc_response,
)
from scouter.profiles import PsiDriftProfile, profile_from_data
from scouter.queries import DriftQuery, QueryError, parse_drift_query
from scouter.records import CreatedAtBounds, DecodedBatch, DecodeError, decode_records_data
from scouter.sql import (
    CUSTOM_BUCKETS,
    CUSTOM_UNARCHIVED_BUCKETS,
    PSI_BUCKETS,
    PSI_PROFILE,
    PSI_UNARCHIVED_BUCKETS,
    SPC_BUCKETS,
    SPC_UNARCHIVED_BUCKETS,
)

from ..archive_reader import ArchiveLimitExceeded, ArchiveReadError
from ..writer import write
from ._context import context
from ._guard import guarded, identity, json_body
from ._openapi import (
    BEARER,
    BODY_ERRORS,
    QUERY_ERRORS,
    BinnedCustomMetrics,
    BinnedPsiFeatureMetrics,
    DriftRequest,
    ErrorBody,
    ScouterResponse,
    ServerRecords,
    SpcDriftFeatures,
    documented,
)
from ._responses import DB_ERRORS, database_failure, json_response, raw_json_response

blueprint = Blueprint("drift", __name__)

#: Longest an ingest request waits for its durable ack before answering 503 (the client gives up after 60 s).
INGEST_TIMEOUT = 30.0
#: The space checked when a message has no records (upstream's placeholder: only write:all or admin pass).
MISSING_SPACE = "__missing__"

_QUEUED = orjson.dumps({"status": "success", "message": "Drift records queued for processing"})
_NO_PROFILE = "Failed to query records: No Profile found"


def first_space(body: Any) -> str:
    """The space the guard checks write permission on before decoding: the first record's (§2.9); `MISSING_SPACE`
    when there is none. Every record's space is checked once the body is decoded (`batch_spaces`).

    A body too malformed to name one also gets `MISSING_SPACE`: only a writer of every space gets as far as the
    decoder's precise 400, everyone else a 403.
    """
    if type(body) is dict:
        records = body.get("records")
        if type(records) is list and records and type(records[0]) is dict and len(records[0]) == 1:
            (record,) = records[0].values()
            if type(record) is dict:
                space = record.get("space")
                if type(space) is str:
                    return space
    return MISSING_SPACE


_KINDS = (("spc", "spc_rows"), ("psi", "psi_rows"), ("custom", "custom_rows"), ("observability", "observability_rows"))


def batch_spaces(batch: DecodedBatch) -> set[str]:
    """Every distinct space the batch writes to (the guard checked only the first record's)."""
    # Drift rows are (created_at, name, space, ...); observability rows (space, name, ...).
    spaces = {row[2] for rows in (batch.spc_rows, batch.psi_rows, batch.custom_rows) for row in rows}
    spaces.update(row[0] for row in batch.observability_rows)
    return spaces


@blueprint.post("/scouter/drift")
@documented(
    tags=["drift"],
    summary="Store drift records; answers once they are committed.",
    security=BEARER,
    body=ServerRecords,
    responses={**BODY_ERRORS, 200: ScouterResponse},
)
@guarded(Requirement.write(), source=first_space)
async def ingest() -> Response:
    ctx = context()
    try:
        bounds = CreatedAtBounds.around(datetime.now(UTC), timedelta(seconds=ctx.settings.max_future_seconds))
        batch = decode_records_data(await json_body(), bounds)  # parsed once, by the guard
    except DecodeError as exc:
        return json_response({"error": f"Invalid drift records: {exc.reason}"}, 400)
    who = identity()
    # A writer of every space (the common producer) is not asked about each one.
    refused = None if can_write(who, "all") else first_unwritable(who, batch_spaces(batch))
    if refused is not None:  # one record the caller may not write refuses the whole body: nothing is stored
        denied = {"error": "Permission denied", "message": f"no write permission on space {refused!r}"}
        return json_response(denied, 403)
    received = ctx.metrics.records_received
    for kind, attribute in _KINDS:
        rows = getattr(batch, attribute)
        if rows:
            received.labels(kind, "http").inc(len(rows))
    if batch.total:
        if ctx.writer is None:
            return json_response({"error": "Failed to insert records: the writer is not running"}, 503)
        try:
            result = await write(ctx.writer, batch, timeout=INGEST_TIMEOUT)
        except trio.TooSlowError:
            return json_response({"error": "Failed to insert records: timed out waiting for the database"}, 503)
        if not result.ok:  # 503: the writer stopped holding these records, which are fine; send them again
            status = 503 if result.unavailable else 500
            return json_response({"error": f"Failed to insert records: {result.error}"}, status)
    started = getattr(g, "started", None)
    if started is not None:
        ctx.metrics.ingest_duration.labels("http").observe(time.perf_counter() - started)
    return raw_json_response(_QUEUED)


# --- binned queries ------------------------------------------------------------------------------------------------


@attrs.frozen
class _Source:
    """Where one kind's aggregates come from: its folder in the archive and its two PostgreSQL statements."""

    kind: str
    everything: str  # every row of the window: PostgreSQL alone holds the whole window
    unarchived: str  # rows not archived yet: the live part when the archive holds the rest


SPC = _Source("spc", SPC_BUCKETS, SPC_UNARCHIVED_BUCKETS)
CUSTOM = _Source("custom", CUSTOM_BUCKETS, CUSTOM_UNARCHIVED_BUCKETS)
PSI = _Source("psi", PSI_BUCKETS, PSI_UNARCHIVED_BUCKETS)


async def query_parts(source: _Source, query: DriftQuery, now: datetime, *extra: Any) -> list[Sequence[Any]]:
    """The window's per-bucket aggregates, as parts to merge: PostgreSQL alone, or, when the window begins before
    the archive boundary (now - DATA_RETENTION_PERIOD), the unarchived rows plus the archived ones (§2.10, §8.2)."""
    ctx = context()
    window = query.window
    args = (query.space, query.name, query.version, query.bucket, window.begin, window.end, *extra)
    if ctx.archive is not None and ctx.archive.reaches_archive(query, now):
        return await ctx.archive.parts(ctx.db, source.kind, query, source.unarchived, args)
    return [await ctx.db.fetch(source.everything, *args)]


def _query(now: datetime) -> DriftQuery | Response:
    try:
        return parse_drift_query(request.args, now)
    except QueryError as exc:
        return json_response({"error": f"Invalid drift request: {exc.reason}"}, 400)


def _failed(exc: BaseException) -> Response:
    if isinstance(exc, ArchiveLimitExceeded):
        return json_response({"error": f"Invalid drift request: {exc}"}, 400)
    if isinstance(exc, ArchiveReadError):
        return json_response({"error": f"Failed to query records: {exc}"}, 500)
    status, detail = database_failure(exc)
    return json_response({"error": f"Failed to query records: {detail}"}, status)


async def _binned(
    source: _Source,
    merge: Callable[[list[Sequence[Any]]], Any],
    shape: Callable[[Any], dict[str, Any]],
) -> Response:
    now = datetime.now(UTC)
    query = _query(now)
    if isinstance(query, Response):
        return query
    try:
        parts = await query_parts(source, query, now)
    except (*DB_ERRORS, ArchiveReadError) as exc:
        return _failed(exc)
    return json_response(shape(merge(parts)))


@blueprint.get("/scouter/drift/spc")
@documented(
    tags=["drift"],
    summary="SPC drift: the mean of each feature per bucket.",
    security=BEARER,
    query=DriftRequest,
    responses={**QUERY_ERRORS, 200: SpcDriftFeatures},
)
@guarded(Requirement.read())
async def spc_drift() -> Response:
    return await _binned(SPC, merge_spc, spc_response)


@blueprint.get("/scouter/drift/custom")
@documented(
    tags=["drift"],
    summary="Custom metrics: mean and spread of each metric per bucket.",
    security=BEARER,
    query=DriftRequest,
    responses={**QUERY_ERRORS, 200: BinnedCustomMetrics},
)
@guarded(Requirement.read())
async def custom_drift() -> Response:
    return await _binned(CUSTOM, merge_custom, custom_response)


@blueprint.get("/scouter/drift/psi")
@documented(
    tags=["drift"],
    summary="PSI drift of each feature per bucket, against the registered PSI profile (404 without one).",
    security=BEARER,
    query=DriftRequest,
    responses={**QUERY_ERRORS, 200: BinnedPsiFeatureMetrics, 404: ErrorBody},
)
@guarded(Requirement.read())
async def psi_drift() -> Response:
    now = datetime.now(UTC)
    query = _query(now)
    if isinstance(query, Response):
        return query
    db = context().db
    try:
        text = await db.fetchval(PSI_PROFILE, query.space, query.name, query.version, "Psi")
        if text is None:
            # Upstream answered 500; a missing profile is the caller's mistake, not a server fault, so 404 with
            # upstream's message (the 0.6.4 client reports "Failed to get drift data" for either).
            return json_response({"error": _NO_PROFILE}, 404)
        profile = cast(PsiDriftProfile, profile_from_data("Psi", orjson.loads(text)))
        expected = {feature: {b.id: b.proportion for b in limits.bins} for feature, limits in profile.features.items()}
        parts = await query_parts(PSI, query, now, list(expected))
    except (*DB_ERRORS, ArchiveReadError) as exc:
        return _failed(exc)
    # raw counts of both parts are added per bucket and bin before any proportion is computed
    return json_response(psi_response(merge_psi(parts), expected))
