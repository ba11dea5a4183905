"""A TCP proxy between PostgreSQL clients and a real server that a test can tell to lose a COMMIT's reply.

    proxy = PostgresProxy("127.0.0.1", 5432)
    port = await nursery.start(proxy.serve)
    proxy.cut_next_commit()          # the next COMMIT reaches the server, its reply never reaches the client

It forwards bytes both ways unchanged and reads the client's side as PostgreSQL protocol messages, so it can see a
simple-query ``COMMIT`` (what asyncpg sends to end a transaction). Armed, it forwards that COMMIT, waits for the
server's ``CommandComplete`` (so the transaction is certainly committed), then closes both sides without relaying it:
exactly a network failure between COMMIT and its reply. ``cut_next_commit(forward=False)`` instead drops the
connection before the COMMIT reaches the server (the transaction is then rolled back by the server), and
``cut_next_commit(forward=False, half_open=True)`` closes only the client's side: the server's session stays idle in
its transaction, as behind a network that vanished without a reset, until something ends it.

The DSN must ask for no TLS (``sslmode=disable``), or the proxy would see only ciphertext.
"""

from __future__ import annotations

import struct
from urllib.parse import urlsplit, urlunsplit

import attrs
import trio

_SSL_REQUEST = 80877103
_GSSENC_REQUEST = 80877104


@attrs.define
class _Cut:
    forward: bool  # let the COMMIT reach the server (and wait for its reply) before cutting
    half_open: bool  # keep the server's side open (its transaction stays in progress)


@attrs.define
class _Cutting:
    active: bool = False  # the COMMIT went through: swallow the server's answer, then cut


@attrs.define
class PostgresProxy:
    upstream_host: str
    upstream_port: int
    port: int = 0
    commits_cut: int = 0  # COMMITs whose connection was cut
    commits_seen: int = 0
    _armed: list[_Cut] = attrs.Factory(list)

    def dsn(self, dsn: str) -> str:
        """``dsn`` (user, password, database kept) pointed at this proxy, without TLS."""
        url = urlsplit(dsn)
        credentials = url.netloc.rpartition("@")[0]
        netloc = f"{credentials}@127.0.0.1:{self.port}" if credentials else f"127.0.0.1:{self.port}"
        query = "&".join([*(p for p in url.query.split("&") if p and not p.startswith("sslmode=")), "sslmode=disable"])
        return urlunsplit((url.scheme, netloc, url.path, query, ""))

    def cut_next_commit(self, *, forward: bool = True, half_open: bool = False) -> None:
        self._armed.append(_Cut(forward, half_open))

    async def serve(self, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        self.port = listeners[0].socket.getsockname()[1]
        async with trio.open_nursery() as nursery:
            task_status.started(self.port)
            await trio.serve_listeners(self._handle, listeners, handler_nursery=nursery)

    async def _handle(self, client: trio.SocketStream) -> None:
        async with client, await trio.open_tcp_stream(self.upstream_host, self.upstream_port) as server:
            cutting = _Cutting()
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._client_to_server, client, server, cutting, nursery.cancel_scope)
                nursery.start_soon(self._server_to_client, server, client, cutting, nursery.cancel_scope)

    async def _client_to_server(
        self, client: trio.SocketStream, server: trio.SocketStream, cutting: _Cutting, scope: trio.CancelScope
    ) -> None:
        buffer = bytearray()
        started = False  # the startup message (untyped) is through; every later message is typed
        while True:
            data = await client.receive_some(65536)
            if not data:
                scope.cancel()
                return
            buffer += data
            while True:
                message = _next_message(buffer, typed=started)
                if message is None:
                    break
                if not started and len(message) >= 8:
                    code = struct.unpack("!I", message[4:8])[0]
                    started = code not in (_SSL_REQUEST, _GSSENC_REQUEST)
                del buffer[: len(message)]
                if started and _is_commit(message):
                    self.commits_seen += 1
                    if self._armed:
                        cut = self._armed.pop(0)
                        self.commits_cut += 1
                        if not cut.forward and cut.half_open:
                            cutting.active = True  # the server's side stays open until the server ends it
                            await client.aclose()
                            return
                        if not cut.forward:
                            scope.cancel()  # the COMMIT never reaches the server
                            return
                        cutting.active = True  # from here on, the server's answer is swallowed
                await server.send_all(message)

    async def _server_to_client(
        self, server: trio.SocketStream, client: trio.SocketStream, cutting: _Cutting, scope: trio.CancelScope
    ) -> None:
        held = bytearray()
        while True:
            data = await server.receive_some(65536)
            if not data:
                scope.cancel()
                return
            if cutting.active:
                held += data
                if b"C\x00\x00\x00\x0bCOMMIT\x00" in held:  # CommandComplete("COMMIT"): it is committed
                    scope.cancel()
                    return
                continue
            await client.send_all(data)


def _next_message(buffer: bytearray, *, typed: bool) -> bytes | None:
    """The first complete protocol message in ``buffer``, or None while it is incomplete."""
    header = 5 if typed else 4
    if len(buffer) < header:
        return None
    (length,) = struct.unpack("!I", buffer[header - 4 : header])
    total = length + (1 if typed else 0)
    if len(buffer) < total:
        return None
    return bytes(buffer[:total])


def _is_commit(message: bytes) -> bool:
    return message[:1] == b"Q" and message[5:].lstrip().upper().startswith((b"COMMIT", b"END"))
