"""``console.log`` from Solidity: Hardhat's and forge-std's ``console.sol``.

Both libraries send a STATICCALL to the console address
``0x000000000000000000636F6e736F6c652e6c6f67`` ("console.log" in ASCII) with ABI-encoded
arguments; nothing lives there, so on a chain the call is a no-op (pallet-revive
treats it as a call to an account without code).  :class:`ConsoleLogger` is a
host-call layer over ``call`` that decodes those calls and hands each line to a sink
(``print`` by default, so pytest captures it under the test like any output) before
letting the call proceed unchanged -- same gas, same result, with or without it.

Signatures: every ``log(...)`` of one to four arguments of types ``uint256``,
``int256``, ``string``, ``bool``, ``address`` (also spelled with Hardhat's historic
``uint``/``int`` selectors), ``log()``, ``logInt``/``logUint``/``logString``/
``logBool``/``logAddress``/``logBytes`` and ``logBytes1`` .. ``logBytes32``.  A first
``string`` argument with ``%s``/``%d``/``%i``/``%o``/``%x`` is used as a format, as in
Hardhat.  :func:`decode_console` works without a chain (a node can use it too).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from typing import Any

from contracts.abi import decode
from executor.revive.hashing import keccak256
from executor.revive.trace import call_callee, call_input

CONSOLE_ADDRESS = bytes.fromhex("000000000000000000636f6e736f6c652e6c6f67")

_BASIC = ("uint256", "int256", "string", "bool", "address")


def _signatures() -> dict[bytes, tuple[str, ...]]:
    table: dict[bytes, tuple[str, ...]] = {}

    def add(name: str, types: tuple[str, ...]) -> None:
        canonical = f"{name}({','.join(types)})"
        table[keccak256(canonical.encode())[:4]] = types
        legacy = f"{name}({','.join(t[:-3] if t in ('uint256', 'int256') else t for t in types)})"
        table.setdefault(keccak256(legacy.encode())[:4], types)

    add("log", ())
    for n in range(1, 5):
        for types in itertools.product(_BASIC, repeat=n):
            add("log", types)
    for name, t in (("logInt", "int256"), ("logUint", "uint256"), ("logString", "string"),
                    ("logBool", "bool"), ("logAddress", "address"), ("logBytes", "bytes")):
        add(name, (t,))
    for n in range(1, 33):
        add(f"logBytes{n}", (f"bytes{n}",))
    return table


SIGNATURES = _signatures()
"""Selector -> argument types of every console.sol function recognised."""

_FORMAT = re.compile(r"%[sdiox%]")


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def format_console(values: tuple[Any, ...]) -> str:
    """The line console.log prints for ``values`` (Hardhat's rules)."""
    if values and isinstance(values[0], str) and _FORMAT.search(values[0]):
        rest = list(values[1:])

        def fill(m: re.Match[str]) -> str:
            if m.group(0) == "%%":
                return "%"
            if not rest:
                return m.group(0)
            v = rest.pop(0)
            if m.group(0) == "%x" and isinstance(v, int):
                return hex(v)
            if m.group(0) == "%o" and isinstance(v, int):
                return oct(v)
            return _text(v)

        head = _FORMAT.sub(fill, values[0])
        return " ".join([head, *(_text(v) for v in rest)])
    return " ".join(_text(v) for v in values)


def decode_console(data: bytes) -> str | None:
    """The line a console.log call with calldata ``data`` prints; ``None`` when the
    selector is not a console.sol function or the arguments do not decode."""
    types = SIGNATURES.get(bytes(data[:4]))
    if types is None:
        return None
    try:
        values = decode(list(types), bytes(data[4:])) if types else ()
    except Exception:  # noqa: BLE001 - malformed arguments: not printed
        return None
    return format_console(values)


class ConsoleLogger:
    """A host-call layer (``call`` only) that prints console.log lines.

    ``sink`` receives each line (default ``print``); ``lines`` keeps them all."""

    host_calls = frozenset({"call"})

    def __init__(self, sink: Callable[[str], None] | None = print):
        self.sink = sink
        self.lines: list[str] = []

    def host_call(self, name: str, caller: Any, proceed: Callable[[], None]) -> None:
        if call_callee(caller) == CONSOLE_ADDRESS:
            line = decode_console(call_input(caller))
            if line is not None:
                self.lines.append(line)
                if self.sink is not None:
                    self.sink(line)
        proceed()
