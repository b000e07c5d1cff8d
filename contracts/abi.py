"""Solidity JSON ABIs: selectors, argument encoding, result/event/error decoding.

All encoding and decoding goes through the ``eth-abi`` library; this module only reads
the JSON ABI (the list of ``{"type": "function", "name": ..., "inputs": [...]}``
entries solc emits) and converts values at the edges: ``address`` values are 20-byte
``bytes`` both ways (objects with an ``.address`` attribute are accepted as
arguments), everything else is as ``eth-abi`` has it (``int``, ``bool``, ``str``,
``bytes``, tuples and lists).
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_abi.abi import decode as abi_decode
from eth_abi.abi import encode as abi_encode
from eth_abi.grammar import BasicType, TupleType, parse

from executor.revive.hashing import keccak256

ERROR_SELECTOR = bytes.fromhex("08c379a0")  # Error(string)
PANIC_SELECTOR = bytes.fromhex("4e487b71")  # Panic(uint256)

AbiSource = str | Path | Sequence[Mapping[str, Any]]


def canonical_type(param: Mapping[str, Any]) -> str:
    """The canonical type string of a JSON ABI parameter (tuples spelled out)."""
    t = str(param["type"])
    if t.startswith("tuple"):
        inner = ",".join(canonical_type(c) for c in param.get("components", ()))
        return f"({inner}){t[len('tuple'):]}"
    return t


def to_abi_value(type_str: str, value: Any) -> Any:
    """A Python value ready for ``eth_abi.encode`` (``.address`` objects -> bytes)."""
    return _to_abi(parse(type_str), value)


def _to_abi(t: Any, value: Any) -> Any:
    if t.is_array:
        return [_to_abi(t.item_type, v) for v in value]
    if isinstance(t, TupleType):
        return tuple(_to_abi(c, v) for c, v in zip(t.components, value, strict=True))
    if isinstance(t, BasicType) and t.base == "address":
        address = getattr(value, "address", value)
        if isinstance(address, bytearray | memoryview):
            return bytes(address)
        return address  # bytes, a hex string, or something eth-abi rejects by name
    return value


def from_abi_value(type_str: str, value: Any) -> Any:
    """A decoded ``eth-abi`` value with addresses as 20-byte ``bytes``."""
    return _from_abi(parse(type_str), value)


def _from_abi(t: Any, value: Any) -> Any:
    if t.is_array:
        return [_from_abi(t.item_type, v) for v in value]
    if isinstance(t, TupleType):
        return tuple(_from_abi(c, v) for c, v in zip(t.components, value, strict=True))
    if isinstance(t, BasicType) and t.base == "address":
        return bytes.fromhex(value[2:])
    return value


def encode(types: Sequence[str], values: Sequence[Any]) -> bytes:
    """``eth_abi.encode`` with :func:`to_abi_value` applied (one-word static types
    such as ``uint256``, ``address``, ``bool``, ``bytes32`` are encoded here directly
    when every value is plainly in range, with the bytes ``eth-abi`` gives; anything
    else goes to ``eth-abi``, which also raises the errors)."""
    if len(types) != len(values):
        raise TypeError(f"expected {len(types)} values ({', '.join(types)}), got {len(values)}")
    codecs = _word_codecs(tuple(types))
    if codecs is not None:
        words = [enc(v) for (enc, _), v in zip(codecs, values, strict=True)]
        if None not in words:
            return b"".join(words)  # type: ignore[arg-type]
    return abi_encode(list(types), [to_abi_value(t, v) for t, v in zip(types, values,
                                                                           strict=True)])


def decode(types: Sequence[str], data: bytes) -> tuple[Any, ...]:
    """``eth_abi.decode`` with :func:`from_abi_value` applied (one-word static types
    whose words are well formed are decoded here directly, to the values ``eth-abi``
    gives; anything else goes to ``eth-abi``, which also raises the errors)."""
    codecs = _word_codecs(tuple(types))
    if codecs is not None and len(data) == 32 * len(codecs):
        out = [dec(data[32 * i:32 * i + 32]) for i, (_, dec) in enumerate(codecs)]
        if _BAD not in out:
            return tuple(out)
    values = abi_decode(list(types), data)
    return tuple(from_abi_value(t, v) for t, v in zip(types, values, strict=True))


# ---- the one-word fast path of encode/decode ----
_BAD = object()
"""What a word decoder returns for a word ``eth-abi`` would reject (strict padding)."""
_ZERO12 = bytes(12)
_WORD_TYPE = re.compile(r"(uint|int)(\d*)|address|bool|bytes(\d+)")
WordCodec = tuple[Callable[[Any], bytes | None], Callable[[bytes], Any]]


def _uint_codec(bits: int) -> WordCodec:
    limit = 1 << bits

    def enc(v: Any) -> bytes | None:
        return v.to_bytes(32, "big") if type(v) is int and 0 <= v < limit else None

    def dec(w: bytes) -> Any:
        v = int.from_bytes(w, "big")
        return v if v < limit else _BAD

    return enc, dec


def _int_codec(bits: int) -> WordCodec:
    low, high = -(1 << (bits - 1)), 1 << (bits - 1)

    def enc(v: Any) -> bytes | None:
        return v.to_bytes(32, "big", signed=True) if type(v) is int and low <= v < high \
            else None

    def dec(w: bytes) -> Any:
        v = int.from_bytes(w, "big", signed=True)
        return v if low <= v < high else _BAD

    return enc, dec


def _address_enc(v: Any) -> bytes | None:
    a = getattr(v, "address", v)
    return _ZERO12 + a if type(a) is bytes and len(a) == 20 else None


def _address_dec(w: bytes) -> Any:
    return w[12:] if w[:12] == _ZERO12 else _BAD


_TRUE, _FALSE = (1).to_bytes(32, "big"), bytes(32)


def _bool_enc(v: Any) -> bytes | None:
    return (_TRUE if v else _FALSE) if type(v) is bool else None


def _bool_dec(w: bytes) -> Any:
    return True if w == _TRUE else False if w == _FALSE else _BAD


def _bytes_codec(n: int) -> WordCodec:
    pad = bytes(32 - n)

    def enc(v: Any) -> bytes | None:
        return v + pad if type(v) is bytes and len(v) == n else None

    def dec(w: bytes) -> Any:
        return w[:n] if w[n:] == pad else _BAD

    return enc, dec


@functools.lru_cache(maxsize=1024)
def _word_codecs(types: tuple[str, ...]) -> tuple[WordCodec, ...] | None:
    """Per type, a one-word encoder and decoder; ``None`` if any type is not a
    one-word static type."""
    codecs: list[WordCodec] = []
    for t in types:
        m = _WORD_TYPE.fullmatch(t)
        if m is None:
            return None
        if m.group(1):
            bits = int(m.group(2) or 256)
            if bits % 8 or not 8 <= bits <= 256:
                return None
            codecs.append(_uint_codec(bits) if m.group(1) == "uint" else _int_codec(bits))
        elif t == "address":
            codecs.append((_address_enc, _address_dec))
        elif t == "bool":
            codecs.append((_bool_enc, _bool_dec))
        else:
            n = int(m.group(3))
            if not 1 <= n <= 32:
                return None
            codecs.append(_bytes_codec(n))
    return tuple(codecs)


@dataclass(frozen=True)
class Function:
    """One ABI function: ``selector`` is ``keccak256(signature)[:4]``."""

    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    state_mutability: str

    @property
    def signature(self) -> str:
        return f"{self.name}({','.join(self.inputs)})"

    @functools.cached_property
    def selector(self) -> bytes:
        return keccak256(self.signature.encode())[:4]

    def encode_call(self, args: Sequence[Any]) -> bytes:
        return self.selector + encode(self.inputs, args)

    def decode_result(self, data: bytes) -> Any:
        """``None`` for no outputs, the value for one, a tuple for several."""
        if not self.outputs:
            return None
        values = decode(self.outputs, data)
        return values[0] if len(values) == 1 else values


@dataclass(frozen=True)
class EventParam:
    name: str
    type: str
    indexed: bool


@dataclass(frozen=True)
class EventDef:
    """One ABI event; ``topic`` is ``keccak256(signature)`` (topic 0 unless anonymous)."""

    name: str
    params: tuple[EventParam, ...]
    anonymous: bool = False

    @property
    def signature(self) -> str:
        return f"{self.name}({','.join(p.type for p in self.params)})"

    @functools.cached_property
    def topic(self) -> bytes:
        return keccak256(self.signature.encode())

    @functools.cached_property
    def _layout(self) -> tuple[tuple[str, ...], tuple[tuple[str, bool, bool, str], ...]]:
        """The types of the data part, and per parameter: (name, indexed, indexed
        and its topic is its value, type) -- worked out once per event."""
        plain = tuple(p.type for p in self.params if not p.indexed)
        fields = tuple((p.name or f"arg{i}", p.indexed, p.indexed and _is_static_word(p.type),
                        p.type) for i, p in enumerate(self.params))
        return plain, fields

    def decode(self, topics: Sequence[bytes], data: bytes) -> dict[str, Any]:
        """Argument values by name.  Indexed dynamic values (strings, arrays, ...)
        are only present as their 32-byte hash."""
        plain, fields = self._layout
        indexed = list(topics if self.anonymous else topics[1:])
        values = iter(decode(plain, data))
        out: dict[str, Any] = {}
        for name, is_indexed, static, type_str in fields:
            if is_indexed:
                topic = indexed.pop(0)
                out[name] = decode((type_str,), topic)[0] if static else topic
            else:
                out[name] = next(values)
        return out


@functools.lru_cache(maxsize=1024)
def _is_static_word(type_str: str) -> bool:
    """Whether an indexed parameter of this type is its value (not its hash) in a topic."""
    t = parse(type_str)
    if not isinstance(t, BasicType) or t.is_array or t.base == "string":
        return False
    return t.base != "bytes" or t.sub is not None


@dataclass(frozen=True)
class ErrorDef:
    """One custom error; ``selector`` as for functions."""

    name: str
    inputs: tuple[str, ...]
    names: tuple[str, ...]

    @property
    def signature(self) -> str:
        return f"{self.name}({','.join(self.inputs)})"

    @property
    def selector(self) -> bytes:
        return keccak256(self.signature.encode())[:4]


PANIC_MEANINGS = {
    0x00: "generic compiler panic",
    0x01: "assert(false)",
    0x11: "arithmetic underflow or overflow",
    0x12: "division or modulo by zero",
    0x21: "conversion to an invalid enum value",
    0x22: "incorrectly encoded storage byte array",
    0x31: "pop() on an empty array",
    0x32: "array index out of bounds",
    0x41: "out of memory (too much memory allocated)",
    0x51: "call to a zero-initialized internal function",
}
"""Solidity's ``Panic(uint256)`` codes (Solidity docs, "Panic via assert and Error via
require")."""


