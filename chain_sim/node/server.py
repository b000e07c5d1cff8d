"""HTTP POST and WebSocket JSON-RPC on one port, served on trio with h11 (HTTP/1.1)
and wsproto (WebSocket), both from the python-hyper project.

A connection is one trio task.  HTTP/1.1 (keep-alive): a plain JSON-RPC POST (see
:func:`_plain_post`: the request line, one Host, one Content-Length, visible-ASCII
header lines, nothing else asked) is parsed once, strictly, and answered in the
connection's task with one ``send``, head and body together (``204`` when there is
nothing to answer: only notifications).  Any other request -- another method, a
chunked body, ``Expect``, an upgrade, anything odd or malformed -- hands the
connection to h11, which answers it (or refuses it: ``400``) as the standard says.
Bodies over :data:`~chain_sim.node.jsonrpc.MAX_REQUEST_BYTES` get ``413``; a request
head still incomplete after :data:`MAX_HEAD_BYTES` buffered gets ``431`` (the head is
read :data:`READ_CHUNK` bytes at a time, so the bound is about 128 KiB); an idle
connection is closed after :data:`KEEP_ALIVE_SECONDS`.

A ``GET`` with ``Upgrade: websocket`` becomes a WebSocket: one JSON-RPC message per
text (or binary) message, answered as they finish (a slow call does not hold up the
others of the connection, up to :data:`~chain_sim.node.jsonrpc.MAX_IN_FLIGHT` at once:
the next message is read when one finishes, so a client that floods the socket is
slowed by TCP, not buffered; a call the dispatcher knows will not wait,
:meth:`~chain_sim.node.jsonrpc.Dispatcher.is_quick`, is answered in the reading
task); a message over ``MAX_REQUEST_BYTES`` closes the
connection (``1009``) unread; subscriptions push notifications; a client that goes
away ends its subscriptions.
"""

from __future__ import annotations

import json
import math
import re
import socket
from collections.abc import Awaitable, Callable
from functools import partial
from http import HTTPStatus
from typing import Any

import h11
import trio
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Ping,
    Request,
    TextMessage,
)
from wsproto.utilities import LocalProtocolError

from chain_sim.node.jsonrpc import MAX_IN_FLIGHT, MAX_REQUEST_BYTES, Dispatcher, Session

MAX_HEAD_BYTES = 64 * 1024
"""h11's bound on a request head still incomplete (``431`` past it)."""
READ_CHUNK = 64 * 1024
"""Bytes read from a socket at a time."""
KEEP_ALIVE_SECONDS = 60.0
"""An HTTP connection with no request for this long is closed."""

_CORS = [(b"access-control-allow-origin", b"*"),
         (b"access-control-allow-headers", b"content-type"),
         (b"access-control-allow-methods", b"POST, GET, OPTIONS")]
_JSON = b"application/json"
_REASONS = {s.value: s.phrase.encode() for s in HTTPStatus}

Receive = Callable[[], Awaitable["str | bytes | None"]]
SendText = Callable[[str], Awaitable[None]]


def _too_large() -> bytes:
    return json.dumps({"jsonrpc": "2.0", "id": None, "error": {
        "code": -32600, "message": f"request too large (limit {MAX_REQUEST_BYTES} bytes)"}}
        ).encode()


class _Closed(Exception):
    """The peer went away (or must be dropped)."""


FAIR_TURNS = 16
"""Socket operations a connection does without waiting before it lets the others run
(a checkpoint): see :class:`_Wire`."""


