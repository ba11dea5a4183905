"""HTTP ingest of the real server against its own ceilings, every figure measured in the same run.

    python -m tests.bench.bench_http_ingest [--duration 10] [--concurrency 50]

Set-up: a fresh database on the test PostgreSQL, the real server (`python -m supervisors.main serve`) as a
subprocess on it, an admin token. The load generator is a lean HTTP/1.1 keep-alive client on raw trio sockets (one
connection per sender) so that it costs the server's CPU as little as possible on a small machine.

1. Client-shaped load, closed loop, `concurrency` senders: ``POST /scouter/drift`` bodies of 3 (SPC), 30 (PSI) and 1
   (custom) records in turn, as the client's queues send them; a 200 means the rows are committed. Against the same
   load on ``GET /scouter/healthcheck`` (the framework's ceiling). Target ratio >= 0.5.
2. Ack latency at about half the measured maximum rate, open loop (requests scheduled at a fixed rate; latency counts
   from the scheduled instant, so a slow server cannot hide its queueing). Target p99 <= 250 ms.
3. Bulk: bodies of 1,000 SPC records, closed loop; records/s end to end against raw asyncpg COPY of the same rows
   (1,000-row COPY + COMMIT each, the better of 1 and 4 connections) into the same table. Target ratio >= 0.35.

Every phase sends its own space (warm-up traffic another one), and a phase's end stops new requests and waits for
those in flight: the records acknowledged (2xx) for requests sent while measuring are then counted in the database,
space by space, and must all be there. req/s and records/s count 2xx answers only. The figures are durable when the
server printed first is (see tests/bench/common.py); targets missed make the run exit 1.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import math
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import asyncpg
import attrs
import httpx
import orjson
import trio

from scouter.records import SPC_COLUMNS, decode_server_records
from tests.bench.common import SMOKE, Verdicts, bench_postgres, check, sizes
from tests.services import scratch_database

ROOT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"
NAME, VERSION = "model", "1.0.0"
WARM = "bench_warm"  # the space of warm-up traffic, never counted


# --- the server ------------------------------------------------------------------------------------------------------


def _free_port_pair() -> int:
    while True:
        with socket.socket() as first:
            first.bind((HOST, 0))
            port = first.getsockname()[1]
        if port >= 65000:
            continue
        with socket.socket() as second:
            try:
                second.bind((HOST, port + 1))
            except OSError:
                continue
        return port


class Server:
    """`scouter serve` on its own database; stderr kept for the report when something goes wrong."""

    def __init__(self, dsn: str) -> None:
        self.port = _free_port_pair()
        self.url = f"http://{HOST}:{self.port}"
        keep = ("SCOUTER_", "KAFKA_", "RABBITMQ_", "REDIS_", "DATABASE_URI", "POLLING")
        env = {k: v for k, v in os.environ.items() if not k.startswith(keep)}
        env.update(
            DATABASE_URI=dsn,
            SCOUTER_SERVER_HOST=HOST,
            SCOUTER_SERVER_PORT=str(self.port),
            LOG_LEVEL="warn",
            SCOUTER_DATA_DIR=str(Path("/tmp") / f"scouter-bench-{self.port}"),
            SCOUTER_STORAGE_URI=str(Path("/tmp") / f"scouter-bench-storage-{self.port}"),
        )
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "supervisors.main", "serve"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line)

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("server exited:\n" + "".join(self.lines[-40:]))
            try:
                if httpx.get(f"{self.url}/scouter/readyz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError("server not ready:\n" + "".join(self.lines[-40:]))

    def login(self) -> str:
        response = httpx.get(f"{self.url}/scouter/auth/login", headers={"Username": "admin", "Password": "admin"})
        response.raise_for_status()
        token: str = response.json()["token"]
        return token

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# --- bodies ----------------------------------------------------------------------------------------------------------


def _stamp(moment: datetime.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + "123Z"  # nanoseconds, as the client writes them


def spc_body(space: str, features: int, now: datetime.datetime, offset: int = 0) -> bytes:
    records = [
        {
            "Spc": {
                "created_at": _stamp(now + datetime.timedelta(microseconds=offset + i)),
                "feature": f"feature_{i % 10}",
                "name": NAME,
                "space": space,
                "value": 0.1 * i - 0.05,
                "version": VERSION,
            }
        }
        for i in range(features)
    ]
    return orjson.dumps({"records": records})


def psi_body(space: str, now: datetime.datetime) -> bytes:
    records = [
        {
            "Psi": {
                "bin_count": (7 * f + 3 * b) % 40,
                "bin_id": b,
                "created_at": _stamp(now + datetime.timedelta(microseconds=10 * f + b)),
                "feature": f"feature_{f}",
                "name": NAME,
                "space": space,
                "version": VERSION,
            }
        }
        for f in range(3)
        for b in range(1, 11)
    ]
    return orjson.dumps({"records": records})


def custom_body(space: str, now: datetime.datetime) -> bytes:
    record = {"created_at": _stamp(now), "metric": "mae", "name": NAME, "space": space, "value": 4.5}
    record["version"] = VERSION
    return orjson.dumps({"records": [{"Custom": record}]})


def post_request(body: bytes, token: str, port: int) -> bytes:
    head = (
        f"POST /scouter/drift HTTP/1.1\r\nHost: {HOST}:{port}\r\nAccept: */*\r\nAuthorization: Bearer {token}\r\n"
        f"Username: admin\r\nPassword: admin\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def get_request(path: str, port: int) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nAccept: */*\r\n\r\n".encode()


# --- the load generator ----------------------------------------------------------------------------------------------


class Connection:
    """One keep-alive HTTP/1.1 connection; responses must carry Content-Length (hypercorn's do)."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.buffer = b""

    @classmethod
    async def open(cls, port: int) -> Connection:
        return cls(await trio.open_tcp_stream(HOST, port))

    async def exchange(self, request: bytes) -> int:
        await self.stream.send_all(request)
        while b"\r\n\r\n" not in self.buffer:
            chunk = await self.stream.receive_some(65536)
            if not chunk:
                raise ConnectionError("server closed the connection")
            self.buffer += chunk
        head, _, rest = self.buffer.partition(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        while len(rest) < length:
            chunk = await self.stream.receive_some(65536)
            if not chunk:
                raise ConnectionError("server closed the connection")
            rest += chunk
        self.buffer = rest[length:]
        return status

    async def aclose(self) -> None:
        await self.stream.aclose()


@attrs.define
class Tally:
    """Answers received inside the measured window (2xx in `ok`, others in `errors`), and the records of the
    requests *sent* inside it: acknowledged (2xx, whenever answered) or not."""

    ok: int = 0
    errors: int = 0
    records: int = 0  # records of the 2xx answers inside the window: throughput
    acked: int = 0
    unacked: int = 0
    latencies: list[float] = attrs.Factory(list)


def _success(status: int) -> bool:
    return 200 <= status < 300


Requests = Sequence[tuple[bytes, int]]


async def closed_loop(
    port: int, warm: Requests, measured: Requests, concurrency: int, duration: float, warmup: float = 1.0
) -> tuple[Tally, float]:
    """`concurrency` senders, each sending as soon as its previous answer came back: `warm` requests first, then
    `measured` ones for `duration` seconds; then no new request, and those in flight are waited for."""
    tally = Tally()
    phase = "warm"
    connections = [await Connection.open(port) for _ in range(concurrency)]

    async def sender(index: int, connection: Connection) -> None:
        position = index
        while phase != "done":
            sent_measuring = phase == "measure"
            pool = measured if sent_measuring else warm
            request, records = pool[position % len(pool)]
            position += 1
            started = time.perf_counter()
            status = await connection.exchange(request)
            if phase == "measure":  # answered inside the window
                if _success(status):
                    tally.ok += 1
                    tally.records += records
                    tally.latencies.append(time.perf_counter() - started)
                else:
                    tally.errors += 1
            if sent_measuring:
                if _success(status):
                    tally.acked += records
                else:
                    tally.unacked += records

    async with trio.open_nursery() as nursery:
        for index, connection in enumerate(connections):
            nursery.start_soon(sender, index, connection)
        await trio.sleep(warmup)
        phase = "measure"
        started = time.perf_counter()
        await trio.sleep(duration)
        phase = "done"
        elapsed = time.perf_counter() - started
        nursery.cancel_scope.deadline = trio.current_time() + 120  # in-flight answers; a hang fails the bench
    check(not nursery.cancel_scope.cancelled_caught, "requests in flight at the end of a phase got no answer in 120 s")
    for connection in connections:
        await connection.aclose()
    return tally, elapsed


async def open_loop(
    port: int, requests: Requests, rate: float, duration: float, pool_size: int = 200
) -> tuple[Tally, float]:
    """Requests scheduled at `rate` per second; latency from each scheduled instant to its answer. Every request is
    waited for, so all of them count as sent while measuring."""
    tally = Tally()
    pool_send, pool_receive = trio.open_memory_channel[Connection](pool_size)
    opened = []
    for _ in range(min(pool_size, max(8, int(rate * 0.05)))):
        connection = await Connection.open(port)
        opened.append(connection)
        pool_send.send_nowait(connection)

    async def one(request: bytes, records: int, due: float) -> None:
        connection = await pool_receive.receive()
        try:
            status = await connection.exchange(request)
        finally:
            pool_send.send_nowait(connection)
        if _success(status):
            tally.ok += 1
            tally.records += records
            tally.acked += records
            tally.latencies.append(time.perf_counter() - due)
        else:
            tally.errors += 1
            tally.unacked += records

    started = time.perf_counter()
    count = max(1, int(rate * duration))
    async with trio.open_nursery() as nursery:
        for i in range(count):
            due = started + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await trio.sleep(delay)
            request, records = requests[i % len(requests)]
            nursery.start_soon(one, request, records, due)
    elapsed = time.perf_counter() - started
    for connection in opened:
        await connection.aclose()
    return tally, elapsed


def percentile(values: list[float], q: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


# --- raw COPY baseline -----------------------------------------------------------------------------------------------


async def raw_copy(dsn: str, batches: list[list[tuple[Any, ...]]], connections: int) -> float:
    """Seconds to COPY every batch (one COPY + COMMIT each) over `connections` concurrent connections."""
    conns = [await asyncpg.connect(dsn) for _ in range(connections)]
    queue: asyncio.Queue[list[tuple[Any, ...]]] = asyncio.Queue()
    for batch in batches:
        queue.put_nowait(batch)

    async def worker(conn: asyncpg.Connection) -> None:
        while not queue.empty():
            batch = queue.get_nowait()
            async with conn.transaction():
                await conn.copy_records_to_table("spc_drift", records=batch, columns=SPC_COLUMNS, schema_name="scouter")

    try:
        started = time.perf_counter()
        await asyncio.gather(*(worker(conn) for conn in conns))
        return time.perf_counter() - started
    finally:
        for conn in conns:
            await conn.close()


async def count_rows(dsn: str) -> dict[str, int]:
    """Stored records per space, over the three drift tables."""
    conn = await asyncpg.connect(dsn)
    try:
        counts: dict[str, int] = {}
        for table in ("spc_drift", "psi_drift", "custom_drift"):
            for row in await conn.fetch(f"SELECT space, count(*) AS n FROM scouter.{table} GROUP BY space"):
                counts[row["space"]] = counts.get(row["space"], 0) + int(row["n"])
        return counts
    finally:
        await conn.close()


# --- the run ---------------------------------------------------------------------------------------------------------


@attrs.frozen
class Row:
    load: str
    senders: str
    seconds: float
    ok: int
    errors: int
    per_second: float
    records_per_second: float
    p50_ms: float
    p99_ms: float


def _row(load: str, senders: str, tally: Tally, elapsed: float) -> Row:
    return Row(
        load,
        senders,
        elapsed,
        tally.ok,
        tally.errors,
        tally.ok / elapsed,
        tally.records / elapsed,
        1000 * percentile(tally.latencies, 0.50),
        1000 * percentile(tally.latencies, 0.99),
    )


def _table(rows: list[Row]) -> str:
    header = f"{'load':<44}{'senders':>10}{'s':>6}{'2xx':>10}{'non-2xx':>8}{'2xx/s':>10}{'records/s':>12}"
    header += f"{'p50 ms':>9}{'p99 ms':>9}"
    lines = [header, "-" * len(header)]
    for r in rows:
        lines.append(
            f"{r.load:<44}{r.senders:>10}{r.seconds:>6.1f}{r.ok:>10,}{r.errors:>8}{r.per_second:>10,.0f}"
            f"{r.records_per_second:>12,.0f}{r.p50_ms:>9.1f}{r.p99_ms:>9.1f}"
        )
    return "\n".join(lines)


def _mixed(space: str, now: datetime.datetime, token: str, port: int) -> list[tuple[bytes, int]]:
    """The client's three queues' bodies, in turn: 3 SPC, 30 PSI and 1 custom record."""
    return [
        (post_request(spc_body(space, 3, now), token, port), 3),
        (post_request(psi_body(space, now), token, port), 30),
        (post_request(custom_body(space, now), token, port), 1),
    ]


def run(duration: float, concurrency: int, bulk_senders: int) -> dict[str, float]:
    verdicts = Verdicts()
    with scratch_database(bench_postgres(), prefix="scouter_bench_") as dsn:
        server = Server(dsn)
        try:
            server.wait_ready()
            token = server.login()
            port = server.port
            now = datetime.datetime.now(datetime.UTC)
            health = [(get_request("/scouter/healthcheck", port), 0)]
            bulk_bodies = [spc_body("bench_bulk", 1000, now, offset=1000 * k) for k in range(4)]
            bulk = [(post_request(body, token, port), 1000) for body in bulk_bodies]
            warm_bulk = [(post_request(spc_body(WARM, 1000, now), token, port), 1000)]
            warmup = min(1.0, duration)

            health_tally, health_s = trio.run(closed_loop, port, health, health, concurrency, duration, warmup)
            ingest = _mixed("bench_ingest", now, token, port)
            warm = _mixed(WARM, now, token, port)
            ingest_tally, ingest_s = trio.run(closed_loop, port, warm, ingest, concurrency, duration, warmup)
            half = max(1.0, 0.5 * ingest_tally.ok / ingest_s)
            latency_tally, latency_s = trio.run(open_loop, port, _mixed("bench_latency", now, token, port), half,
                                                duration)  # fmt: skip
            bulk_tally, bulk_s = trio.run(closed_loop, port, warm_bulk, bulk, bulk_senders, duration, warmup)
            stored = asyncio.run(count_rows(dsn))
        finally:
            server.stop()

        # The same 1,000-row batches, decoded exactly as the server decodes them, COPYed raw.
        rows = [list(decode_server_records(body).spc_rows) for body in bulk_bodies]
        total_batches = max(sizes(50, 10), bulk_tally.ok)
        batches = [rows[k % len(rows)] for k in range(total_batches)]
        asyncio.run(raw_copy(dsn, batches[:20], 1))  # warm-up
        copy_1 = asyncio.run(raw_copy(dsn, batches, 1))
        copy_4 = asyncio.run(raw_copy(dsn, batches, 4))
        copy_rate = max(len(batches) * 1000 / copy_1, len(batches) * 1000 / copy_4)

    table = [
        _row("GET /scouter/healthcheck (ceiling)", str(concurrency), health_tally, health_s),
        _row("POST /scouter/drift, 3/30/1 records", str(concurrency), ingest_tally, ingest_s),
        _row(f"  same, open loop at {half:,.0f} req/s (50%)", "open", latency_tally, latency_s),
        _row("POST /scouter/drift, 1,000 records", str(bulk_senders), bulk_tally, bulk_s),
    ]
    cpus = os.cpu_count()
    print(f"HTTP ingest bench: {cpus} CPUs, server and load generator on this machine, {duration:g} s per phase"
          f"{' (smoke sizes)' if SMOKE else ''}")  # fmt: skip
    print(_table(table))
    print(
        f"raw asyncpg COPY, 1,000-row batches: {len(batches) * 1000 / copy_1:,.0f} rows/s (1 conn), "
        f"{len(batches) * 1000 / copy_4:,.0f} rows/s (4 conns)"
    )
    print("durability: records acknowledged (2xx) for the requests sent while measuring, and stored, per phase")
    for phase, space, tally in (("ingest", "bench_ingest", ingest_tally), ("open loop", "bench_latency", latency_tally),
                                ("bulk", "bench_bulk", bulk_tally)):  # fmt: skip
        got = stored.get(space, 0)
        unacked = f", {tally.unacked:,} in non-2xx answers (may or may not be stored)" if tally.unacked else ""
        print(f"  {phase:<10} {tally.acked:>10,} acknowledged, {got:>10,} stored{unacked}")
        check(tally.acked <= got <= tally.acked + tally.unacked,
              f"{phase}: {tally.acked} records acknowledged, {got} stored")  # fmt: skip
    ratio = verdicts.ratio("ingest / healthcheck req/s", table[1].per_second, table[0].per_second, target=0.5)
    p99 = table[2].p99_ms
    verdicts.target("ack p99 at 50% of max rate", p99, " ms", 250, at_most=True)
    bulk_ratio = verdicts.ratio("bulk records/s / raw COPY", table[3].records_per_second, copy_rate, target=0.35)
    verdicts.finish()
    return {
        "health_rps": table[0].per_second,
        "ingest_rps": table[1].per_second,
        "ratio": ratio,
        "p50_ms": table[2].p50_ms,
        "p99_ms": p99,
        "bulk_records_per_s": table[3].records_per_second,
        "copy_rows_per_s": copy_rate,
        "bulk_ratio": bulk_ratio,
    }


def main(argv: Sequence[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=sizes(10, 0.5), help="seconds measured per phase")
    parser.add_argument("--concurrency", type=int, default=sizes(50, 4), help="closed-loop senders")
    parser.add_argument("--bulk-senders", type=int, default=sizes(8, 2), help="closed-loop senders of 1,000 records")
    args = parser.parse_args(argv)
    return run(args.duration, args.concurrency, args.bulk_senders)


if __name__ == "__main__":
    main()
