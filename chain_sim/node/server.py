"""HTTP POST and WebSocket JSON-RPC on one port: an ASGI app served by hypercorn on
trio.

HTTP: ``POST`` a request or a batch (``Content-Type: application/json``), get the
answer (``204`` when there is none: only notifications).  Bodies over
:data:`~chain_sim.node.jsonrpc.MAX_REQUEST_BYTES` get ``413``.  WebSocket: one JSON-RPC
message per text (or binary) frame, answered as they finish (a slow call does not hold
up the others of the connection, up to
:data:`~chain_sim.node.jsonrpc.MAX_IN_FLIGHT` at once: the next message is read when
one finishes, so a client that floods the socket is slowed by TCP, not buffered);
subscriptions push notifications; a client that goes away ends its subscriptions.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import trio

from chain_sim.node.jsonrpc import MAX_IN_FLIGHT, MAX_REQUEST_BYTES, Dispatcher, Session

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

_CORS = [(b"access-control-allow-origin", b"*"),
         (b"access-control-allow-headers", b"content-type"),
         (b"access-control-allow-methods", b"POST, GET, OPTIONS")]


class RpcApp:
    """The ASGI application."""

    def __init__(self, dispatcher: Dispatcher) -> None:
        self.dispatcher = dispatcher

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "websocket":
            await self._websocket(receive, send)
        elif kind == "lifespan":
            while True:
                msg = await receive()
                if msg["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif msg["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return

    async def _respond(self, send: Send, status: int, body: bytes,
                       ctype: bytes = b"application/json") -> None:
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", ctype),
                                (b"content-length", str(len(body)).encode()), *_CORS]})
        await send({"type": "http.response.body", "body": body})

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        method = scope.get("method", "GET")
        if method == "OPTIONS":
            await self._respond(send, 204, b"")
            return
        if method != "POST":
            await self._respond(send, 405, b"JSON-RPC: POST a request (or use WebSocket)\n",
                                b"text/plain")
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            msg = await receive()
            if msg["type"] == "http.disconnect":
                return
            part = msg.get("body", b"")
            size += len(part)
            if size > MAX_REQUEST_BYTES:
                body = json.dumps({"jsonrpc": "2.0", "id": None, "error": {
                    "code": -32600, "message": f"request too large (limit "
                                               f"{MAX_REQUEST_BYTES} bytes)"}}).encode()
                await self._respond(send, 413, body)
                return
            chunks.append(part)
            if not msg.get("more_body", False):
                break
        answer = await self.dispatcher.handle(b"".join(chunks), Session(None))
        if answer is None:
            await self._respond(send, 204, b"")
        else:
            await self._respond(send, 200, answer.encode())

    async def _websocket(self, receive: Receive, send: Send) -> None:
        msg = await receive()
        if msg["type"] != "websocket.connect":
            return
        await send({"type": "websocket.accept"})
        lock = trio.Lock()
        closed = False
        in_flight = trio.Semaphore(MAX_IN_FLIGHT)

        async def push(obj: dict[str, Any]) -> None:
            if closed:
                return
            async with lock:
                await send({"type": "websocket.send", "text": json.dumps(obj)})

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

            async def answer(text: str | bytes) -> None:
                try:
                    reply = await self.dispatcher.handle(text, session)
                    if reply is not None and not closed:
                        async with lock:
                            await send({"type": "websocket.send", "text": reply})
                finally:
                    in_flight.release()
                for task in session.take_deferred():
                    nursery.start_soon(guarded, task)

            try:
                while True:
                    msg = await receive()
                    if msg["type"] == "websocket.disconnect":
                        break
                    if msg["type"] != "websocket.receive":
                        continue
                    text = msg.get("text")
                    data = text if text is not None else msg.get("bytes") or b""
                    await in_flight.acquire()
                    nursery.start_soon(guarded, lambda d=data: answer(d))
            finally:
                closed = True
                session.close()
                nursery.cancel_scope.cancel()
