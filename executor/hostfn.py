"""Host functions: how Python values travel through guest registers and memory.

Calling convention (the same registers as an export call, execution.md 4):
argument registers are ``a0, a1, a2, a3, a4, a5, t0, t1, t2`` (at most 9),
the result goes to ``a0`` (``a1`` for the high half of a 64-bit result on
32-bit code).  Every host function gets a :class:`~executor.caller.Caller`
first.

**Plain** (no ``args`` given): the number of arguments is taken from the
Python signature; each is one register as an unsigned int of the ISA's width
(u64 on 64-bit code, u32 on Latest32).  The return value is ``None`` (``a0``
is left unchanged) or an int written to ``a0``; it must fit the register
(negative values down to ``-2**(w-1)`` are stored in two's complement).

**Typed** (``args=[...]``, optional ``result=...``): one type string per
Python argument.

* Integer types ``u8 u16 u32 u64 i8 i16 i32 i64`` are read from registers:
  one register, except ``u64``/``i64`` on 32-bit code, which take two
  consecutive registers, low half first.  Narrow types use the register's low
  bits (``i*`` sign-converted), so a sign-extended 32-bit pointer arrives
  correctly as ``u32``.
* ``"bytes"`` or ``"&[u8]"``: two registers ``(ptr, len)`` (each masked to
  u32); the function gets the raw :class:`bytes` (no codec involved).
* Any other string is a SCALE type (scalecodec syntax, see
  :mod:`executor.scale`): two registers ``(ptr, len)``; the bytes must decode
  exactly, else the guest traps.

Results: ``None``/``"()"`` (nothing written), an integer type (``a0``, and
``a0``/``a1`` for ``u64``/``i64`` on 32-bit code; it must fit the type), or a
**buffer result** -- ``"bytes"`` (raw) or a SCALE type (encoded).  A buffer
result adds two argument registers after the declared arguments:
``out_ptr`` and ``out_len_ptr``.  ``out_len_ptr`` points to a little-endian
u32 that holds the capacity of ``out_ptr`` on entry.  The host then sets
``a0`` to a status:

* ``OUTPUT_OK`` (0): the encoded bytes were written to ``out_ptr`` and their
  length to ``*out_len_ptr``;
* ``OUTPUT_BUFFER_TOO_SMALL`` (1): nothing was written to ``out_ptr``;
  ``*out_len_ptr`` now holds the length needed (call again with a bigger
  buffer);
* if ``out_ptr`` is ``SENTINEL`` (``0xFFFFFFFF``) the output is discarded:
  status 0, nothing is read or written.

A bad guest pointer anywhere (arguments, ``out_ptr``, ``out_len_ptr``) makes the
call trap at the ``ecalli`` (:class:`~executor.errors.GuestFault` becomes a
:class:`~executor.errors.Trap`).

**Async** host functions (``async def``) follow the same conventions; they run
only under :class:`executor.aio.Executor`, which awaits them in the calling trio
task while the guest waits at its ``ecalli`` (:meth:`HostFunction.compile_async`).
A synchronous :meth:`Instance.call <executor.instance.Instance.call>` that reaches
one fails with :class:`~executor.errors.HostError`.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from executor.errors import GuestFault

ARG_REGS = (7, 8, 9, 10, 11, 12, 2, 3, 4)
OUTPUT_OK = 0
OUTPUT_BUFFER_TOO_SMALL = 1
SENTINEL = 0xFFFFFFFF
MASK32 = (1 << 32) - 1
MASK64 = (1 << 64) - 1

INT_TYPES: dict[str, tuple[int, bool]] = {
    "u8": (8, False), "u16": (16, False), "u32": (32, False), "u64": (64, False),
    "i8": (8, True), "i16": (16, True), "i32": (32, True), "i64": (64, True),
}
BYTES_TYPES = ("bytes", "&[u8]")
UNIT_TYPES = ("()", "unit")

Thunk = Callable[[Any], None]
"""A compiled host function: called with the Caller, does all register work."""

AsyncThunk = Callable[[Any], Awaitable[None]]
"""A compiled ``async def`` host function (see :meth:`HostFunction.compile_async`)."""

Reader = Callable[[Any], tuple[list[Any], tuple[int, int] | None]]
"""Reads a host function's arguments: ``(values, (out_ptr, out_len_ptr) or None)``."""

