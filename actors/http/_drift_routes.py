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

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import msgspec
import orjson
import trio
from quart import Blueprint, Response, g, request

from scouter.auth import Requirement, can_write, check, first_unwritable
from scouter.binned import (
    custom_response,
    merge_custom,
    merge_psi,
    merge_spc,
    psi_response,
    spc_response,
)
from scouter.entities import UnknownUid, resolve_uids, uids_of
from scouter.profiles import PsiDriftProfile, profile_from_data
from scouter.queries import DriftQuery, QueryError, entity_drift_query, parse_drift_query
from scouter.records import CreatedAtBounds, DecodedBatch, DecodeError, decode_records_data
from scouter.sql import (
    PSI_PROFILE,
)
from scouter.wire.common import encode
from scouter.wire.v025 import DriftQueryParams, ShapeError, decode
from scouter.wire.v064 import BinnedCustomMetrics, BinnedPsiFeatureMetrics, ErrorBody, ScouterResponse, SpcDriftFeatures
from scouter.wire.v064_records import ServerRecords

from ..archive_reader import ArchiveLimitExceeded, ArchiveReadError
from ..rollup_reads import CUSTOM, PSI, SPC, BinnedSource, binned_parts
from ..writer import write
from ._context import context
from ._guard import guarded, identity, json_object
from ._openapi import BEARER, BODY_ERRORS, QUERY_ERRORS, documented
from ._responses import DB_ERRORS, database_failure, error_response, json_response, raw_json_response, struct_response

blueprint = Blueprint("drift", __name__)
log = logging.getLogger("actors.http.drift")

#: Longest an ingest request waits for its durable ack before answering 503 (the client gives up after 60 s).
INGEST_TIMEOUT = 30.0
DECODE_IN_THREAD = 1000  # records in a body from which it is decoded in a worker thread
#: The space checked when a message has no records (upstream's placeholder: only write:all or admin pass).
MISSING_SPACE = "__missing__"

_QUEUED = encode(ScouterResponse(status="success", message="Drift records queued for processing"))
_MESSAGE_QUEUED = encode(ScouterResponse(status="success", message="Message queued for processing"))
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
    """Every distinct space the batch writes to (rows are (created_at, name, space, ...); observability rows start
    with it)."""
    spaces = {row[2] for rows in (batch.spc_rows, batch.psi_rows, batch.custom_rows) for row in rows}
    spaces.update(row[0] for row in batch.observability_rows)
    return spaces


def _denied(spaces: Iterable[str]) -> Response | None:
    """403 naming the first of `spaces` the caller may not write; None when it may write them all. One record the
    caller may not write refuses the whole body: nothing is stored."""
    who = identity()
    # A writer of every space (the common producer) is not asked about each one.
    refused = None if can_write(who, "all") else first_unwritable(who, spaces)
    if refused is None:
        return None
    return json_response({"error": "Permission denied", "message": f"no write permission on space {refused!r}"}, 403)


def count_dropped(batch: DecodedBatch, transport: str, metrics: Any) -> None:
    """Out-of-scope payloads (traces, tags, GenAI records: server-v025.md §14) are dropped, logged and counted."""
    for kind, count in batch.dropped:
        metrics.records_dropped.labels(kind, transport).inc(count)
        log.info("dropped %d %s payload(s) received over %s: not served by this server", count, kind, transport)


