"""A fake alert channel: a plain trio + h11 HTTP/1.1 server on 127.0.0.1:0 that records every request and answers
from a script, so tests can inject faults (slow answers, 500, 429 with Retry-After, 400...).

    server = FakeChannel()
    server.script("/api/chat.postMessage", Reply(500), Reply(429, {"Retry-After": "1"}))   # then the default
    async with trio.open_nursery() as nursery:
        base_url = await nursery.start(server.serve)
        ...
        nursery.cancel_scope.cancel()
"""

from __future__ import annotations

import collections
from typing import Any

import attrs
import h11
import orjson
import trio


@attrs.frozen
class Reply:
    """One scripted answer; `delay` seconds pass before it is sent (longer than the client's timeout: a timeout)."""

    status: int = 200
    headers: dict[str, str] = attrs.field(factory=dict)
    body: bytes = b'{"ok": true}'
    delay: float = 0.0


@attrs.frozen
class Recorded:
    """A request as the server received it; `answered` is set once its reply was written."""

    method: str
    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes
    at: float  # trio time of arrival
    answered: trio.Event = attrs.field(factory=trio.Event, eq=False)
    reply: list[Reply] = attrs.field(factory=list, eq=False)

    def json(self) -> Any:
        return orjson.loads(self.body)


@attrs.define
class FakeChannel:
    default: Reply = Reply()
    requests: list[Recorded] = attrs.Factory(list)
    _scripts: dict[str, collections.deque[Reply]] = attrs.Factory(dict)
    _arrived: trio.Event = attrs.Factory(trio.Event)

    def script(self, path: str, *replies: Reply) -> None:
        """Answer the next requests to `path` with `replies`, in order, then with `default`."""
        self._scripts.setdefault(path, collections.deque()).extend(replies)

    def to(self, path: str) -> list[Recorded]:
        return [r for r in self.requests if r.path == path]

    async def wait_for(self, count: int, within: float = 10.0) -> list[Recorded]:
        """Wait (wall clock) until `count` requests have arrived."""
        with trio.fail_after(within):
            while len(self.requests) < count:
                self._arrived = trio.Event()
                await self._arrived.wait()
        return self.requests

    async def serve(self, *, task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED) -> None:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        port = listeners[0].socket.getsockname()[1]
        task_status.started(f"http://127.0.0.1:{port}")
        await trio.serve_listeners(self._connection, listeners)

    async def _connection(self, stream: trio.SocketStream) -> None:
        conn = h11.Connection(h11.SERVER)
        try:
            while True:
                request = await self._read_request(conn, stream)
                if request is None:
                    return
                queue = self._scripts.get(request.path)
                reply = queue.popleft() if queue else self.default
                request.reply.append(reply)
                if reply.delay:
                    await trio.sleep(reply.delay)
                headers = [("content-type", "application/json"), ("content-length", str(len(reply.body)))]
                headers += [(k, v) for k, v in reply.headers.items()]
                await stream.send_all(conn.send(h11.Response(status_code=reply.status, headers=headers)))
                await stream.send_all(conn.send(h11.Data(data=reply.body)))
                await stream.send_all(conn.send(h11.EndOfMessage()))
                request.answered.set()
                if conn.our_state is h11.MUST_CLOSE:
                    return
                conn.start_next_cycle()
        except (trio.BrokenResourceError, trio.ClosedResourceError, h11.RemoteProtocolError):
            return  # the client gave up (its timeout) or went away
        finally:
            await stream.aclose()

    async def _read_request(self, conn: h11.Connection, stream: trio.SocketStream) -> Recorded | None:
        head: h11.Request | None = None
        body = bytearray()
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                data = await stream.receive_some(65536)
                conn.receive_data(data)
                continue
            if isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
                return None
            if isinstance(event, h11.Request):
                head = event
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                assert head is not None
                recorded = Recorded(
                    method=head.method.decode(),
                    path=head.target.decode().split("?", 1)[0],
                    headers={k.decode().lower(): v.decode() for k, v in head.headers},
                    body=bytes(body),
                    at=trio.current_time(),
                )
                self.requests.append(recorded)
                self._arrived.set()
                return recorded
