"""POST /scouter/drift on a real PostgreSQL: durable ack, strict decoding, permissions, limits and metrics."""

from __future__ import annotations

import secrets
import socket
import time
from datetime import UTC, datetime
from typing import Any

import hypercorn.config
import hypercorn.trio
import orjson
import pytest
import trio

from actors.database import Database
from actors.http import _drift_routes, create_app, drift_blueprint
from actors.writer import WriteResult

from ..auth_support import bearer, make_api, served
from .support import ClientApi, captured

pytestmark = pytest.mark.postgres

QUEUED = {"status": "success", "message": "Drift records queued for processing"}


def _spc(**fields: Any) -> dict[str, Any]:
    record = {
        "created_at": "2026-11-22T17:05:50.702063181Z",
        "feature": "feature_0",
        "name": "nm",
        "space": "sp",
        "value": 1.25,
        "version": "1.0.0",
    }
    record.update(fields)
    return {"Spc": record}


async def _count(db: Database, table: str) -> int:
    return int(await db.fetchval(f"SELECT count(*) FROM scouter.{table}"))


async def test_captured_bodies_are_stored_before_the_answer(client_api: ClientApi) -> None:
    """Every captured client body: upstream's 200 body, and its rows are committed by the time it arrives."""
    expected = {"spc_drift": 0, "psi_drift": 0, "custom_drift": 0}
    table = {"Spc": "spc_drift", "Psi": "psi_drift", "Custom": "custom_drift"}
    for line in captured("POST", "/scouter/drift", status=None):
        body = line["body_json"]
        response = await client_api.post("/scouter/drift", body)
        assert (200, QUEUED) == (response.status_code, await response.get_json())
        for record in body["records"]:
            (kind,) = record
            expected[table[kind]] += 1
        assert expected == {name: await _count(client_api.db, name) for name in expected}


async def test_nanosecond_timestamps_are_truncated_to_microseconds(client_api: ClientApi) -> None:
    """The client's 9-digit fractions are stored truncated (not rounded) to microseconds, in UTC."""
    body = {
        "records": [_spc(created_at="2026-11-22T17:05:50.702063999Z"), _spc(created_at="2026-11-22T18:05:50+01:00")]
    }
    assert 200 == (await client_api.post("/scouter/drift", body)).status_code
    stored = [r["created_at"] for r in await client_api.db.fetch("SELECT created_at FROM scouter.spc_drift ORDER BY 1")]
    assert [
        datetime(2026, 11, 22, 17, 5, 50, tzinfo=UTC),
        datetime(2026, 11, 22, 17, 5, 50, 702063, tzinfo=UTC),
    ] == stored


async def test_every_record_kind_reaches_its_table(client_api: ClientApi) -> None:
    """Spc, Psi, Custom and Observability records of one message land in their four tables with their values."""
    observability = {
        "space": "sp",
        "name": "nm",
        "version": "1.0.0",
        "request_count": 3,
        "error_count": 1,
        "route_metrics": [
            {
                "route_name": "/home",
                "metrics": {"p5": 1.0, "p25": 2.0, "p50": 3.0, "p95": 9.0, "p99": 10.0},
                "request_count": 3,
                "error_count": 1,
                "error_latency": 5.0,
                "status_codes": {"200": 2, "500": 1},
            }
        ],
    }
    created_at = "2026-11-22T17:05:53.701621671Z"
    common = {"created_at": created_at, "name": "nm", "space": "sp", "version": "1.0.0"}
    body = {
        "records": [
            _spc(),
            {"Psi": {**common, "feature": "feature_1", "bin_id": 7, "bin_count": 12}},
            {"Custom": {**common, "metric": "mae", "value": 11.5}},
            {"Observability": observability},
        ]
    }
    assert 200 == (await client_api.post("/scouter/drift", body)).status_code
    db = client_api.db
    assert ("feature_0", 1.25) == tuple(await db.fetchrow("SELECT feature, value FROM scouter.spc_drift"))
    assert ("feature_1", 7, 12) == tuple(await db.fetchrow("SELECT feature, bin_id, bin_count FROM scouter.psi_drift"))
    assert ("mae", 11.5) == tuple(await db.fetchrow("SELECT metric, value FROM scouter.custom_drift"))
    row = await db.fetchrow("SELECT request_count, error_count, route_metrics::text FROM scouter.observability_metric")
    assert (3, 1, observability["route_metrics"]) == (row[0], row[1], orjson.loads(row[2]))


