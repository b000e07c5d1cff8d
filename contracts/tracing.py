"""Call traces as text, in the style of ``forge test -vvvv``::

    [31858] Token::transfer(0x70997970c51812dc3a010c7d01b50e0d17dc79c8, 10)
        ├─ emit Transfer(from: 0xf39f…, to: 0x7099…, value: 10)
        └─ ← [Return] true

The tree comes from :class:`executor.revive.trace.CallTracer`; names come from a
:class:`Names` object: contract names by address or code hash, and the ABIs to decode
call data, results, revert data and events.  ``TestChain`` provides one
(``chain.names``); a JSON-RPC node can build its own from the ABIs it knows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from contracts.abi import Abi, DecodedError, EventDef, Function, decode
from executor.revive.state import Event
from executor.revive.trace import TraceFrame

MAX_ARG_CHARS = 200
"""Longer argument lists are cut in the text (the trace itself keeps everything)."""


@dataclass
class Names:
    """What a trace printer knows: ``contracts`` address -> (name, ABI),
    ``codes`` code hash -> (name, ABI) for contracts created during a transaction,
    and ``abis`` every known ABI (for errors and events of unknown contracts)."""

    contracts: dict[bytes, tuple[str, Abi | None]] = field(default_factory=dict)
    codes: dict[bytes, tuple[str, Abi | None]] = field(default_factory=dict)
    abis: list[Abi] = field(default_factory=list)
    code_of: Callable[[bytes], bytes | None] | None = None
    """The code hash at an address (to name contracts created on the chain)."""

    def contract(self, address: bytes, code_hash: bytes | None = None
                 ) -> tuple[str | None, Abi | None]:
        hit = self.contracts.get(address)
        if hit is None and code_hash is None and self.code_of is not None:
            code_hash = self.code_of(address)
        if hit is None and code_hash is not None:
            hit = self.codes.get(code_hash)
        return hit if hit is not None else (None, None)

    def function(self, abi: Abi | None, selector: bytes) -> Function | None:
        for candidate in ([abi] if abi is not None else []) + self.abis:
            for fs in candidate.functions.values():
                for f in fs:
                    if f.selector == selector:
                        return f
        return None

    def error(self, abi: Abi | None, data: bytes) -> DecodedError | None:
        own = (abi or Abi([])).decode_error(data)
        if own is not None and own.name.startswith("0x"):
            for candidate in self.abis:
                if data[:4] in candidate.errors:
                    return candidate.decode_error(data)
        return own

    def event(self, abi: Abi | None, event: Event) -> tuple[EventDef, dict[str, Any]] | None:
        if not event.topics:
            return None
        for candidate in ([abi] if abi is not None else []) + self.abis:
            ev = candidate.events.get(event.topics[0])
            if ev is not None and not ev.anonymous:
                try:
                    return ev, ev.decode(event.topics, event.data)
                except Exception:  # noqa: BLE001 - a same-signature event of another shape
                    continue
        return None


def show(value: Any) -> str:
    """One decoded value as trace text (addresses and bytes as 0x hex)."""
    if isinstance(value, bytes | bytearray):
        return "0x" + bytes(value).hex()
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, list | tuple):
        inner = ", ".join(show(v) for v in value)
        return f"[{inner}]" if isinstance(value, list) else f"({inner})"
    return str(value)


def _cut(text: str) -> str:
    return text if len(text) <= MAX_ARG_CHARS else text[:MAX_ARG_CHARS] + "…"


def _short(address: bytes) -> str:
    return "0x" + address.hex()


def _call_text(frame: TraceFrame, names: Names) -> tuple[str, Function | None, Abi | None]:
    if frame.precompile is not None:
        return (f"PRECOMPILE::{frame.precompile}({_cut(show(frame.input))})", None, None)
    name, abi = names.contract(frame.address, frame.code_hash)
    who = name or _short(frame.address)
    value = f"{{value: {frame.value}}}" if frame.value else ""
    if frame.kind in ("create", "create2"):
        args = show(frame.input) if frame.input else ""
        if abi is not None and abi.constructor_inputs:
            try:
                args = ", ".join(show(a) for a in decode(abi.constructor_inputs, frame.input))
            except Exception:  # noqa: BLE001 - shown raw
                pass
        return f"→ new {who}@{_short(frame.address)}{value}({_cut(args)})", None, abi
    fn = names.function(abi, frame.input[:4]) if len(frame.input) >= 4 else None
    if fn is not None:
        try:
            args = ", ".join(show(a) for a in decode(fn.inputs, frame.input[4:]))
        except Exception:  # noqa: BLE001 - calldata that does not match: shown raw
            args = show(frame.input[4:])
        text = f"{who}::{fn.name}{value}({_cut(args)})"
    elif frame.input:
        text = f"{who}::fallback{value}({_cut(show(frame.input))})"
    else:
        text = f"{who}::{'receive' if frame.value else 'fallback'}{value}()"
    if frame.kind in ("staticcall", "delegatecall"):
        text += f" [{frame.kind}]"
    return text, fn, abi


def _result_text(frame: TraceFrame, fn: Function | None, abi: Abi | None,
                 names: Names) -> str:
    if frame.error is not None:
        return f"← [{frame.error}]"
    if frame.reverted:
        err = names.error(abi, frame.output)
        return "← [Revert] " + ("(no data)" if err is None else err.describe())
    if frame.kind in ("create", "create2"):
        return f"← [Return] {len(frame.output)} bytes of immutable data" if frame.output \
            else "← [Return]"
    if fn is not None and fn.outputs:
        try:
            values = decode(fn.outputs, frame.output)
            return "← [Return] " + _cut(", ".join(show(v) for v in values))
        except Exception:  # noqa: BLE001 - shown raw below
            pass
    return "← [Return]" + (f" {_cut(show(frame.output))}" if frame.output else "")


def _event_text(event: Event, abi: Abi | None, names: Names) -> str:
    decoded = names.event(abi, event)
    if decoded is None:
        topics = ", ".join(show(t) for t in event.topics)
        return f"emit <unknown>(topics: [{topics}], data: {show(event.data)})"
    ev, args = decoded
    inner = ", ".join(f"{k}: {show(v)}" for k, v in args.items())
    return f"emit {ev.name}({_cut(inner)})"


def format_trace(root: TraceFrame, names: Names, *, indent: str = "  ") -> str:
    """The tree under ``root`` as text (one line per frame, event and result)."""
    lines: list[str] = []
    _format(root, names, indent, indent + "  ", lines)
    return "\n".join(lines)


def _format(frame: TraceFrame, names: Names, first: str, rest: str, lines: list[str]) -> None:
    text, fn, abi = _call_text(frame, names)
    lines.append(f"{first}[{frame.gas_used}] {text}")
    items: Sequence[TraceFrame | Event] = frame.items
    for item in items:
        if isinstance(item, TraceFrame):
            _format(item, names, rest + "├─ ", rest + "│   ", lines)
        else:
            lines.append(f"{rest}├─ {_event_text(item, abi, names)}")
    lines.append(f"{rest}└─ {_result_text(frame, fn, abi, names)}")


def walk_failures(root: TraceFrame) -> Iterable[TraceFrame]:
    """Every frame that did not succeed, outermost first."""
    return (f for f in root.walk() if not f.success)