async def _ingest(answer: bytes) -> Response:
    """Both ingest routes: records of either client, each filed under its own entity; 200 once committed."""
    ctx = context()
    body = await json_object()  # parsed once; a non-object is a 422, as before
    space = first_space(body)
    if space is not MISSING_SPACE:  # a 0.6.4 first record: refuse a non-writer before decoding, as always
        denied = check(Requirement.write(), identity(), space=space)
        if denied is not None:
            return error_response(denied.error, denied.status)  # upstream's body, as the guard answers it
    try:
        bounds = CreatedAtBounds.around(datetime.now(UTC), timedelta(seconds=ctx.settings.max_future_seconds))
        records = body.get("records")
        if isinstance(records, list) and len(records) >= DECODE_IN_THREAD:
            # A large body decoded on the event loop would hold up everything else on it, the writer's COPY of
            # other requests included; in a thread the loop keeps its turns (the GIL is handed over every few ms).
            batch = await trio.to_thread.run_sync(decode_records_data, body, bounds)
        else:
            batch = decode_records_data(body, bounds)
    except DecodeError as exc:
        return error_response(f"Invalid drift records: {exc.reason}", 400)
    count_dropped(batch, "http", ctx.metrics)
    if batch.uid_rows:
        try:
            entities = await ctx.entities.lookup(ctx.db, uids_of(batch.uid_rows))
        except DB_ERRORS as exc:
            code, detail = database_failure(exc)
            return error_response(f"Failed to insert records: {detail}", code)
        try:
            batch = resolve_uids(batch, entities)
        except UnknownUid as exc:
            return error_response(f"Invalid drift records: {exc.reason}", 404)
    # Write permission on every entity the records are filed under (upstream checked only the first record's
    # space at 0.6.4 and nothing at 0.25); a body with nothing to store needs write on every space, as before.
    denied = _denied(batch_spaces(batch) or ({MISSING_SPACE} if not batch.dropped else set()))
    if denied is not None:
        return denied
    received = ctx.metrics.records_received
    for kind, attribute in _KINDS:
        rows = getattr(batch, attribute)
        if rows:
            received.labels(kind, "http").inc(len(rows))
    if batch.total:
        if ctx.writer is None:
            return error_response("Failed to insert records: the writer is not running", 503)
        try:
            result = await write(ctx.writer, batch, timeout=INGEST_TIMEOUT)
        except trio.TooSlowError:
            return error_response("Failed to insert records: timed out waiting for the database", 503)
        if not result.ok:  # 503: the writer stopped holding these records, which are fine; send them again
            status = 503 if result.unavailable else 500
            return error_response(f"Failed to insert records: {result.error}", status)
    started = getattr(g, "started", None)
    if started is not None:
        ctx.metrics.ingest_duration.labels("http").observe(time.perf_counter() - started)
    return raw_json_response(answer)


@blueprint.post("/scouter/drift")
@documented(
    tags=["drift"],
    summary=(
        "Store drift records of either client (0.6.4 records name space/name/version, 0.25 records a uid); "
        "answers once they are committed. Write permission on every record's space."
    ),
    security=BEARER,
    body=ServerRecords,
    responses={**BODY_ERRORS, 200: ScouterResponse, 404: ErrorBody},
)
@guarded(Requirement.authenticated())
async def ingest() -> Response:
    return await _ingest(_QUEUED)


@blueprint.post("/scouter/message")
@documented(
    tags=["drift"],
    summary=(
        "scouter-ml 0.25's ingest route: the same records as POST /scouter/drift; trace and tag payloads are "
        "dropped (not served here). Answers once the records are committed."
    ),
    security=BEARER,
    body=ServerRecords,
    responses={**BODY_ERRORS, 200: ScouterResponse, 404: ErrorBody},
)
@guarded(Requirement.authenticated())
async def ingest_message() -> Response:
    return await _ingest(_MESSAGE_QUEUED)


# --- binned queries ------------------------------------------------------------------------------------------------


async def query_parts(source: BinnedSource, query: DriftQuery, now: datetime, *extra: Any) -> list[Sequence[Any]]:
    """The window's per-bucket aggregates, as parts to merge: whole minutes from the rollups, the rest from the rows
    (PostgreSQL, plus the archive when the window begins before now - DATA_RETENTION_PERIOD; §2.10, §8.2)."""
    ctx = context()
    return await binned_parts(ctx.db, ctx.archive, source, query, now, *extra)


def _invalid(reason: str) -> Response:
    return error_response(f"Invalid drift request: {reason}", 400)