class _Wire:
    """The connection's socket, read and written directly, waiting through trio only
    when it is not ready.  trio's stream methods make every call a checkpoint (a round
    through the scheduler, even when the socket was ready), which costs more than
    answering a small request; here a connection yields only when it must wait, and
    once every :data:`FAIR_TURNS` operations that did not, so a client that keeps its
    socket full cannot hold the others up.  A stream that is not a plain TCP socket
    (tests) goes through its own methods."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        inner = getattr(getattr(stream, "socket", None), "_sock", None)
        self.sock = inner if type(inner) is socket.socket else None
        self.turns = 0
        self.deadline = math.inf
        """When the wait in progress times out (:meth:`watch` closes the connection)."""

    async def watch(self, scope: trio.CancelScope) -> None:
        """Cancels ``scope`` (the connection) once a :meth:`recv` has waited past its
        timeout.  One task per connection instead of a cancel scope per wait: entering
        and leaving a scope with a deadline cost more than the rest of a small
        request's wait."""
        while True:
            now = trio.current_time()
            deadline = self.deadline
            if deadline <= now:
                scope.cancel()
                return
            await trio.sleep_until(min(deadline, now + KEEP_ALIVE_SECONDS))

    async def turn(self) -> None:
        """A socket operation that did not wait: a checkpoint every FAIR_TURNS."""
        self.turns += 1
        if self.turns >= FAIR_TURNS:
            self.turns = 0
            await trio.lowlevel.checkpoint()

    async def recv(self, timeout: float = math.inf) -> bytes:
        """The next bytes (b"": closed).  After ``timeout`` seconds without any, the
        connection ends: :class:`_Closed`, or (a plain TCP socket) the connection's
        scope cancelled by :meth:`watch`."""
        sock = self.sock
        if sock is None:
            with trio.move_on_after(timeout):
                return await self.stream.receive_some(READ_CHUNK)  # type: ignore[no-any-return]
            raise _Closed
        try:
            data = sock.recv(READ_CHUNK)
        except BlockingIOError:
            self.turns = 0
            if timeout != math.inf:      # (watched: the connection's watch task)
                self.deadline = trio.current_time() + timeout
            try:
                while True:
                    await trio.lowlevel.wait_readable(sock)
                    try:
                        return sock.recv(READ_CHUNK)
                    except BlockingIOError:
                        pass
            finally:
                self.deadline = math.inf
        self.turns += 1                 # (self.turn(), inline)
        if self.turns >= FAIR_TURNS:
            self.turns = 0
            await trio.lowlevel.checkpoint()
        return data

    def send_now(self, data: bytes) -> int:
        """Sends what the socket takes of ``data`` without waiting: how many bytes (0
        for a stream that is not a plain socket)."""
        if self.sock is None:
            return 0
        try:
            return self.sock.send(data)
        except BlockingIOError:
            return 0

    async def send_all(self, data: bytes) -> None:
        sent = self.send_now(data)
        if sent == len(data):
            self.turns += 1                 # (self.turn(), inline)
            if self.turns >= FAIR_TURNS:
                self.turns = 0
                await trio.lowlevel.checkpoint()
            return
        await self.send_rest(data, sent)

    async def send_rest(self, data: bytes, sent: int) -> None:
        """Sends ``data`` from byte ``sent`` on, waiting for the socket as needed."""
        sock = self.sock
        if sock is None:
            await self.stream.send_all(data[sent:] if sent else data)
            return
        self.turns = 0
        view = memoryview(data)[sent:]
        while view:
            await trio.lowlevel.wait_writable(sock)
            try:
                view = view[sock.send(view):]
            except BlockingIOError:
                pass


