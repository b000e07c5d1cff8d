"""Call traces of pallet-revive transactions: a host-call layer that records every frame.

::

    tracer = CallTracer()
    result, root = tracer.trace_call(runtime, origin, dest, data)   # or trace_instantiate
    for frame in root.walk():
        frame.kind, frame.caller, frame.address, frame.input, frame.output, frame.gas_used

:class:`CallTracer` is an ordinary :class:`~executor.linker.HostLayer`: installed with
:meth:`ReviveRuntime.with_layers <executor.revive.runtime.ReviveRuntime.with_layers>` it
sees the host calls of the top-level frame and of every nested frame.  It records the
frames from the ``call`` / ``delegate_call`` / ``instantiate`` host calls (callee,
value, input, gas, return code and output), the output of ``seal_return`` (revert data
included), the events of ``deposit_event`` and the pallet error that ended a frame
(from the host function that raised it).  Nothing is decoded here; a formatter that
knows the ABIs (``contracts.tracing``) turns a :class:`TraceFrame` tree into text, and a
JSON-RPC node can turn it into ``debug_traceTransaction``'s ``callTracer`` shape.

The top-level frame is opened and closed by :meth:`CallTracer.trace_call` /
:meth:`CallTracer.trace_instantiate` (or by the embedder with :meth:`CallTracer.begin`
and :meth:`CallTracer.end` around its own ``runtime.call``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from executor.errors import GuestFault
from executor.revive import errors as E
from executor.revive.constants import MASK32, SENTINEL, CallFlags, ReturnCode, ReturnFlags
from executor.revive.errors import ExecError, FrameReturn
from executor.revive.precompiles import precompile_at
from executor.revive.runtime import ExecResult, ReviveRuntime
from executor.revive.state import Event

A0, A1, A2, A3, A4, A5 = 7, 8, 9, 10, 11, 12

_RETURN_CODE_ERRORS = {
    ReturnCode.CALLEE_TRAPPED: E.CONTRACT_TRAPPED,
    ReturnCode.TRANSFER_FAILED: E.TRANSFER_FAILED,
    ReturnCode.OUT_OF_RESOURCES: E.OUT_OF_GAS,
    ReturnCode.DUPLICATE_CONTRACT_ADDRESS: E.DUPLICATE_CONTRACT,
}


@dataclass
class TraceFrame:
    """One frame of a call tree.

    ``kind``: ``"call"``, ``"staticcall"``, ``"delegatecall"``, ``"create"``,
    ``"create2"``; ``address`` is the callee (for a delegate call: the contract whose
    code runs; for a create: the new contract); ``precompile`` names the Ethereum
    precompile at ``address``, if any.  ``gas_limit`` is what the frame was given,
    ``gas_used`` what it (and its children) used.  ``output`` is the return or revert
    data; ``error`` the pallet error that failed the frame (``None`` if it returned).
    ``events`` are the events the frame itself emitted (also those of a frame that
    later reverted); ``children`` the frames it started; ``items`` both, in order."""

    kind: str
    caller: bytes
    address: bytes
    value: int
    input: bytes
    gas_limit: int
    depth: int
    precompile: str | None = None
    code_hash: bytes | None = None
    gas_used: int = 0
    output: bytes = b""
    reverted: bool = False
    error: str | None = None
    items: list[TraceFrame | Event] = field(default_factory=list)
    """Sub-frames and events in execution order."""

    @property
    def children(self) -> list[TraceFrame]:
        return [i for i in self.items if isinstance(i, TraceFrame)]

    @property
    def events(self) -> list[Event]:
        return [i for i in self.items if isinstance(i, Event)]

    @property
    def success(self) -> bool:
        return self.error is None and not self.reverted

    def walk(self) -> Iterator[TraceFrame]:
        """This frame and all below it, depth first in execution order."""
        yield self
        for child in self.children:
            yield from child.walk()

    def failing_frame(self) -> TraceFrame | None:
        """The deepest frame whose failure made this one fail (``None`` if it
        succeeded): where a revert came from."""
        if self.success:
            return None
        for child in reversed(self.children):
            if not child.success and (child.output == self.output or child.error
                                      and child.error == self.error):
                return child.failing_frame() or child
        return self


class CallTracer:
    """Records :class:`TraceFrame` trees; a :class:`~executor.linker.HostLayer`."""

    def __init__(self) -> None:
        self.root: TraceFrame | None = None
        self._stack: list[TraceFrame] = []

    # ---- the top-level frame ----
    def begin(self, kind: str, caller: bytes, address: bytes, value: int, data: bytes,
              gas_limit: int) -> TraceFrame:
        """Opens the top-level frame (a new trace)."""
        self.root = TraceFrame(kind, caller, address, value, bytes(data), gas_limit, 0,
                               precompile=_precompile_name(address))
        self._stack = [self.root]
        return self.root

    def end(self, result: ExecResult) -> TraceFrame:
        """Closes the top-level frame with the transaction's result."""
        root = self.root
        if root is None:
            raise RuntimeError("CallTracer.end without begin")
        root.gas_used = result.gas_used
        root.output = result.data
        root.reverted = result.reverted
        root.error = result.error
        if result.address is not None:
            root.address = result.address
        self._stack = []
        return root

    def trace_call(self, runtime: ReviveRuntime, origin: bytes, dest: bytes,
                   data: bytes = b"", **kwargs: Any) -> tuple[ExecResult, TraceFrame]:
        """``runtime.call(...)`` with this tracer installed; returns the result and the
        root frame."""
        gas = kwargs.get("gas_limit")
        self.begin("call", origin, dest, kwargs.get("value", 0), data,
                   runtime._gas_limit(gas))
        with runtime.with_layers(self):
            result = runtime.call(origin, dest, data, **kwargs)
        return result, self.end(result)

    def trace_instantiate(self, runtime: ReviveRuntime, origin: bytes, code: bytes | None,
                          **kwargs: Any) -> tuple[ExecResult, TraceFrame]:
        """``runtime.instantiate(...)`` with this tracer installed."""
        salt = kwargs.get("salt")
        self.begin("create" if salt is None else "create2", origin, bytes(20),
                   kwargs.get("value", 0), kwargs.get("data", b""),
                   runtime._gas_limit(kwargs.get("gas_limit")))
        with runtime.with_layers(self):
            result = runtime.instantiate(origin, code, **kwargs)
        return result, self.end(result)

    # ---- the layer ----
    def host_call(self, name: str, caller: Any, proceed: Callable[[], None]) -> None:
        handler = _HANDLERS.get(name)
        try:
            if handler is None:
                proceed()
            else:
                handler(self, caller, proceed)
        except ExecError as exc:
            if self._stack:
                self._stack[-1].error = exc.name
            raise

    def _open(self, kind: str, f: Any, address: bytes, value: int, data: bytes,
              gas_limit: int) -> TraceFrame:
        parent = self._stack[-1] if self._stack else None
        node = TraceFrame(kind, f.account, address, value, data, gas_limit,
                          len(self._stack), precompile=_precompile_name(address))
        if parent is not None:
            parent.items.append(node)
        self._stack.append(node)
        return node

    def _close(self, node: TraceFrame, c: Any, gas_before: int,
               output: Callable[[], bytes]) -> None:
        if self._stack and self._stack[-1] is node:
            self._stack.pop()
        node.gas_used = max(gas_before - c.gas, 0)
        rc = c.reg(A0) & MASK32
        if rc == ReturnCode.SUCCESS:
            node.output = output()
        elif rc == ReturnCode.CALLEE_REVERTED:
            node.reverted = True
            node.output = output()
        elif node.error is None:
            node.error = _RETURN_CODE_ERRORS.get(rc, E.CONTRACT_TRAPPED)


