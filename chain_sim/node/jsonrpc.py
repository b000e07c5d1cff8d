"""A small JSON-RPC 2.0 dispatcher: single requests, batches, notifications (requests
without an ``id`` get no answer) and subscriptions (a :class:`Session` that can push
notifications, on WebSocket connections).

Errors follow the specification: ``-32700`` malformed JSON, ``-32600`` an invalid
request (or a batch too large), ``-32601`` an unknown method, ``-32602`` bad
parameters (the message names the parameter), ``-32603`` an internal error.  A handler
that raises anything else is answered with ``-32603`` and logged; the node goes on.
"""

from __future__ import annotations

import json
import sys
import traceback
from collections.abc import Awaitable, Callable
from typing import Any

MAX_REQUEST_BYTES = 16 * 1024 * 1024
"""Largest request (an HTTP body or a WebSocket message) the node reads."""
MAX_BATCH = 1000
"""Most requests in one batch."""
MAX_SUBSCRIPTIONS = 1024
"""Most live subscriptions of one connection."""
MAX_IN_FLIGHT = 64
"""Most requests of one WebSocket connection being answered at once (the next
message is read when one finishes)."""

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603


class RpcError(Exception):
    """An error answer: ``code``, ``message`` and optional ``data``."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data

    def to_json(self) -> dict[str, Any]:
        err: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            err["data"] = self.data
        return err


class Session:
    """One client connection.  ``notify`` pushes a notification (WebSocket only);
    ``closers`` run when the connection ends (subscriptions drop themselves)."""

    def __init__(self, notify: Callable[[dict[str, Any]], Awaitable[None]] | None) -> None:
        self._notify = notify
        self.subscriptions: dict[str, Callable[[], None]] = {}
        self.nursery: Any = None      # a trio nursery for subscription tasks (WebSocket)
        self._deferred: list[Callable[[], Awaitable[None]]] = []

    def defer(self, task: Callable[[], Awaitable[None]]) -> None:
        """Starts ``task`` (a subscription's notifications) once the answer to the
        current request has been sent."""
        self._deferred.append(task)

    def check_room(self) -> None:
        """Raises the error of a connection that has :data:`MAX_SUBSCRIPTIONS`."""
        if len(self.subscriptions) >= MAX_SUBSCRIPTIONS:
            raise RpcError(-32000, f"too many subscriptions on this connection "
                                   f"(limit {MAX_SUBSCRIPTIONS})")

    def subscribe(self, sid: str, cancel: Callable[[], None]) -> None:
        """Registers subscription ``sid`` (``cancel`` ends it); at most
        :data:`MAX_SUBSCRIPTIONS` per connection."""
        self.check_room()
        self.subscriptions[sid] = cancel

    def take_deferred(self) -> list[Callable[[], Awaitable[None]]]:
        out, self._deferred = self._deferred, []
        return out

    @property
    def can_subscribe(self) -> bool:
        return self._notify is not None

    async def notify(self, method: str, subscription: str, result: Any) -> None:
        if self._notify is None:
            return
        await self._notify({"jsonrpc": "2.0", "method": method,
                            "params": {"subscription": subscription, "result": result}})

    def close(self) -> None:
        for cancel in list(self.subscriptions.values()):
            cancel()
        self.subscriptions.clear()


Handler = Callable[[Session, Any], Awaitable[Any]]

_decode = json.JSONDecoder().decode      # what json.loads uses (default options)
try:      # json.dumps with its default options, without a new encoder per call
    from _json import make_encoder as _make_encoder

    _encode = _make_encoder(None, json.JSONEncoder().default, json.encoder.encode_basestring_ascii,
                            None, ": ", ", ", False, False, True)

    def dumps(obj: Any) -> str:
        """``json.dumps(obj)`` (the same text; answers are never circular: no check)."""
        return "".join(_encode(obj, 0))
except ImportError:        # pragma: no cover - CPython has it
    dumps = json.dumps


def loads(text: str | bytes) -> Any:
    """``json.loads(text)``: UTF-8 bytes that start a JSON object or array (what
    clients send) decoded directly, anything else through json.loads (BOMs, UTF-16
    and UTF-32 detection)."""
    if type(text) is bytes:
        if text[:1] in (b"{", b"[") and len(text) > 1 and text[1]:
            return _decode(text.decode("utf-8", "surrogatepass"))
    elif type(text) is str and text[:1] in ("{", "["):
        return _decode(text)
    return json.loads(text)


_ID_TYPES = frozenset((str, int, float, type(None)))
"""The types of a valid request id (as json.loads makes them: not bool)."""


def _error(id_: Any, err: RpcError) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": id_, "error": err.to_json()}


class Dispatcher:
    """Methods by name; :meth:`handle` answers the text of a request."""

    def __init__(self) -> None:
        self.methods: dict[str, Handler] = {}
        self.log: Callable[[str], None] = lambda line: print(line, file=sys.stderr,
                                                              flush=True)
        self.quick: frozenset[str] = frozenset()
        """Methods that never wait while :attr:`ready` holds: a WebSocket connection
        answers them in its reading task (no task of their own, see
        :meth:`is_quick`)."""
        self.ready: Callable[[], bool] = lambda: False

    def add(self, name: str, handler: Handler) -> None:
        self.methods[name] = handler

    async def handle(self, text: str | bytes, session: Session) -> str | None:
        """The answer to ``text`` (``None``: only notifications, nothing to answer)."""
        msg, error = self.parse(text)
        if error is not None:
            return error
        return await self.handle_parsed(msg, session)

    def parse(self, text: str | bytes) -> tuple[Any, str | None]:
        """``(the decoded request, None)``, or ``(None, the error answer)``."""
        if len(text) > MAX_REQUEST_BYTES:
            return None, json.dumps(_error(None, RpcError(
                INVALID_REQUEST, f"request too large: {len(text)} bytes "
                                 f"(limit {MAX_REQUEST_BYTES})")))
        try:
            return loads(text), None
        except (ValueError, UnicodeDecodeError) as exc:
            return None, json.dumps(_error(None, RpcError(PARSE_ERROR,
                                                          f"parse error: {exc}")))

    def is_quick(self, msg: Any) -> bool:
        """Whether decoded request ``msg`` is one call of a :attr:`quick` method and
        :attr:`ready` holds (it will not wait)."""
        if type(msg) is not dict:
            return False
        method = msg.get("method")
        return type(method) is str and method in self.quick and self.ready()

    async def handle_parsed(self, msg: Any, session: Session) -> str | None:
        """The answer to decoded request ``msg`` (see :meth:`handle`)."""
        if isinstance(msg, list):
            if not msg:
                return json.dumps(_error(None, RpcError(INVALID_REQUEST, "empty batch")))
            if len(msg) > MAX_BATCH:
                return json.dumps(_error(None, RpcError(
                    INVALID_REQUEST, f"batch too large: {len(msg)} requests "
                                     f"(limit {MAX_BATCH})")))
            answers = [a for a in [await self._one(m, session) for m in msg] if a is not None]
            return dumps(answers) if answers else None
        answer = await self._one(msg, session)
        return None if answer is None else dumps(answer)

    async def _one(self, msg: Any, session: Session) -> dict[str, Any] | None:
        if type(msg) is not dict:
            return _error(None, RpcError(INVALID_REQUEST, "invalid request: not an object"))
        id_ = msg.get("id")
        notification = "id" not in msg
        if type(id_) not in _ID_TYPES:
            return _error(None, RpcError(INVALID_REQUEST, "invalid request: bad id"))
        method = msg.get("method")
        if msg.get("jsonrpc") != "2.0" or type(method) is not str:
            return _error(id_, RpcError(INVALID_REQUEST,
                                        "invalid request: needs jsonrpc '2.0' and a method"))
        params = msg.get("params", [])
        if type(params) is not list and type(params) is not dict:
            return _error(id_, RpcError(INVALID_PARAMS, "params must be an array or object"))
        handler = self.methods.get(method)
        if handler is None:
            err = RpcError(METHOD_NOT_FOUND, f"the method {method} does not exist/is not "
                                             f"available")
            return None if notification else _error(id_, err)
        try:
            result = await handler(session, params)
        except RpcError as exc:
            return None if notification else _error(id_, exc)
        except Exception as exc:  # a bug in a handler must not stop the node
            self.log(f"internal error in {method}: {type(exc).__name__}: {exc}\n"
                     + traceback.format_exc())
            return None if notification else _error(
                id_, RpcError(INTERNAL_ERROR, f"internal error: {type(exc).__name__}: {exc}"))
        return None if notification else {"jsonrpc": "2.0", "id": id_, "result": result}