class RpcServer:
    """Serves ``dispatcher`` on trio socket streams (:meth:`handle_connection`)."""

    def __init__(self, dispatcher: Dispatcher) -> None:
        self.dispatcher = dispatcher

    # ---- one connection ----
    async def handle_connection(self, stream: trio.SocketStream) -> None:
        """Serves one TCP connection until it closes; never raises (a broken
        connection, a protocol error or a bug ends this connection only)."""
        try:
            async with stream, trio.open_nursery() as nursery:
                wire = _Wire(stream)
                if wire.sock is not None:
                    nursery.start_soon(wire.watch, nursery.cancel_scope)
                try:           # (caught here: the nursery would wrap it in a group)
                    rest = await self._fast_http(wire)
                    if rest is not None:
                        await self._http(stream, rest)
                finally:
                    nursery.cancel_scope.cancel()
        except* (trio.BrokenResourceError, trio.ClosedResourceError, _Closed, OSError):
            pass
        except* Exception as group:  # noqa: BLE001 - logged, the node goes on
            for exc in group.exceptions:
                self.dispatcher.log(f"connection failed: {type(exc).__name__}: {exc}")

    async def _fast_http(self, wire: _Wire) -> bytes | None:
        """Answers the connection's plain JSON-RPC POSTs (see :func:`_plain_post`)
        until a request is anything else; returns the bytes read from that request
        on (h11 takes the connection over from them), or None once it has closed."""
        buf = b""
        while True:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > MAX_HEAD_BYTES:
                    return buf
                data = await wire.recv(KEEP_ALIVE_SECONDS)
                if not data:
                    return buf or None
                buf += data
                continue
            head = buf[:end]
            plain = _plain_heads.get(head)
            if plain is None:
                plain = _plain_post(head)
                if plain is None:
                    return buf
                if len(head) <= _PLAIN_HEAD_BYTES:
                    if len(_plain_heads) >= _PLAIN_HEADS:
                        _plain_heads.clear()
                    _plain_heads[head] = plain
            size, close = plain
            total = end + 4 + size
            if len(buf) < total:
                parts = [buf]
                have = len(buf)
                while have < total:
                    data = await wire.recv(KEEP_ALIVE_SECONDS)
                    if not data:
                        return None
                    parts.append(data)
                    have += len(data)
                buf = b"".join(parts)
            body, buf = buf[end + 4:total], buf[total:]
            answer = await self.dispatcher.handle(body, Session(None))
            if answer is None:
                out = _HEAD_204 + (_CLOSE if close else b"") + b"\r\n"
            else:
                data = answer.encode()
                out = (_HEAD_200 + b"%d\r\n" % len(data) + (_CLOSE if close else b"")
                       + b"\r\n" + data)
            await wire.send_all(out)
            if close:
                return None

    async def _http(self, stream: trio.SocketStream, data: bytes = b"") -> None:
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD_BYTES)
        if data:
            conn.receive_data(data)

        async def next_event() -> Any:
            while True:
                try:
                    event = conn.next_event()
                except h11.RemoteProtocolError as exc:
                    await self._refuse(stream, conn, exc.error_status_hint)
                    raise _Closed from None
                if event is not h11.NEED_DATA:
                    return event
                if conn.they_are_waiting_for_100_continue:
                    await stream.send_all(conn.send(h11.InformationalResponse(
                        status_code=100, headers=[])) or b"")
                with trio.move_on_after(KEEP_ALIVE_SECONDS):
                    data = await stream.receive_some(READ_CHUNK)
                    conn.receive_data(data)
                    continue
                raise _Closed         # idle too long

        while True:
            event = await next_event()
            if event is h11.PAUSED or isinstance(event, h11.ConnectionClosed):
                return
            if not isinstance(event, h11.Request):
                raise _Closed
            if _is_websocket(event):
                while True:
                    event2 = await next_event()
                    if event2 is h11.PAUSED or isinstance(event2, h11.EndOfMessage):
                        break
                data, _ = conn.trailing_data
                await self._websocket(stream, event, data)
                return
            if event.method == b"OPTIONS":
                await self._drain(next_event)
                await self._respond(stream, conn, 204, b"")
            elif event.method != b"POST":
                await self._drain(next_event)
                await self._respond(stream, conn, 405,
                                    b"JSON-RPC: POST a request (or use WebSocket)\n",
                                    b"text/plain")
            else:
                chunks: list[bytes] = []
                size = 0
                while True:
                    part = await next_event()
                    if isinstance(part, h11.EndOfMessage):
                        break
                    if not isinstance(part, h11.Data):
                        raise _Closed
                    size += len(part.data)
                    if size > MAX_REQUEST_BYTES:
                        await self._respond(stream, conn, 413, _too_large(), close=True)
                        raise _Closed
                    chunks.append(part.data)
                answer = await self.dispatcher.handle(
                    chunks[0] if len(chunks) == 1 else b"".join(chunks), Session(None))
                if answer is None:
                    await self._respond(stream, conn, 204, b"")
                else:
                    await self._respond(stream, conn, 200, answer.encode())
            if conn.our_state is h11.MUST_CLOSE or conn.their_state is not h11.DONE:
                raise _Closed
            conn.start_next_cycle()

    @staticmethod
    async def _drain(next_event: Callable[[], Awaitable[Any]]) -> None:
        """Skips a request's body (bounded: at most MAX_REQUEST_BYTES)."""
        size = 0
        while True:
            part = await next_event()
            if isinstance(part, h11.EndOfMessage):
                return
            if not isinstance(part, h11.Data):
                raise _Closed
            size += len(part.data)
            if size > MAX_REQUEST_BYTES:
                raise _Closed

    @staticmethod
    async def _respond(stream: trio.SocketStream, conn: h11.Connection, status: int,
                       body: bytes, ctype: bytes = _JSON, *, close: bool = False) -> None:
        headers = [(b"content-type", ctype), (b"content-length", b"%d" % len(body)), *_CORS]
        if close:
            headers.append((b"connection", b"close"))
        out = conn.send(h11.Response(status_code=status, headers=headers,
                                     reason=_REASONS[status])) or b""
        if body:
            out += conn.send(h11.Data(data=body)) or b""
        out += conn.send(h11.EndOfMessage()) or b""
        await stream.send_all(out)

    @staticmethod
    async def _refuse(stream: trio.SocketStream, conn: h11.Connection, status: int) -> None:
        """The answer to a request h11 could not parse (when one can still be sent)."""
        if conn.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
            return
        body = f"bad request ({status})\n".encode()
        try:
            out = conn.send(h11.Response(status_code=status, reason=_REASONS.get(status, b""),
                                         headers=[
                (b"content-type", b"text/plain"), (b"content-length", b"%d" % len(body)),
                (b"connection", b"close")])) or b""
            out += conn.send(h11.Data(data=body)) or b""
            out += conn.send(h11.EndOfMessage()) or b""
        except h11.LocalProtocolError:
            return
        await stream.send_all(out)

    # ---- WebSocket ----
    async def _websocket(self, stream: trio.SocketStream, request: h11.Request,
                         trailing: bytes) -> None:
        ws = WSConnection(ConnectionType.SERVER)
        ws.initiate_upgrade_connection(list(request.headers), request.target)
        wire = _Wire(stream)
        send_lock = trio.Lock()
        pending: list[Any] = list(ws.events())
        if not pending or not isinstance(pending[0], Request):
            raise _Closed
        await wire.send_all(ws.send(AcceptConnection()))
        closing = False
        # plain frames (whole, masked, text or binary: what clients send) are read
        # here; the first other frame (control, fragmented, bad UTF-8, ...) hands the
        # connection to wsproto for good, from that frame on
        fast = True
        parts = [trailing] if trailing else []
        have = len(trailing)

        async def send_bytes(data: bytes) -> None:
            # the lock keeps concurrent answers' frames whole; taken only when a send
            # must wait: a send the socket takes at once awaits nothing in between
            if not send_lock.locked():
                sent = wire.send_now(data)
                if sent == len(data):
                    await wire.turn()
                    return
                send_lock.acquire_nowait()      # (free: nothing awaited since)
                try:
                    await wire.send_rest(data, sent)
                finally:
                    send_lock.release()
                return
            await send_lock.acquire()
            try:
                await wire.send_all(data)
            finally:
                send_lock.release()

        async def send_text(text: str) -> None:
            if closing:
                return
            await send_bytes(_text_frame(text))

        async def more() -> bytes | None:
            """The next bytes read; None (``closing`` set) once the client has closed."""
            nonlocal closing
            data = await wire.recv()
            if not data:
                closing = True
                return None
            return data

        async def receive_fast() -> str | bytes | None:
            """The next plain message; None with ``fast`` cleared: wsproto goes on."""
            nonlocal fast, parts, have
            need = 2
            while True:
                if have >= need:
                    buf = parts[0] if len(parts) == 1 else b"".join(parts)
                    got = _plain_frame(buf)
                    if got is None or got == _TOO_BIG:   # (wsproto counts to the limit)
                        fast = False
                        ws.receive_data(buf)
                        parts, have = [], 0
                        return None
                    if isinstance(got, int):
                        need = got
                        parts = [buf]
                    else:
                        message, used = got
                        rest = buf[used:]
                        parts, have = ([rest] if rest else []), len(rest)
                        return message
                data = await more()
                if data is None:
                    return None
                parts.append(data)
                have += len(data)

        async def receive() -> str | bytes | None:
            """The next whole message (None: the connection ended)."""
            nonlocal closing
            if fast:
                message = await receive_fast()
                if message is not None or closing:
                    return message
            chunks: list[Any] = []
            size = 0
            while True:
                for event in ws.events():
                    if isinstance(event, TextMessage | BytesMessage):
                        size += len(event.data)
                        if size > MAX_REQUEST_BYTES:
                            closing = True
                            await send_bytes(ws.send(CloseConnection(
                                code=1009, reason="message too big")))
                            return None
                        chunks.append(event.data)
                        if event.message_finished:
                            if len(chunks) == 1:
                                return chunks[0]        # type: ignore[no-any-return]
                            return ("".join(chunks) if isinstance(event, TextMessage)
                                    else b"".join(chunks))
                    elif isinstance(event, Ping):
                        await send_bytes(ws.send(event.response()))
                    elif isinstance(event, CloseConnection):
                        closing = True
                        try:
                            await send_bytes(ws.send(event.response()))
                        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError,
                                LocalProtocolError):
                            pass
                        return None
                data = await more()
                if data is None:
                    return None
                ws.receive_data(data)

        await self.serve_messages(receive, send_text)

    async def serve_messages(self, receive: Receive, send_text: SendText) -> None:
        """Answers the JSON-RPC messages ``receive`` returns (until it returns None)
        with ``send_text``, at most MAX_IN_FLIGHT at once; the connection's
        subscriptions end with it."""
        in_flight = trio.Semaphore(MAX_IN_FLIGHT)
        closed = False

        async def push(obj: dict[str, Any]) -> None:
            if not closed:
                await send_text(json.dumps(obj))

        async with trio.open_nursery() as nursery:
            session = Session(push)
            session.nursery = nursery

            async def guarded(task: Callable[[], Awaitable[None]]) -> None:
                # a subscription whose channel closed, or a client that went away
                # while we answered: end that task, not the connection
                try:
                    await task()
                except (trio.ClosedResourceError, trio.BrokenResourceError, OSError):
                    pass
                except Exception as exc:  # noqa: BLE001 - logged, the node goes on
                    self.dispatcher.log(f"websocket task failed: {type(exc).__name__}: {exc}")

            async def reply_to(data: str | bytes | None, msg: Any, error: str | None) -> None:
                """Answers text ``data``, or if None, decoded ``msg`` (or ``error``)."""
                if data is not None:
                    reply = await dispatcher.handle(data, session)
                elif error is not None:
                    reply = error
                else:
                    reply = await dispatcher.handle_parsed(msg, session)
                if reply is not None and not closed:
                    await send_text(reply)
                for task in session.take_deferred():
                    nursery.start_soon(guarded, task)

            async def answer(data: str | bytes | None, msg: Any, error: str | None) -> None:
                try:
                    await reply_to(data, msg, error)
                finally:
                    in_flight.release()

            dispatcher = self.dispatcher
            quick = dispatcher.quick      # (is_quick, with ready() checked just before)
            try:
                while True:
                    data = await receive()
                    if data is None:
                        break
                    msg: Any = None
                    error: str | None = None
                    if quick and dispatcher.ready():
                        msg, error = dispatcher.parse(data)
                        method = msg.get("method") if type(msg) is dict else None
                        if type(method) is str and method in quick:
                            # answered here: it will not wait (a task of its own costs
                            # more than most answers)
                            await guarded(partial(reply_to, None, msg, None))
                            continue
                        data = None         # decoded: answered from msg (or error)
                    try:      # no scheduler round while there is room (the usual)
                        in_flight.acquire_nowait()
                    except trio.WouldBlock:
                        await in_flight.acquire()
                    nursery.start_soon(guarded, partial(answer, data, msg, error))
            finally:
                closed = True
                session.close()
                nursery.cancel_scope.cancel()