@dataclass(frozen=True)
class DecodedError:
    """Decoded revert data: ``Error(string)``, ``Panic(uint256)`` or a custom error
    (``names`` are its parameter names when the ABI has them)."""

    name: str
    args: tuple[Any, ...]
    names: tuple[str, ...] = ()

    def describe(self) -> str:
        """Like ``str()``, with a panic's meaning and a custom error's argument names:
        ``"Error: not enough"``, ``"Panic(0x11): arithmetic underflow or overflow"``,
        ``"NotAllowed(who: 0x..., code: 7)"``."""
        if self.name == "Error" and len(self.args) == 1:
            return f"Error: {self.args[0]}"
        if self.name == "Panic" and len(self.args) == 1:
            meaning = PANIC_MEANINGS.get(self.args[0], "unknown panic code")
            return f"Panic(0x{self.args[0]:02x}): {meaning}"
        if self.names and len(self.names) == len(self.args) and all(self.names):
            inner = ", ".join(f"{n}: {_show(a)}" for n, a in zip(self.names, self.args,
                                                                  strict=True))
            return f"{self.name}({inner})"
        return str(self)

    def __str__(self) -> str:
        if self.name == "Error" and len(self.args) == 1:
            return str(self.args[0])
        if self.name == "Panic" and len(self.args) == 1:
            return f"Panic(0x{self.args[0]:02x})"
        return f"{self.name}({', '.join(_show(a) for a in self.args)})"