def _precompile_name(address: bytes) -> str | None:
    pre = precompile_at(address)
    return None if pre is None else pre.name


def _read(c: Any, ptr: int, n: int) -> bytes | None:
    try:
        return bytes(c.read_memory(ptr, n))
    except GuestFault:
        return None


def _hi_lo(c: Any, reg: int) -> tuple[int, int]:
    v = c.reg(reg)
    return v >> 32, v & MASK32


def _input(c: Any, f: Any, flags: int, in_ptr: int, in_len: int) -> bytes:
    if flags & (CallFlags.CLONE_INPUT | CallFlags.FORWARD_INPUT):
        return f.input or b""
    return _read(c, in_ptr, in_len) or b""


def call_callee(c: Any) -> bytes | None:
    """The callee of a ``call`` host call about to run (``None`` when the pointer is
    bad; the host function then fails the frame itself)."""
    return _read(c, c.reg(A0) & MASK32, 20)


def call_input(c: Any) -> bytes:
    """The input of a ``call`` host call about to run (empty when unreadable)."""
    flags = c.reg(A0) >> 32
    in_len, in_ptr = _hi_lo(c, A4)
    return _input(c, c.user_data, flags, in_ptr, in_len)


def _on_call(t: CallTracer, c: Any, proceed: Callable[[], None]) -> None:
    flags, callee_ptr = _hi_lo(c, A0)
    _, value_ptr = _hi_lo(c, A3)
    in_len, in_ptr = _hi_lo(c, A4)
    callee = _read(c, callee_ptr, 20)
    raw_value = _read(c, value_ptr, 32)
    f = c.user_data
    if callee is None or raw_value is None or not t._stack:
        proceed()  # the host function reports the bad pointer
        return
    read_only = bool(flags & CallFlags.READ_ONLY) or f.read_only
    node = t._open("staticcall" if read_only else "call", f, callee,
                   int.from_bytes(raw_value, "little"), _input(c, f, flags, in_ptr, in_len),
                   min(c.reg(A1), max(c.gas, 0)))
    _run_child(t, node, c, f, proceed)