_CORS_LINES = b"".join(b"%s: %s\r\n" % kv for kv in _CORS)
_HEAD_200 = (b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n" + _CORS_LINES
             + b"content-length: ")
_HEAD_204 = (b"HTTP/1.1 204 No Content\r\ncontent-type: application/json\r\n" + _CORS_LINES
             + b"content-length: 0\r\n")
_CLOSE = b"connection: close\r\n"
_TOKEN = re.compile(rb"[-!#$%&'*+.^_`|~0-9A-Za-z]+")
_VALUE = re.compile(rb"[\x21-\x7e]*(?:[ \t]+[\x21-\x7e]+)*")
_TARGET = re.compile(rb"[\x21-\x7e]+")
_DIGITS = re.compile(rb"[0-9]{1,10}")


_plain_heads: dict[bytes, tuple[int, bool]] = {}
"""The plain heads seen lately and what :func:`_plain_post` made of them: a client
sends the same head again and again (only Content-Length changes), and checking it
line by line costs about as much as answering ``eth_chainId``."""
_PLAIN_HEADS = 256
"""Most heads kept (all dropped when full)."""
_PLAIN_HEAD_BYTES = 1024
"""Longest head kept (at most 256 KiB in all)."""


def _plain_post(head: bytes) -> tuple[int, bool] | None:
    """``(Content-Length, close after)`` when request head ``head`` is a plain
    HTTP/1.1 POST -- request line ``POST <target> HTTP/1.1``, CRLF-separated
    ``name: value`` lines of visible ASCII, exactly one Host and one Content-Length (at
    most MAX_REQUEST_BYTES), no Transfer-Encoding, Expect or Upgrade -- else None:
    anything else, odd or malformed, goes to h11, which answers it or refuses it."""
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ")
    if (len(parts) != 3 or parts[0] != b"POST" or parts[2] != b"HTTP/1.1"
            or _TARGET.fullmatch(parts[1]) is None):
        return None
    size = -1
    hosts = 0
    close = False
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        if not colon or _TOKEN.fullmatch(name) is None:
            return None
        value = value.strip(b" \t")
        if _VALUE.fullmatch(value) is None:
            return None
        name = name.lower()
        if name == b"content-length":
            if size >= 0 or _DIGITS.fullmatch(value) is None:
                return None
            size = int(value)
        elif name == b"host":
            hosts += 1
        elif name == b"connection":
            close = b"close" in value.lower()
        elif name in (b"transfer-encoding", b"expect", b"upgrade"):
            return None
    if size < 0 or size > MAX_REQUEST_BYTES or hosts != 1:
        return None
    return size, close