Writer = Callable[[Any, Any, tuple[int, int] | None], None]
"""Stores a host function's result (given what the reader returned second)."""


def is_async_function(fn: Callable[..., Any]) -> bool:
    """Whether ``fn`` is an ``async def`` function (also through partials)."""
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        type(fn).__call__)  # objects with an ``async def __call__``


def _norm(t: str) -> str:
    return t.strip()


def int_range(bits: int, signed: bool) -> tuple[int, int]:
    return (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)


def to_signed(value: int, bits: int) -> int:
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >> (bits - 1) else value


def reg_count(type_string: str, is_64_bit: bool) -> int:
    """Registers one value of ``type_string`` takes as an argument."""
    t = _norm(type_string)
    if t in INT_TYPES:
        return 2 if INT_TYPES[t][0] == 64 and not is_64_bit else 1
    return 2


def positional_arity(fn: Callable[..., Any]) -> int:
    """How many values ``fn`` takes after the Caller (plain host functions)."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"cannot read the signature of {fn!r}; give args=[...]") from exc
    n = 0
    for p in sig.parameters.values():
        if p.kind is p.VAR_POSITIONAL:
            raise ValueError(f"{fn!r} takes *args; give args=[...] to fix the argument count")
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty:
            n += 1
    if n == 0:
        raise ValueError(f"host function {fn!r} must take the Caller as its first argument")
    return n - 1


@dataclass(frozen=True)
class HostFunction:
    """A host function as defined in a :class:`~executor.linker.Linker`."""

    name: str
    fn: Callable[..., Any]
    args: tuple[str, ...] | None = None
    result: str | None = None
    raw: bool = False

    def __post_init__(self) -> None:
        if self.raw:
            return
        if self.args is None:
            n = positional_arity(self.fn)
            if n > len(ARG_REGS):
                raise ValueError(f"host function {self.name!r} takes {n} arguments; at most "
                                 f"{len(ARG_REGS)} fit in registers")
        else:
            n = len(self.args)
            arity = _declared_arity(self.fn)
            if arity is not None and arity != n:
                raise ValueError(f"host function {self.name!r} takes {arity} arguments after "
                                 f"the Caller but {n} types are declared")
            for t in self.args:
                _check_type(t, self.name)
        if self.result is not None and _norm(self.result) not in UNIT_TYPES:
            _check_type(self.result, self.name)
        for is64 in (True, False):
            need = self.registers(is64)
            if need > len(ARG_REGS):
                raise ValueError(f"host function {self.name!r} needs {need} argument registers"
                                 f" on {'64' if is64 else '32'}-bit code; at most "
                                 f"{len(ARG_REGS)} exist")

    @property
    def buffer_result(self) -> bool:
        r = self.result
        return r is not None and _norm(r) not in UNIT_TYPES and _norm(r) not in INT_TYPES

    def registers(self, is_64_bit: bool) -> int:
        """Argument registers used (including out_ptr/out_len_ptr)."""
        if self.raw:
            return 0
        if self.args is None:
            return positional_arity(self.fn)
        n = sum(reg_count(t, is_64_bit) for t in self.args)
        return n + (2 if self.buffer_result else 0)

    @property
    def is_async(self) -> bool:
        """Whether the function is ``async def`` (serviced by :mod:`executor.aio` only)."""
        return is_async_function(self.fn)

    def compile(self, is_64_bit: bool) -> Thunk:
        """The thunk the call loop runs for this function on code of this width."""
        if self.is_async:
            name = self.name

            def async_in_sync_call(c: Any) -> None:
                raise TypeError(f"host function {name!r} is async; call the export through "
                                f"executor.aio.Executor")
            return async_in_sync_call
        if self.raw:
            return self.fn  # called with the Caller alone; the call loop ignores results
        if self.args is None and self.result is None:
            return _plain_thunk(self.fn, positional_arity(self.fn), is_64_bit)
        return _typed_thunk(self, is_64_bit)

    def compile_async(self, is_64_bit: bool) -> AsyncThunk:
        """For an ``async def`` function: a coroutine function of the Caller that
        reads the arguments, awaits the function and stores the result, with the
        same conventions as :meth:`compile`.  The registers are read before the
        await and the result is written after it; the guest must stay paused at
        its ``ecalli`` in between."""
        fn = self.fn
        if self.raw:
            async def raw_athunk(c: Any) -> None:
                await fn(c)
            return raw_athunk
        read, write = _marshal(self, is_64_bit)

        async def athunk(c: Any) -> None:
            values, out = read(c)
            write(c, await fn(c, *values), out)
        return athunk


def _declared_arity(fn: Callable[..., Any]) -> int | None:
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return None
    if any(p.kind is p.VAR_POSITIONAL for p in sig.parameters.values()):
        return None
    return positional_arity(fn)


def _check_type(t: str, name: str) -> None:
    if not isinstance(t, str) or not t.strip():
        raise ValueError(f"host function {name!r}: invalid type {t!r}")
    t = _norm(t)
    if t in INT_TYPES or t in BYTES_TYPES:
        return
    from executor.scale import scale_type

    try:
        scale_type(t)
    except Exception as exc:  # scalecodec raises assorted errors for bad strings
        raise ValueError(f"host function {name!r}: unknown SCALE type {t!r}") from exc


def _plain_thunk(fn: Callable[..., Any], n: int, is_64_bit: bool) -> Thunk:
    """Specialised closures for plain functions (the hot path: no loops, no lists)."""
    mask = MASK64 if is_64_bit else MASK32
    low = -(1 << 63) if is_64_bit else -(1 << 31)

    def store(c: Any, r: Any) -> None:
        if r.__class__ is not int:
            if isinstance(r, bool):
                r = int(r)
            elif not isinstance(r, int):
                raise TypeError(f"a host function returned {type(r).__name__}, expected an int "
                                f"or None")
        if not low <= r <= mask:
            raise ValueError(f"result {r} does not fit a {mask.bit_length()}-bit register; "
                             f"declare result='u64' for a two-register result")
        c._set_reg(7, r & mask)

    if n == 0:
        def thunk0(c: Any) -> None:
            r = fn(c)
            if r is not None:
                if r.__class__ is int and 0 <= r <= mask:
                    c._set_reg(7, r)
                else:
                    store(c, r)
        return thunk0
    if n == 1:
        def thunk1(c: Any) -> None:
            r = fn(c, c._reg(7))
            if r is not None:
                if r.__class__ is int and 0 <= r <= mask:
                    c._set_reg(7, r)
                else:
                    store(c, r)
        return thunk1
    if n == 2:
        def thunk2(c: Any) -> None:
            g = c._reg
            r = fn(c, g(7), g(8))
            if r is not None:
                if r.__class__ is int and 0 <= r <= mask:
                    c._set_reg(7, r)
                else:
                    store(c, r)
        return thunk2
    regs = ARG_REGS[:n]

    def thunkn(c: Any) -> None:
        g = c._reg
        r = fn(c, *[g(x) for x in regs])
        if r is not None:
            store(c, r)
    return thunkn


def _reader(t: str, is_64_bit: bool) -> Callable[[Any, Sequence[int]], Any]:
    """A function (caller, register values) -> Python argument for one type."""
    t = _norm(t)
    if t in INT_TYPES:
        bits, signed = INT_TYPES[t]
        if bits == 64 and not is_64_bit:
            def pair(c: Any, v: Sequence[int]) -> Any:
                x = (v[0] & MASK32) | ((v[1] & MASK32) << 32)
                return to_signed(x, 64) if signed else x
            return pair
        if signed:
            return lambda c, v: to_signed(v[0], bits)
        m = (1 << bits) - 1
        return lambda c, v: v[0] & m
    if t in BYTES_TYPES:
        return lambda c, v: c.read_memory(v[0] & MASK32, v[1] & MASK32)
    from executor.scale import scale_type

    st = scale_type(t)

    def scale(c: Any, v: Sequence[int]) -> Any:
        data = c.read_memory(v[0] & MASK32, v[1] & MASK32)
        try:
            return st.decode(data)
        except Exception as exc:
            raise GuestFault(f"cannot decode a {t!r} argument from {data.hex() or 'no bytes'}: "
                             f"{exc}") from exc
    return scale


def _int_result(t: str, is_64_bit: bool) -> Callable[[Any, Any], None]:
    bits, signed = INT_TYPES[t]
    lo, hi = int_range(bits, signed)

    def write(c: Any, r: Any) -> None:
        if isinstance(r, bool):
            r = int(r)
        if not isinstance(r, int):
            raise TypeError(f"a host function returned {type(r).__name__}, expected {t}")
        if not lo <= r <= hi:
            raise ValueError(f"result {r} does not fit {t}")
        if bits == 64 and not is_64_bit:
            c._set_reg(7, r & MASK32)
            c._set_reg(8, (r >> 32) & MASK32)
        else:
            c._set_reg(7, r & MASK64)
    return write


def _buffer_result(t: str) -> Callable[[Any, Any, int, int], None]:
    t = _norm(t)
    if t in BYTES_TYPES:
        def enc_bytes(r: Any) -> bytes:
            if not isinstance(r, bytes | bytearray | memoryview):
                raise TypeError(f"a host function returned {type(r).__name__}, expected bytes")
            return bytes(r)
        encode: Callable[[Any], bytes] = enc_bytes
    else:
        from executor.scale import scale_type

        encode = scale_type(t).encode

    def write(c: Any, r: Any, out_ptr: int, out_len_ptr: int) -> None:
        data = encode(r)
        if out_ptr == SENTINEL:
            c._set_reg(7, OUTPUT_OK)
            return
        cap = c.read_u32(out_len_ptr)
        if len(data) > cap:
            c.write_u32(out_len_ptr, len(data))
            c._set_reg(7, OUTPUT_BUFFER_TOO_SMALL)
            return
        c.write_memory(out_ptr, data)
        c.write_u32(out_len_ptr, len(data))
        c._set_reg(7, OUTPUT_OK)
    return write


def _marshal(h: HostFunction, is_64_bit: bool) -> tuple[Reader, Writer]:
    """The argument reader and result writer of a (typed or plain) host function."""
    fn = h.fn
    types = h.args if h.args is not None else ("u64" if is_64_bit else "u32",) * \
        positional_arity(fn)
    plan: list[tuple[Callable[[Any, Sequence[int]], Any], tuple[int, ...]]] = []
    k = 0
    for t in types:
        n = reg_count(t, is_64_bit)
        plan.append((_reader(t, is_64_bit), ARG_REGS[k:k + n]))
        k += n
    out_regs = ARG_REGS[k:k + 2]
    result = None if h.result is None else _norm(h.result)
    if result is None:
        mask = MASK64 if is_64_bit else MASK32
        low = -(1 << (mask.bit_length() - 1))

        def plain_result(c: Any, r: Any, out: tuple[int, int] | None) -> None:
            if r is None:
                return
            if isinstance(r, bool):
                r = int(r)
            if not isinstance(r, int):
                raise TypeError(f"a host function returned {type(r).__name__}, expected an int "
                                f"or None")
            if not low <= r <= mask:
                raise ValueError(f"result {r} does not fit a {mask.bit_length()}-bit register")
            c._set_reg(7, r & mask)
        return _plan_reader(plan, None), plain_result
    if result in UNIT_TYPES:
        def unit_result(c: Any, r: Any, out: tuple[int, int] | None) -> None:
            return None
        return _plan_reader(plan, None), unit_result
    if result in INT_TYPES:
        write_int = _int_result(result, is_64_bit)

        def int_result(c: Any, r: Any, out: tuple[int, int] | None) -> None:
            write_int(c, r)
        return _plan_reader(plan, None), int_result
    write_buffer = _buffer_result(result)

    def buffer_result(c: Any, r: Any, out: tuple[int, int] | None) -> None:
        assert out is not None
        write_buffer(c, r, out[0], out[1])
    return _plan_reader(plan, (out_regs[0], out_regs[1])), buffer_result


def _plan_reader(plan: list[tuple[Callable[[Any, Sequence[int]], Any], tuple[int, ...]]],
                 out_regs: tuple[int, int] | None) -> Reader:
    if out_regs is None:
        def read(c: Any) -> tuple[list[Any], tuple[int, int] | None]:
            g = c._reg
            return [reader(c, [g(x) for x in regs]) for reader, regs in plan], None
        return read
    out_ptr_reg, out_len_reg = out_regs

    def read_with_output(c: Any) -> tuple[list[Any], tuple[int, int] | None]:
        g = c._reg
        out = (g(out_ptr_reg) & MASK32, g(out_len_reg) & MASK32)
        return [reader(c, [g(x) for x in regs]) for reader, regs in plan], out
    return read_with_output


def _typed_thunk(h: HostFunction, is_64_bit: bool) -> Thunk:
    fn = h.fn
    read, write = _marshal(h, is_64_bit)

    def thunk(c: Any) -> None:
        values, out = read(c)
        write(c, fn(c, *values), out)
    return thunk