@pytest.mark.parametrize(
    ("records", "message"),
    [
        ([_spc(), {"Kl": {}}], 'records[1]: unknown record kind "Kl"'),
        ([_spc(), _spc(value="1.0")], 'records[1].Spc.value: expected a number, got "1.0"'),
        ([_spc(value=True)], "records[0].Spc.value: expected a number, got true"),
        ([_spc(created_at=1763831150)], "records[0].Spc.created_at: expected an RFC 3339 timestamp string"),
        ([_spc(created_at="2026-11-22T17:05:50.702063181")], "records[0].Spc.created_at: timestamp has no timezone"),
        ([_spc(), _spc(version="")], "records[1].Spc.version: must not be empty"),
        ([_spc(space="a\x00b")], "records[0].Spc.space: must not contain NUL"),
        ([_spc(feature=None)], "records[0].Spc.feature: expected a string, got null"),
        (
            [{"Psi": {**_spc()["Spc"], "bin_id": -1, "bin_count": 1}}],
            "records[0].Psi.bin_id: must be a non-negative integer, got -1",
        ),
        ([{"Custom": {**_spc()["Spc"], "metric": "mae"}, "Spc": {}}], "records[0]: expected exactly one record kind"),
    ],
)
async def test_malformed_records_are_400_and_nothing_is_stored(
    client_api: ClientApi, records: list[Any], message: str
) -> None:
    """Unknown kinds, wrong types, naive or numeric timestamps, bad path segments: 400 naming the problem."""
    response = await client_api.post("/scouter/drift", {"records": records})
    assert 400 == response.status_code
    error = (await response.get_json())["error"]
    assert error.startswith(f"Invalid drift records: {message}"), error
    assert 0 == await _count(client_api.db, "spc_drift")


async def test_large_bodies_are_decoded_off_the_event_loop_with_the_same_answers(client_api: ClientApi) -> None:
    """A body of DECODE_IN_THREAD records or more is decoded in a worker thread: every record is stored, and one bad
    record among them is still a 400 naming it, with nothing stored."""
    size = _drift_routes.DECODE_IN_THREAD
    good = [_spc(feature=f"feature_{n}", value=float(n)) for n in range(size)]
    bad = [*good[:-1], _spc(created_at="yesterday")]
    response = await client_api.post("/scouter/drift", {"records": bad})
    assert 400 == response.status_code
    assert (await response.get_json())["error"].startswith(f"Invalid drift records: records[{size - 1}].Spc.created_at")
    assert 0 == await _count(client_api.db, "spc_drift")
    response = await client_api.post("/scouter/drift", {"records": good})
    assert (200, QUEUED) == (response.status_code, await response.get_json())
    assert size == await _count(client_api.db, "spc_drift")


@pytest.mark.parametrize(
    ("data", "status", "fragment"),
    [
        (b'{"records": [', 400, "request body is not valid JSON"),
        (b"[1, 2]", 422, "request body must be a JSON object"),
        (b'{"record": []}', 400, "Invalid drift records: records: missing field"),
        (b'{"records": {"Spc": {}}}', 400, "Invalid drift records: records: expected a list"),
    ],
)
async def test_bodies_that_are_not_server_records(
    client_api: ClientApi, data: bytes, status: int, fragment: str
) -> None:
    """Broken JSON, a non-object, or no records list: a 4xx JSON body naming the problem."""
    response = await client_api.post_raw("/scouter/drift", data)
    assert status == response.status_code
    assert fragment in (await response.get_json())["error"]


async def test_write_permission_is_on_the_first_records_space(client_api: ClientApi) -> None:
    """write:sp may send sp records, not other spaces; an empty message needs write:all (upstream's __missing__)."""
    await client_api.api.create_user("spwriter", permissions=["read:sp", "write:sp"])
    token = await client_api.api.login("spwriter", "spwriter")
    assert 200 == (await client_api.post("/scouter/drift", {"records": [_spc()]}, token=token)).status_code
    denied = await client_api.post("/scouter/drift", {"records": [_spc(space="other")]}, token=token)
    assert (403, {"error": "Permission denied"}) == (denied.status_code, await denied.get_json())
    assert 403 == (await client_api.post("/scouter/drift", {"records": []}, token=token)).status_code
    empty = await client_api.post("/scouter/drift", {"records": []})
    assert (200, QUEUED) == (empty.status_code, await empty.get_json())
    assert 1 == await _count(client_api.db, "spc_drift")
    assert 401 == (await client_api.api.client.post("/scouter/drift", json={"records": [_spc()]})).status_code


def _in(space: str, kind: str = "Spc") -> dict[str, Any]:
    """A record of `kind` in `space`, created now (inside any bound on created_at)."""
    common = {"created_at": datetime.now(UTC).isoformat(), "name": "nm", "space": space, "version": "1.0.0"}
    fields = {
        "Spc": {"feature": "f", "value": 1.0},
        "Psi": {"feature": "f", "bin_id": 1, "bin_count": 2},
        "Custom": {"metric": "mae", "value": 1.0},
        "Observability": {"request_count": 1, "error_count": 0, "route_metrics": []},
    }[kind]
    if kind == "Observability":
        del common["created_at"]
    return {kind: {**common, **fields}}