def _is_websocket(request: h11.Request) -> bool:
    if request.method != b"GET":
        return False
    for name, value in request.headers:
        if name == b"upgrade" and value.lower() == b"websocket":
            return True
    return False


_TOO_BIG = -1


def _plain_frame(buf: bytes) -> tuple[str | bytes, int] | int | None:
    """The message of the client frame starting ``buf`` and the bytes it takes, when
    it is a plain one (final, text with valid UTF-8 or binary, masked, no extension
    bits); an int: the bytes needed to tell (the frame is incomplete), or
    :data:`_TOO_BIG` (a message over MAX_REQUEST_BYTES); None: another kind of frame
    (wsproto reads it)."""
    if len(buf) < 2:
        return 2
    b0, b1 = buf[0], buf[1]
    if b0 not in (0x81, 0x82) or not b1 & 0x80:
        return None
    n = b1 & 0x7F
    head = 2
    if n == 126:
        if len(buf) < 4:
            return 4
        n = int.from_bytes(buf[2:4], "big")
        head = 4
        if n < 126:
            return None           # not the shortest length encoding: wsproto refuses it
    elif n == 127:
        if len(buf) < 10:
            return 10
        n = int.from_bytes(buf[2:10], "big")
        head = 10
        if n < 65536 or n >> 63:
            return None           # (as above; or the most significant bit set)
    if n > MAX_REQUEST_BYTES:
        return _TOO_BIG
    end = head + 4 + n
    if len(buf) < end:
        return end
    mask = (buf[head:head + 4] * (n // 4 + 1))[:n]
    payload = (int.from_bytes(buf[head + 4:end], "little")
               ^ int.from_bytes(mask, "little")).to_bytes(n, "little")
    if b0 == 0x82:
        return payload, end
    try:
        return payload.decode("utf-8"), end
    except UnicodeDecodeError:
        return None


def _text_frame(text: str) -> bytes:
    """A final, unmasked text frame (the server's)."""
    data = text.encode()
    n = len(data)
    if n < 126:
        return bytes((0x81, n)) + data
    if n < 65536:
        return b"\x81\x7e" + n.to_bytes(2, "big") + data
    return b"\x81\x7f" + n.to_bytes(8, "big") + data