def _on_delegate_call(t: CallTracer, c: Any, proceed: Callable[[], None]) -> None:
    flags, address_ptr = _hi_lo(c, A0)
    in_len, in_ptr = _hi_lo(c, A4)
    target = _read(c, address_ptr, 20)
    f = c.user_data
    if target is None or not t._stack:
        proceed()
        return
    node = t._open("delegatecall", f, target, f.value, _input(c, f, flags, in_ptr, in_len),
                   min(c.reg(A1), max(c.gas, 0)))
    _run_child(t, node, c, f, proceed)


def _run_child(t: CallTracer, node: TraceFrame, c: Any, f: Any,
               proceed: Callable[[], None]) -> None:
    gas_before = c.gas
    try:
        proceed()
    except FrameReturn as ret:  # a tail call: the callee's result ends this frame
        node.output = ret.data
        node.reverted = bool(ret.flags & ReturnFlags.REVERT)
        if t._stack and t._stack[-1] is node:
            t._stack.pop()
        raise
    except BaseException as exc:
        if t._stack and t._stack[-1] is node:
            t._stack.pop()
        if isinstance(exc, ExecError):  # refused before the callee ran (depth, ...)
            node.error = exc.name
        raise
    t._close(node, c, gas_before, lambda: f.last_output)


def _on_instantiate(t: CallTracer, c: Any, proceed: Callable[[], None]) -> None:
    _, value_ptr = _hi_lo(c, A2)
    in_len, in_ptr = _hi_lo(c, A3)
    address_ptr, salt_ptr = _hi_lo(c, A5)
    f = c.user_data
    raw = _read(c, in_ptr, in_len) if in_len >= 32 else None
    raw_value = _read(c, value_ptr, 32)
    if raw is None or raw_value is None or not t._stack:
        proceed()
        return
    code_hash, data = raw[:32], raw[32:]
    salt = None if salt_ptr == SENTINEL else _read(c, salt_ptr, 32)
    runtime = f.runtime
    try:
        address = runtime.new_address(f.account, code_hash, data, salt,
                                      runtime.state.nonce(f.account))
    except ExecError:
        address = bytes(20)
    node = t._open("create" if salt is None else "create2", f, address,
                   int.from_bytes(raw_value, "little"), data, min(c.reg(A0), max(c.gas, 0)))
    node.code_hash = code_hash
    _run_child(t, node, c, f, proceed)


def _on_seal_return(t: CallTracer, c: Any, proceed: Callable[[], None]) -> None:
    flags, ptr, length = c.reg(A0) & MASK32, c.reg(A1) & MASK32, c.reg(A2) & MASK32
    try:
        proceed()
    except FrameReturn:
        if t._stack:
            node = t._stack[-1]
            node.output = _read(c, ptr, length) or b""
            node.reverted = bool(flags & ReturnFlags.REVERT)
        raise


def _on_deposit_event(t: CallTracer, c: Any, proceed: Callable[[], None]) -> None:
    f = c.user_data
    events = f.runtime.state.events
    before = len(events)
    proceed()
    if t._stack and len(events) > before:
        t._stack[-1].items.append(events[-1])


_HANDLERS: dict[str, Callable[[CallTracer, Any, Callable[[], None]], None]] = {
    "call": _on_call,
    "delegate_call": _on_delegate_call,
    "instantiate": _on_instantiate,
    "seal_return": _on_seal_return,
    "deposit_event": _on_deposit_event,
}