def _show(value: Any) -> str:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, str):
        return repr(value)
    return str(value)


class Abi:
    """A contract's JSON ABI (a list of entries, a JSON string or a ``.json``/``.abi``
    file path)."""

    def __init__(self, source: AbiSource):
        entries = _load(source)
        self.functions: dict[str, list[Function]] = {}
        self.events: dict[bytes, EventDef] = {}
        self.errors: dict[bytes, ErrorDef] = {}
        self.constructor_inputs: tuple[str, ...] = ()
        self.has_receive = False
        for e in entries:
            kind = e.get("type", "function")
            if kind == "function":
                f = Function(str(e["name"]), tuple(canonical_type(p) for p in e.get("inputs", ())),
                             tuple(canonical_type(p) for p in e.get("outputs", ())),
                             str(e.get("stateMutability", "nonpayable")))
                self.functions.setdefault(f.name, []).append(f)
            elif kind == "event":
                ev = EventDef(str(e["name"]), tuple(
                    EventParam(str(p.get("name", "")), canonical_type(p), bool(p.get("indexed")))
                    for p in e.get("inputs", ())), bool(e.get("anonymous", False)))
                self.events[ev.topic] = ev
            elif kind == "error":
                er = ErrorDef(str(e["name"]), tuple(canonical_type(p) for p in e.get("inputs", ())),
                              tuple(str(p.get("name", "")) for p in e.get("inputs", ())))
                self.errors[er.selector] = er
            elif kind == "constructor":
                self.constructor_inputs = tuple(canonical_type(p) for p in e.get("inputs", ()))
            elif kind == "receive":
                self.has_receive = True

    def function(self, name: str, nargs: int | None = None) -> Function:
        """The function ``name`` (a name or a full signature ``"f(uint256)"``); overloads
        are told apart by ``nargs``."""
        if "(" in name:
            for fs in self.functions.values():
                for f in fs:
                    if f.signature == name.replace(" ", ""):
                        return f
            raise KeyError(f"the ABI has no function {name}")
        candidates = self.functions.get(name, [])
        if nargs is not None and len(candidates) > 1:
            candidates = [f for f in candidates if len(f.inputs) == nargs]
        if not candidates:
            raise KeyError(f"the ABI has no function {name!r}"
                           + (f" taking {nargs} arguments" if nargs is not None else ""))
        if len(candidates) > 1:
            sigs = ", ".join(f.signature for f in candidates)
            raise KeyError(f"{name!r} is overloaded ({sigs}); use the full signature")
        return candidates[0]

    def decode_error(self, data: bytes) -> DecodedError | None:
        """Revert data as a :class:`DecodedError`; ``None`` for empty data; unknown
        selectors decode to ``DecodedError("0x<selector>", (rest,))``."""
        if not data:
            return None
        selector, body = data[:4], data[4:]
        try:
            if selector == ERROR_SELECTOR:
                return DecodedError("Error", decode(["string"], body))
            if selector == PANIC_SELECTOR:
                return DecodedError("Panic", decode(["uint256"], body))
            er = self.errors.get(selector)
            if er is not None:
                return DecodedError(er.name, decode(er.inputs, body), er.names)
        except Exception:  # noqa: BLE001 - malformed revert data is shown raw below
            pass
        return DecodedError("0x" + selector.hex(), (body,))


def _load(source: AbiSource) -> list[Mapping[str, Any]]:
    if isinstance(source, Path) or (isinstance(source, str) and not source.lstrip()
                                    .startswith("[")):
        source = Path(source).read_text()
    if isinstance(source, str):
        loaded = json.loads(source)
        if isinstance(loaded, dict) and "abi" in loaded:
            loaded = loaded["abi"]
        return list(loaded)
    return list(source)