async def _query(now: datetime, drift_type: str) -> DriftQuery | Response:
    """The request of either client as one query: by `uid` (0.25, the entity's space must be the `space` asked
    about, which the guard checked) or by space/name/version (0.6.4)."""
    if "uid" not in request.args:
        try:
            return parse_drift_query(request.args, now)
        except QueryError as exc:
            return _invalid(exc.reason)
    args = {key: request.args[key] for key in request.args}
    for key in ("start_custom_datetime", "begin_custom_datetime", "end_custom_datetime"):
        text = args.get(key)
        if text is not None and len(text) >= 6 and text[-6] == " ":  # an unencoded '+' offset, form-decoded
            args[key] = f"{text[:-6]}+{text[-5:]}"
    try:
        params = decode(args, DriftQueryParams, from_text=True)
    except ShapeError as exc:
        return _invalid(exc.reason)
    ctx = context()
    try:
        entity = await ctx.entities.one(ctx.db, params.uid or "")
    except DB_ERRORS as exc:
        return _failed(exc)
    if entity is None or entity.drift_type != drift_type:
        return error_response(f"Failed to get entity from uid: no {drift_type} profile has this uid", 404)
    if entity.space != params.space:  # a uid of another space is refused like that space would be
        return error_response("Permission denied", 403)
    begin = params.start_custom_datetime or params.begin_custom_datetime
    try:
        return entity_drift_query(
            (entity.space, entity.name, entity.version, entity.drift_type),
            params.time_interval,
            params.max_data_points,
            begin,
            params.end_custom_datetime,
            now,
        )
    except QueryError as exc:
        return _invalid(exc.reason)


def _failed(exc: BaseException) -> Response:
    if isinstance(exc, ArchiveLimitExceeded):
        return error_response(f"Invalid drift request: {exc}", 400)
    if isinstance(exc, ArchiveReadError):
        return error_response(f"Failed to query records: {exc}", 500)
    status, detail = database_failure(exc)
    return error_response(f"Failed to query records: {detail}", status)


async def _binned(
    source: BinnedSource,
    drift_type: str,
    merge: Callable[[list[Sequence[Any]]], Any],
    shape: Callable[[Any], msgspec.Struct],
) -> Response:
    now = datetime.now(UTC)
    query = await _query(now, drift_type)
    if isinstance(query, Response):
        return query
    try:
        parts = await query_parts(source, query, now)
    except (*DB_ERRORS, ArchiveReadError) as exc:
        return _failed(exc)
    return struct_response(shape(merge(parts)))


@blueprint.get("/scouter/drift/spc")
@documented(
    tags=["drift"],
    summary="SPC drift: the mean of each feature per bucket.",
    security=BEARER,
    query=DriftQueryParams,
    responses={**QUERY_ERRORS, 200: SpcDriftFeatures, 404: ErrorBody},
)
@guarded(Requirement.read())
async def spc_drift() -> Response:
    return await _binned(SPC, "Spc", merge_spc, spc_response)


@blueprint.get("/scouter/drift/custom")
@documented(
    tags=["drift"],
    summary="Custom metrics: mean and spread of each metric per bucket.",
    security=BEARER,
    query=DriftQueryParams,
    responses={**QUERY_ERRORS, 200: BinnedCustomMetrics, 404: ErrorBody},
)
@guarded(Requirement.read())
async def custom_drift() -> Response:
    return await _binned(CUSTOM, "Custom", merge_custom, custom_response)


@blueprint.get("/scouter/drift/psi")
@documented(
    tags=["drift"],
    summary="PSI drift of each feature per bucket, against the registered PSI profile (404 without one).",
    security=BEARER,
    query=DriftQueryParams,
    responses={**QUERY_ERRORS, 200: BinnedPsiFeatureMetrics, 404: ErrorBody},
)
@guarded(Requirement.read())
async def psi_drift() -> Response:
    now = datetime.now(UTC)
    query = await _query(now, "Psi")
    if isinstance(query, Response):
        return query
    db = context().db
    try:
        text = await db.fetchval(PSI_PROFILE, query.space, query.name, query.version, "Psi")
        if text is None:
            # Upstream answered 500; a missing profile is the caller's mistake, not a server fault, so 404 with
            # upstream's message (the 0.6.4 client reports "Failed to get drift data" for either).
            return error_response(_NO_PROFILE, 404)
        profile = cast(PsiDriftProfile, profile_from_data("Psi", orjson.loads(text)))
        expected = {feature: {b.id: b.proportion for b in limits.bins} for feature, limits in profile.features.items()}
        parts = await query_parts(PSI, query, now, list(expected))
    except (*DB_ERRORS, ArchiveReadError) as exc:
        return _failed(exc)
    # raw counts of both parts are added per bucket and bin before any proportion is computed
    return struct_response(psi_response(merge_psi(parts), expected))