async def test_every_records_space_needs_write_permission(client_api: ClientApi) -> None:
    """Over real HTTP, a writer of spacea posting spacea records plus one record of spaceb, of any kind and at any
    position, gets 403 naming spaceb, and nothing of the body is stored; spacea alone is accepted."""
    await client_api.api.create_user("awriter", permissions=["read:spacea", "write:spacea"])
    token = await client_api.api.login("awriter", "awriter")
    bodies = [
        [_in("spacea"), _in("spaceb")],
        [_in("spacea"), _in("spacea"), _in("spaceb", "Psi")],
        [_in("spacea", "Custom"), _in("spaceb", "Custom")],
        [_in("spacea"), _in("spaceb", "Observability")],
    ]
    async with served(client_api.api) as http:
        for records in bodies:
            denied = await http.post("/scouter/drift", json={"records": records}, headers=bearer(token))
            assert 403 == denied.status_code, denied.text
            assert "Permission denied" == denied.json()["error"]
            assert "spaceb" in denied.json()["message"]
        accepted = await http.post("/scouter/drift", json={"records": [_in("spacea"), _in("spacea")]},
                                   headers=bearer(token))  # fmt: skip
        assert 200 == accepted.status_code, accepted.text
    tables = ("spc_drift", "psi_drift", "custom_drift", "observability_metric")
    assert [2, 0, 0, 0] == [await _count(client_api.db, table) for table in tables]


async def test_metrics_count_records_by_kind_and_transport(client_api: ClientApi) -> None:
    """records_received{kind,transport="http"} counts records; ingest latency is observed per acked request."""
    body = {"records": [_spc(), _spc(feature="feature_1"), {"Custom": {**_spc()["Spc"], "metric": "mae"}}]}
    assert 200 == (await client_api.post("/scouter/drift", body)).status_code
    registry = client_api.api.ctx.metrics.registry
    spc = registry.get_sample_value("scouter_records_received_total", {"kind": "spc", "transport": "http"})
    custom = registry.get_sample_value("scouter_records_received_total", {"kind": "custom", "transport": "http"})
    acks = registry.get_sample_value("scouter_ingest_request_duration_seconds_count", {"transport": "http"})
    assert (2.0, 1.0, 1.0) == (spc, custom, acks)


async def test_writer_failure_and_timeout_are_5xx(client_api: ClientApi, monkeypatch: pytest.MonkeyPatch) -> None:
    """A writer error answers 500 naming it; no answer in time, 503; no writer, 503."""
    send, receive = trio.open_memory_channel[Any](10)
    client_api.api.ctx.writer = send

    async def failing_writer() -> None:
        request = await receive.receive()
        request.reply.send_nowait(WriteResult(False, error="UniqueViolationError: boom"))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(failing_writer)
        failed = await client_api.post("/scouter/drift", {"records": [_spc()]})
    assert (500, {"error": "Failed to insert records: UniqueViolationError: boom"}) == (
        failed.status_code,
        await failed.get_json(),
    )
    monkeypatch.setattr(_drift_routes, "INGEST_TIMEOUT", 0.2)
    slow = await client_api.post("/scouter/drift", {"records": [_spc()]})
    assert 503 == slow.status_code
    assert "timed out" in (await slow.get_json())["error"]
    client_api.api.ctx.writer = None
    assert 503 == (await client_api.post("/scouter/drift", {"records": [_spc()]})).status_code


async def test_oversized_body_is_413(db: Database) -> None:
    """A body over SCOUTER_MAX_BODY_BYTES answers 413 with a JSON body."""
    api = await make_api(db, [drift_blueprint], SCOUTER_MAX_BODY_BYTES="2048")
    token = await api.login("admin", "admin")
    body = orjson.dumps({"records": [_spc(feature="f" * 3000)]})
    headers = {**bearer(token), "Content-Type": "application/json"}
    response = await api.client.post("/scouter/drift", data=body, headers=headers)
    assert 413 == response.status_code
    assert "error" in await response.get_json()


async def _serve(db: Database, nursery: trio.Nursery, limit: int) -> tuple[int, str]:
    """The drift route on a real hypercorn socket; returns its port and an admin token."""
    api = await make_api(db, [drift_blueprint], SCOUTER_MAX_BODY_BYTES=str(limit))
    token = await api.login("admin", "admin")
    app = create_app(api.ctx, [drift_blueprint])
    config = hypercorn.config.Config()
    config.bind = ["127.0.0.1:0"]
    config.accesslog = None
    urls = await nursery.start(hypercorn.trio.serve, app, config)
    return int(urls[0].rsplit(":", 1)[1]), token


def _send_until_answered(port: int, head: bytes, chunk: bytes, total: int) -> tuple[int, bytes]:
    """Send `head`, then `chunk` until `total` bytes or an answer arrives; returns (bytes sent, answer)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 65536)
        sock.sendall(head)
        sent = 0
        sock.setblocking(False)
        answer = b""
        pending = memoryview(b"")  # what a partial send left of the current chunk: chunked framing must stay whole
        while sent < total:
            try:
                answer += sock.recv(65536)
                if answer:
                    break
            except BlockingIOError:
                pass
            if not pending:
                pending = memoryview(chunk)
            try:
                written = sock.send(pending)
                sent += written
                pending = pending[written:]
            except BlockingIOError:
                time.sleep(0.01)  # a plain thread: the send buffer is full
            except (BrokenPipeError, ConnectionResetError):
                break
        sock.setblocking(True)
        try:
            while b"\r\n\r\n" not in answer:
                more = sock.recv(65536)
                if not more:
                    break
                answer += more
        except (ConnectionResetError, TimeoutError):
            pass
        return sent, answer


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_413_arrives_before_a_huge_body_is_read(db: Database, nursery: trio.Nursery, chunked: bool) -> None:
    """Over a real socket, a 50 MB body (declared or chunked) gets 413 long before the server has read it."""
    limit = 64 * 1024
    port, token = await _serve(db, nursery, limit)
    total = 50 * 1024 * 1024
    if chunked:
        piece = b"x" * 16384
        chunk = f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
        framing = b"Transfer-Encoding: chunked\r\n"
    else:
        chunk = b"x" * 16384
        framing = f"Content-Length: {total}\r\n".encode()
    head = (
        b"POST /scouter/drift HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        + f"Authorization: Bearer {token}\r\n".encode()
        + framing
        + b"\r\n"
    )
    sent, answer = await trio.to_thread.run_sync(_send_until_answered, port, head, chunk, total)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert sent < total // 4  # the server answered (and stopped reading) long before the end of the body


@pytest.mark.parametrize(
    ("body", "space"),
    [
        ({"records": [_spc(space="a"), _spc(space="b")]}, "a"),
        ({"records": []}, "__missing__"),
        ({"records": [{"Spc": {"space": 3}}]}, "__missing__"),
        ({"records": [{"Spc": {}, "Psi": {}}]}, "__missing__"),
        ({"records": ["Spc"]}, "__missing__"),
        ({"records": {"Spc": {"space": "a"}}}, "__missing__"),
        ([{"Spc": {"space": "a"}}], "__missing__"),
    ],
)
def test_first_space_is_what_write_permission_is_checked_on(body: Any, space: str) -> None:
    """The first record's space; anything that names none is upstream's "__missing__"."""
    assert space == _drift_routes.first_space(body)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("space", "s" * 513),
        ("name", "é" * 257),  # 514 bytes in UTF-8, 257 characters
        ("version", "v" * 4000),
        ("feature", secrets.token_hex(1500)),  # incompressible: more than a PostgreSQL index row holds
    ],
)
async def test_names_longer_than_512_bytes_are_400_and_nothing_is_stored(
    client_api: ClientApi, field: str, value: str
) -> None:
    """A name or feature PostgreSQL could not index (its B-tree rows hold ~2.7 KB) used to fail the COPY: a 500 for
    the whole group commit, other senders' records in it included. Every text a record is filed under is bounded
    at 512 UTF-8 bytes at decode time: 400 naming it, nothing stored."""
    response = await client_api.post("/scouter/drift", {"records": [_spc(), _spc(**{field: value})]})
    assert 400 == response.status_code, await response.get_data(as_text=True)
    error = (await response.get_json())["error"]
    assert error.startswith(f"Invalid drift records: records[1].Spc.{field}: must be at most 512 bytes"), error
    assert 0 == await _count(client_api.db, "spc_drift")


async def test_names_of_512_bytes_are_stored(client_api: ClientApi) -> None:
    longest = {"space": "s" * 512, "name": "é" * 256, "version": "v" * 512, "feature": "f" * 512}
    response = await client_api.post("/scouter/drift", {"records": [_spc(**longest)]})
    assert 200 == response.status_code, await response.get_data(as_text=True)
    row = await client_api.db.fetchrow("SELECT space, name, version, feature FROM scouter.spc_drift")
    assert tuple(longest.values()) == tuple(row)
