"""The pallet-revive host functions (spec section 3) as raw host functions of a
:class:`~executor.linker.Linker`.

Each function reads its arguments straight from the registers (``a0..a5`` =
``r7..r12``; ``u32`` arguments are the low 32 bits, packed pairs are
``(hi << 32) | lo``), and the :class:`~executor.revive.frame.Frame` it runs for is the
instance's ``user_data``.  Every call first pays ``CostTable.host_fn``; functions marked
mutating then fail with ``StateChangeDenied`` in a read-only frame.  A function ends
its frame by raising :class:`~executor.revive.errors.ExecError` (the pallet error) or
:class:`~executor.revive.errors.FrameReturn` (``seal_return``); a bad guest pointer
raises :class:`~executor.errors.GuestFault` (error ``OutOfBounds``).

The bodies reach the guest through the frame's :class:`~executor.revive.guest.Guest`
(direct views of registers, gas and memory, with the Caller's checks) rather than
through the :class:`~executor.caller.Caller`'s generic accessors: a transfer makes 17
host calls, and that path is most of its cost.  :func:`charge` and
:func:`write_output` keep the Caller-based form for host-call layers.

The runtime is reached only through the frame's :class:`~executor.revive.frame.Ext`
(``frame.runtime``): this module does not import :mod:`executor.revive.runtime`.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable
from dataclasses import replace

from executor.caller import Caller
from executor.linker import Linker
from executor.revive import errors as E
from executor.revive.constants import (
    ALL_CALL_FLAGS,
    EMPTY_CODE_HASH,
    MASK32,
    MASK64,
    SENTINEL,
    CallFlags,
    ReturnCode,
    ReturnFlags,
    StorageFlags,
)
from executor.revive.errors import ExecError, FrameReturn
from executor.revive.frame import Frame, FrameResult
from executor.revive.guest import (
    Guest,
    check_write,
    out_of_gas,
    read,
    read_u32,
    write,
    write_u32,
)
from executor.revive.guest import charge as pay
from executor.revive.hashing import keccak256
from executor.revive.state import Event, StorageKey

HostBody = Callable[[Guest, Frame], None]

_HOST: dict[str, tuple[HostBody, bool, str | None]] = {}

A0, A1, A2, A3, A4, A5 = 7, 8, 9, 10, 11, 12

# plain ints: IntEnum/IntFlag members cost an attribute lookup (and operators
# microseconds) on every use
_SUCCESS = int(ReturnCode.SUCCESS)
_KEY_NOT_FOUND = int(ReturnCode.KEY_NOT_FOUND)
_CALLEE_REVERTED = int(ReturnCode.CALLEE_REVERTED)
_REVERT = int(ReturnFlags.REVERT)
_TRANSIENT = int(StorageFlags.TRANSIENT)
_CLONE_INPUT = int(CallFlags.CLONE_INPUT)
_FORWARD_INPUT = int(CallFlags.FORWARD_INPUT)
_TAIL_CALL = int(CallFlags.TAIL_CALL)
_ALLOW_REENTRY = int(CallFlags.ALLOW_REENTRY)
_READ_ONLY = int(CallFlags.READ_ONLY)
_ZEROS = memoryview(bytes(1 << 16))


def host(name: str, *, mutating: bool = False,
         cost: str | None = None) -> Callable[[HostBody], HostBody]:
    """Registers ``fn(guest, frame)`` as the host function ``name``.  ``cost`` names
    the :class:`~executor.revive.costs.CostTable` entry the function pays before
    anything else: it is charged together with ``host_fn`` (one charge; only for
    functions that are not ``mutating``, so nothing can fail between the two)."""
    if cost is not None and mutating:
        raise ValueError("a mutating host function checks the frame between its charges")

    def register(fn: HostBody) -> HostBody:
        _HOST[name] = (fn, mutating, cost)
        return fn
    return register


def host_function_names() -> list[str]:
    """The import names this runtime implements."""
    return sorted(_HOST)


def build_linker() -> Linker:
    """A linker with every host function of this module."""
    linker = Linker()
    for name, (fn, mutating, cost) in _HOST.items():
        linker.define_raw(name, _wrap(fn, mutating, cost))
    return linker


def _wrap(fn: HostBody, mutating: bool, cost: str | None) -> Callable[[Caller], None]:
    """The raw host function: the frame's :class:`Guest` (bound at the first host call
    of a frame the runtime did not bind), the ``host_fn`` charge (plus ``cost``), the
    read-only check of a mutating function, then ``fn``."""
    def thunk(c: Caller) -> None:
        f: Frame = c.user_data
        g = f.guest
        if g is None:
            g = f.guest = Guest(c)
        gas = g.gas
        left = gas[0] - f.runtime.costs.host_fn
        if left < 0:
            out_of_gas(gas, left)
        gas[0] = left
        if mutating and f.read_only:
            raise ExecError(E.STATE_CHANGE_DENIED)
        fn(g, f)

    if cost is None:
        return thunk

    def thunk_with_cost(c: Caller) -> None:
        f: Frame = c.user_data
        g = f.guest
        if g is None:
            g = f.guest = Guest(c)
        gas = g.gas
        costs = f.runtime.costs
        left = gas[0] - (costs.host_fn + getattr(costs, cost))
        if left < 0:
            out_of_gas(gas, left)
        gas[0] = left
        fn(g, f)
    return thunk_with_cost


# ---- helpers ----
def charge(c: Caller, amount: int) -> None:
    """Takes ``amount`` gas through the Caller (for host-call layers); the frame fails
    with ``OutOfGas`` when there is not enough."""
    if amount and not c.charge(amount):
        raise ExecError(E.OUT_OF_GAS)


def write_output(c: Caller, f: Frame, out_ptr: int, out_len_ptr: int,
                 data: bytes | memoryview, *,
                 skip_sentinel: bool) -> None:
    """The variable-output convention (spec 1.9) through the Caller (for host-call
    layers): see :func:`output`."""
    if skip_sentinel and out_ptr == SENTINEL:
        return
    cap = c.read_u32(out_len_ptr)
    n = min(cap, len(data))
    charge(c, f.runtime.costs.copy_bytes(n))
    c.write_memory(out_ptr, data[:n])
    c.write_u32(out_len_ptr, n)


def output(g: Guest, f: Frame, out_ptr: int, out_len_ptr: int,
           data: bytes | memoryview, *, skip_sentinel: bool) -> None:
    """The variable-output convention (spec 1.9): capacity in ``*out_len_ptr``, the
    data truncated to it, the length written back.  With ``skip_sentinel`` an
    ``out_ptr`` of ``SENTINEL`` skips the copy entirely."""
    if skip_sentinel and out_ptr == SENTINEL:
        return
    cap = read_u32(g, out_len_ptr)
    n = min(cap, len(data))
    pay(g, f.runtime.costs.copy_per_word * ((n + 31) >> 5))  # copy_bytes(n)
    write(g, out_ptr, data[:n])
    write_u32(g, out_len_ptr, n)


def u32(g: Guest, reg: int) -> int:
    return g.regs[reg] & MASK32


def hi_lo(g: Guest, reg: int) -> tuple[int, int]:
    """A register packing two u32 values as ``(hi << 32) | lo``."""
    v = g.regs[reg]
    return v >> 32, v & MASK32


def set_a0(g: Guest, value: int) -> None:
    g.regs[A0] = value & MASK64


def read_u256(g: Guest, ptr: int) -> int:
    return int.from_bytes(read(g, ptr, 32), "little")


def write_u256(g: Guest, ptr: int, value: int) -> None:
    write(g, ptr, value.to_bytes(32, "little"))


def own_input(f: Frame) -> bytes:
    if f.input is None:
        raise ExecError(E.INPUT_FORWARDED)
    return f.input


# ---- context getters ----
@host("address", cost="getter")
def address(g: Guest, f: Frame) -> None:
    write(g, g.regs[A0] & MASK32, f.account)


@host("caller", cost="getter")
def caller(g: Guest, f: Frame) -> None:
    write(g, g.regs[A0] & MASK32, f.caller)


@host("origin", cost="getter")
def origin(g: Guest, f: Frame) -> None:
    write(g, g.regs[A0] & MASK32, f.runtime.origin)


@host("value_transferred", cost="getter")
def value_transferred(g: Guest, f: Frame) -> None:
    write(g, g.regs[A0] & MASK32, f.value.to_bytes(32, "little"))


@host("balance", cost="balance")
def balance(g: Guest, f: Frame) -> None:
    write_u256(g, u32(g, A0), f.runtime.state.balance(f.account))


@host("balance_of", cost="balance_of")
def balance_of(g: Guest, f: Frame) -> None:
    who = read(g, u32(g, A0), 20)
    write_u256(g, u32(g, A1), f.runtime.state.balance(who))


@host("now", cost="getter")
def now(g: Guest, f: Frame) -> None:
    write_u256(g, u32(g, A0), f.runtime.state.block.timestamp)


@host("block_number", cost="getter")
def block_number(g: Guest, f: Frame) -> None:
    write_u256(g, u32(g, A0), f.runtime.state.block.number)


@host("block_author", cost="getter")
def block_author(g: Guest, f: Frame) -> None:
    write(g, u32(g, A0), f.runtime.state.block.author)


@host("block_hash", cost="block_hash")
def block_hash(g: Guest, f: Frame) -> None:
    number = read_u256(g, u32(g, A0))
    state = f.runtime.state
    current = state.block.number
    result = bytes(32)
    if current - 256 <= number < current:
        result = state.block_hash(number)
    write(g, u32(g, A1), result)


@host("chain_id", cost="getter")
def chain_id(g: Guest, f: Frame) -> None:
    write_u256(g, u32(g, A0), f.runtime.state.block.chain_id)


@host("base_fee", cost="getter")
def base_fee(g: Guest, f: Frame) -> None:
    write_u256(g, u32(g, A0), f.runtime.state.block.base_fee)


@host("gas_limit", cost="getter")
def gas_limit(g: Guest, f: Frame) -> None:
    set_a0(g, f.runtime.state.block.gas_limit)


@host("gas_price", cost="getter")
def gas_price(g: Guest, f: Frame) -> None:
    set_a0(g, f.runtime.state.block.gas_price)


@host("ref_time_left", cost="getter")
def ref_time_left(g: Guest, f: Frame) -> None:
    set_a0(g, max(g.gas[0], 0))


@host("weight_to_fee")
def weight_to_fee(g: Guest, f: Frame) -> None:
    costs = f.runtime.costs
    pay(g, costs.copy + costs.copy_bytes(32))
    fee = g.regs[A0] * f.runtime.state.block.gas_price
    write_u256(g, u32(g, A2), fee)


# ---- input and output ----
@host("call_data_size", cost="getter")
def call_data_size(g: Guest, f: Frame) -> None:
    g.regs[A0] = 0 if f.input is None else len(f.input)


@host("call_data_load", cost="call_data_load")
def call_data_load(g: Guest, f: Frame) -> None:
    data = f.input
    if data is None:
        raise ExecError(E.INPUT_FORWARDED)
    regs = g.regs
    offset = regs[A1] & MASK32
    word = data[offset:offset + 32]
    if len(word) < 32:
        word = word.ljust(32, b"\0")
    write(g, regs[A0] & MASK32, word[::-1])


@host("call_data_copy")
def call_data_copy(g: Guest, f: Frame) -> None:
    out_ptr, out_len, offset = u32(g, A0), u32(g, A1), u32(g, A2)
    costs = f.runtime.costs
    pay(g, costs.copy + costs.copy_bytes(out_len))
    data = own_input(f)
    # the destination is checked before anything is copied; zeros past the input are
    # written without building an out_len-sized buffer (issue 19, item 5)
    check_write(g, out_ptr, out_len)
    head = memoryview(data)[offset:offset + out_len]
    n = len(head)
    mem = g.mem
    mem[out_ptr:out_ptr + n] = head
    pos, end = out_ptr + n, out_ptr + out_len
    while pos < end:
        step = min(end - pos, len(_ZEROS))
        mem[pos:pos + step] = _ZEROS[:step]
        pos += step


@host("return_data_size", cost="getter")
def return_data_size(g: Guest, f: Frame) -> None:
    g.regs[A0] = len(f.last_output)


@host("return_data_copy", cost="copy")
def return_data_copy(g: Guest, f: Frame) -> None:
    out_ptr, out_len_ptr, offset = u32(g, A0), u32(g, A1), u32(g, A2)
    data = f.last_output
    if offset > len(data):
        raise ExecError(E.OUT_OF_BOUNDS, f"return data offset {offset} > {len(data)}")
    # a view, not a copy: the guest pays per byte written, not per byte of return data
    output(g, f, out_ptr, out_len_ptr, memoryview(data)[offset:], skip_sentinel=False)


@host("seal_return")
def seal_return(g: Guest, f: Frame) -> None:
    regs = g.regs
    flags, ptr, length = regs[A0] & MASK32, regs[A1] & MASK32, regs[A2] & MASK32
    pay(g, f.runtime.costs.copy_per_word * ((length + 31) >> 5))  # copy_bytes(length)
    if flags & ~_REVERT:
        raise ExecError(E.INVALID_CALL_FLAGS, f"seal_return flags 0x{flags:x}")
    raise FrameReturn(flags, read(g, ptr, length))


@host("hash_keccak_256")
def hash_keccak_256(g: Guest, f: Frame) -> None:
    regs = g.regs
    in_ptr, in_len, out_ptr = regs[A0] & MASK32, regs[A1] & MASK32, regs[A2] & MASK32
    costs = f.runtime.costs
    pay(g, costs.hash_keccak_256 + costs.hash_keccak_256_per_word * ((in_len + 31) >> 5))
    data = read(g, in_ptr, in_len)
    write(g, out_ptr, _keccak_small(data) if in_len <= 64 else keccak256(data))


@functools.lru_cache(maxsize=4096)
def _keccak_small(data: bytes) -> bytes:
    """Keccak-256 of short inputs, remembered: Solidity hashes the same mapping slots
    (key . slot, 64 bytes) over and over, and pycryptodome takes microseconds a hash."""
    return keccak256(data)


# ---- storage ----
def _storage_key(g: Guest, f: Frame, key_ptr: int, key_len: int) -> StorageKey:
    # tuple.__new__: the StorageKey NamedTuple without its Python-level __new__
    if key_len == SENTINEL:
        return tuple.__new__(StorageKey, (read(g, key_ptr, 32), True))
    if key_len > f.runtime.limits.storage_key_bytes:
        raise ExecError(E.DECODING_FAILED, f"storage key of {key_len} bytes")
    return tuple.__new__(StorageKey, (read(g, key_ptr, key_len), False))


def _storage_flags(g: Guest) -> bool:
    flags = g.regs[A0] & MASK32
    if flags & ~_TRANSIENT:
        raise ExecError(E.INVALID_STORAGE_FLAGS, f"0x{flags:x}")
    return bool(flags)


@host("get_storage")
def get_storage(g: Guest, f: Frame) -> None:
    transient = _storage_flags(g)
    regs = g.regs
    key_ptr, key_len = regs[A1] & MASK32, regs[A2] & MASK32
    out_ptr, out_len_ptr = regs[A3] & MASK32, regs[A4] & MASK32
    runtime = f.runtime
    costs = runtime.costs
    state = runtime.state
    key = _storage_key(g, f, key_ptr, key_len)
    if transient:
        value = state.transient(f.account, key)
        pay(g, costs.transient_storage
            + costs.transient_storage_per_word * ((len(value or b"") + 31) >> 5))
    else:
        value = state.storage(f.account, key)
        pay(g, costs.get_storage
            + costs.get_storage_per_word * ((len(value or b"") + 31) >> 5))
    if value is None:
        regs[A0] = _KEY_NOT_FOUND
        return
    output(g, f, out_ptr, out_len_ptr, value, skip_sentinel=False)
    regs[A0] = _SUCCESS


@host("set_storage", mutating=True)
def set_storage(g: Guest, f: Frame) -> None:
    transient = _storage_flags(g)
    regs = g.regs
    key_ptr, key_len = regs[A1] & MASK32, regs[A2] & MASK32
    value_ptr, value_len = regs[A3] & MASK32, regs[A4] & MASK32
    runtime = f.runtime
    costs = runtime.costs
    words = (value_len + 31) >> 5
    if transient:
        pay(g, costs.transient_storage + costs.transient_storage_per_word * words)
    else:
        pay(g, costs.set_storage + costs.set_storage_per_word * words)
    if value_len > runtime.limits.payload_bytes:
        raise ExecError(E.VALUE_TOO_LARGE, f"{value_len} > {runtime.limits.payload_bytes}")
    key = _storage_key(g, f, key_ptr, key_len)
    value = read(g, value_ptr, value_len)
    state = runtime.state
    if transient:
        old = state.set_transient(f.account, key, value)
        if state.transient_size() > runtime.limits.transient_storage_bytes:
            raise ExecError(E.OUT_OF_TRANSIENT_STORAGE)
    else:
        old = state.set_storage(f.account, key, value)
    regs[A0] = SENTINEL if old is None else len(old)


# ---- immutable data ----
@host("get_immutable_data")
def get_immutable_data(g: Guest, f: Frame) -> None:
    out_ptr, out_len_ptr = u32(g, A0), u32(g, A1)
    if f.is_deploy:
        raise ExecError(E.INVALID_IMMUTABLE_ACCESS, "read in the constructor")
    info = f.runtime.state.contract(f.code_owner)
    data = b"" if info is None else info.immutable_data
    if not data:
        raise ExecError(E.INVALID_IMMUTABLE_ACCESS, "the contract has no immutable data")
    pay(g, f.runtime.costs.copy)
    output(g, f, out_ptr, out_len_ptr, data, skip_sentinel=False)


@host("set_immutable_data")
def set_immutable_data(g: Guest, f: Frame) -> None:
    ptr, length = u32(g, A0), u32(g, A1)
    runtime = f.runtime
    pay(g, runtime.costs.set_immutable_data + runtime.costs.copy_bytes(length))
    if length > runtime.limits.immutable_bytes:
        raise ExecError(E.OUT_OF_BOUNDS, f"{length} bytes of immutable data")
    if not f.is_deploy or length == 0:
        raise ExecError(E.INVALID_IMMUTABLE_ACCESS)
    data = read(g, ptr, length)
    state = runtime.state
    info = state.contract(f.account)
    if info is None:  # pragma: no cover - the runtime creates it before deploy runs
        raise ExecError(E.INVALID_IMMUTABLE_ACCESS)
    state.set_contract(f.account, replace(info, immutable_data=data))


# ---- events ----
@host("deposit_event", mutating=True)
def deposit_event(g: Guest, f: Frame) -> None:
    regs = g.regs
    topics_ptr, num_topics = regs[A0] & MASK32, regs[A1] & MASK32
    data_ptr, data_len = regs[A2] & MASK32, regs[A3] & MASK32
    runtime = f.runtime
    costs = runtime.costs
    pay(g, costs.deposit_event + costs.event_topic * min(num_topics, 1 << 16)
        + costs.deposit_event_per_word * ((data_len + 31) >> 5))
    if num_topics > runtime.limits.num_event_topics:
        raise ExecError(E.TOO_MANY_TOPICS, str(num_topics))
    if data_len > runtime.limits.payload_bytes:
        raise ExecError(E.VALUE_TOO_LARGE, f"event data of {data_len} bytes")
    raw = read(g, topics_ptr, 32 * num_topics) if num_topics else b""
    topics = tuple(raw[i:i + 32] for i in range(0, len(raw), 32))
    runtime.state.emit(Event(f.account, topics, read(g, data_ptr, data_len)))


# ---- code information ----
@host("code_hash", cost="code_info")
def code_hash(g: Guest, f: Frame) -> None:
    runtime = f.runtime
    who = read(g, u32(g, A0), 20)
    info = runtime.contract_at(who)
    if info is not None:
        result = info.code_hash
    elif runtime.state.account_exists(who):
        result = EMPTY_CODE_HASH
    else:
        result = bytes(32)
    write(g, u32(g, A1), result)


@host("code_size", cost="code_info")
def code_size(g: Guest, f: Frame) -> None:
    runtime = f.runtime
    who = read(g, u32(g, A0), 20)
    info = runtime.contract_at(who)
    blob = None if info is None else runtime.state.code(info.code_hash)
    set_a0(g, 0 if blob is None else len(blob))


# ---- calls ----
def _call_input(g: Guest, f: Frame, flags: int, in_ptr: int, in_len: int) -> bytes:
    costs = f.runtime.costs
    if flags & _CLONE_INPUT:
        data = own_input(f)
        pay(g, costs.copy_bytes(len(data)))
        return data
    if flags & _FORWARD_INPUT:
        data = own_input(f)
        f.input = None
        return data
    pay(g, costs.copy_bytes(in_len))
    return read(g, in_ptr, in_len)


def _error_code(error: str) -> int:
    """``exec_error_into_return_code`` for an error of callee origin (spec 1.7)."""
    if error == E.TRANSFER_FAILED:
        return ReturnCode.TRANSFER_FAILED
    if error == E.DUPLICATE_CONTRACT:
        return ReturnCode.DUPLICATE_CONTRACT_ADDRESS
    if error == E.OUT_OF_GAS:
        return ReturnCode.OUT_OF_RESOURCES
    return ReturnCode.CALLEE_TRAPPED


def _finish_call(g: Guest, f: Frame, flags: int, r: FrameResult, out_ptr: int,
                 out_len_ptr: int) -> None:
    if r.error is not None:
        write_u32(g, out_len_ptr, 0)
        set_a0(g, _error_code(r.error))
        return
    if flags & _TAIL_CALL:
        raise FrameReturn(r.flags, r.data)
    f.last_output = r.data
    output(g, f, out_ptr, out_len_ptr, r.data, skip_sentinel=True)
    set_a0(g, _CALLEE_REVERTED if r.reverted else _SUCCESS)


@host("call")
def call(g: Guest, f: Frame) -> None:
    flags, callee_ptr = hi_lo(g, A0)
    ref_time_limit = g.regs[A1]
    deposit_ptr, value_ptr = hi_lo(g, A3)
    in_len, in_ptr = hi_lo(g, A4)
    out_len_ptr, out_ptr = hi_lo(g, A5)
    runtime = f.runtime
    if flags & ~ALL_CALL_FLAGS:
        raise ExecError(E.INVALID_CALL_FLAGS, f"0x{flags:x}")
    callee = read(g, callee_ptr, 20)
    pay(g, runtime.costs.call)
    read(g, deposit_ptr, 32)  # the storage deposit limit: not modelled
    input_data = _call_input(g, f, flags, in_ptr, in_len)
    value = read_u256(g, value_ptr)
    read_only = bool(flags & _READ_ONLY) or f.read_only
    if value:
        if read_only:
            raise ExecError(E.STATE_CHANGE_DENIED, "value transfer in a read-only call")
        pay(g, runtime.costs.transfer_surcharge)
    f.last_output = b""
    gas_left = max(g.gas[0], 0)
    f.allows_reentry = bool(flags & _ALLOW_REENTRY)
    try:
        r = runtime.ext_call(f.account, callee, value, input_data,
                             min(ref_time_limit, gas_left), read_only=read_only)
    finally:
        f.allows_reentry = True
    g.gas[0] = gas_left - r.gas_used
    _finish_call(g, f, flags, r, out_ptr, out_len_ptr)


@host("delegate_call")
def delegate_call(g: Guest, f: Frame) -> None:
    flags, address_ptr = hi_lo(g, A0)
    ref_time_limit = g.regs[A1]
    deposit_ptr = u32(g, A3)
    in_len, in_ptr = hi_lo(g, A4)
    out_len_ptr, out_ptr = hi_lo(g, A5)
    runtime = f.runtime
    if flags & ~ALL_CALL_FLAGS or flags & (_ALLOW_REENTRY | _READ_ONLY):
        raise ExecError(E.INVALID_CALL_FLAGS, f"0x{flags:x}")
    target = read(g, address_ptr, 20)
    pay(g, runtime.costs.delegate_call)
    read(g, deposit_ptr, 32)
    input_data = _call_input(g, f, flags, in_ptr, in_len)
    f.last_output = b""
    gas_left = max(g.gas[0], 0)
    r = runtime.ext_delegate_call(f, target, input_data, min(ref_time_limit, gas_left))
    g.gas[0] = gas_left - r.gas_used
    _finish_call(g, f, flags, r, out_ptr, out_len_ptr)


@host("instantiate", mutating=True)
def instantiate(g: Guest, f: Frame) -> None:
    ref_time_limit = g.regs[A0]
    deposit_ptr, value_ptr = hi_lo(g, A2)
    in_len, in_ptr = hi_lo(g, A3)
    out_len_ptr, out_ptr = hi_lo(g, A4)
    address_ptr, salt_ptr = hi_lo(g, A5)
    runtime = f.runtime
    costs = runtime.costs
    if in_len < 32:
        raise ExecError(E.OUT_OF_BOUNDS, "instantiate input shorter than a code hash")
    pay(g, costs.instantiate + costs.instantiate_per_word * ((in_len + 31) >> 5))
    read(g, deposit_ptr, 32)
    value = read_u256(g, value_ptr)
    raw = read(g, in_ptr, in_len)
    code_hash_, input_data = raw[:32], raw[32:]
    salt = None if salt_ptr == SENTINEL else read(g, salt_ptr, 32)
    if value:
        pay(g, costs.transfer_surcharge)
    f.last_output = b""
    state = runtime.state
    if state.code(code_hash_) is None:
        raise ExecError(E.CODE_NOT_FOUND, code_hash_.hex())
    new = runtime.new_address(f.account, code_hash_, input_data, salt, state.nonce(f.account))
    gas_left = max(g.gas[0], 0)
    r = runtime.ext_instantiate(f.account, code_hash_, input_data, value, new,
                                min(ref_time_limit, gas_left), bump_deployer_nonce=True)
    g.gas[0] = gas_left - r.gas_used
    if r.error is not None:
        set_a0(g, _error_code(r.error))
        return
    if not r.reverted and address_ptr != SENTINEL:
        write(g, address_ptr, new)
    f.last_output = r.data
    output(g, f, out_ptr, out_len_ptr, r.data, skip_sentinel=True)
    set_a0(g, _CALLEE_REVERTED if r.reverted else _SUCCESS)


# ---- a few functions outside the resolc set (spec section 7) ----
@host("terminate", mutating=True)
def terminate(g: Guest, f: Frame) -> None:
    """Removes the contract (code reference and storage), sends its whole balance to
    the beneficiary and ends the frame successfully with no output."""
    runtime = f.runtime
    pay(g, runtime.costs.set_storage)
    beneficiary = read(g, u32(g, A0), 20)
    if f.is_deploy:
        raise ExecError(E.TERMINATED_IN_CONSTRUCTOR)
    if sum(1 for other in runtime.stack if other.account == f.account) > 1:
        raise ExecError(E.TERMINATED_WHILE_REENTRANT)
    state = runtime.state
    if not runtime.transfer(f.account, beneficiary, state.balance(f.account)):
        raise ExecError(E.TRANSFER_FAILED)  # pragma: no cover - the full balance moves
    state.set_contract(f.account, None)
    state.clear_storage_of(f.account)
    raise FrameReturn(0, b"")


@host("hash_blake2_256")
def hash_blake2_256(g: Guest, f: Frame) -> None:
    in_ptr, in_len, out_ptr = u32(g, A0), u32(g, A1), u32(g, A2)
    costs = f.runtime.costs
    pay(g, costs.hash_keccak_256 + costs.hash_keccak_256_per_word * ((in_len + 31) >> 5))
    digest = hashlib.blake2b(read(g, in_ptr, in_len), digest_size=32).digest()
    write(g, out_ptr, digest)


@host("hash_blake2_128")
def hash_blake2_128(g: Guest, f: Frame) -> None:
    in_ptr, in_len, out_ptr = u32(g, A0), u32(g, A1), u32(g, A2)
    costs = f.runtime.costs
    pay(g, costs.hash_keccak_256 + costs.hash_keccak_256_per_word * ((in_len + 31) >> 5))
    digest = hashlib.blake2b(read(g, in_ptr, in_len), digest_size=16).digest()
    write(g, out_ptr, digest)


@host("caller_is_origin", cost="getter")
def caller_is_origin(g: Guest, f: Frame) -> None:
    set_a0(g, int(f.caller == f.runtime.origin))


@host("caller_is_root", cost="getter")
def caller_is_root(g: Guest, f: Frame) -> None:
    set_a0(g, 0)


@host("is_contract", cost="code_info")
def is_contract(g: Guest, f: Frame) -> None:
    who = read(g, u32(g, A0), 20)
    set_a0(g, int(f.runtime.contract_at(who) is not None))


@host("own_code_hash", cost="getter")
def own_code_hash(g: Guest, f: Frame) -> None:
    write(g, u32(g, A0), f.code_hash)


@host("minimum_balance", cost="getter")
def minimum_balance(g: Guest, f: Frame) -> None:
    write_u256(g, u32(g, A0), 0)


@host("contains_storage")
def contains_storage(g: Guest, f: Frame) -> None:
    transient = _storage_flags(g)
    key = _storage_key(g, f, u32(g, A1), u32(g, A2))
    state = f.runtime.state
    pay(g, f.runtime.costs.get_storage)
    value = state.transient(f.account, key) if transient else state.storage(f.account, key)
    set_a0(g, SENTINEL if value is None else len(value))


@host("clear_storage", mutating=True)
def clear_storage(g: Guest, f: Frame) -> None:
    transient = _storage_flags(g)
    key = _storage_key(g, f, u32(g, A1), u32(g, A2))
    state = f.runtime.state
    pay(g, f.runtime.costs.set_storage)
    old = (state.set_transient(f.account, key, None) if transient
           else state.set_storage(f.account, key, None))
    set_a0(g, SENTINEL if old is None else len(old))


@host("take_storage", mutating=True)
def take_storage(g: Guest, f: Frame) -> None:
    transient = _storage_flags(g)
    key = _storage_key(g, f, u32(g, A1), u32(g, A2))
    out_ptr, out_len_ptr = u32(g, A3), u32(g, A4)
    state = f.runtime.state
    pay(g, f.runtime.costs.set_storage)
    old = (state.set_transient(f.account, key, None) if transient
           else state.set_storage(f.account, key, None))
    if old is None:
        set_a0(g, _KEY_NOT_FOUND)
        return
    output(g, f, out_ptr, out_len_ptr, old, skip_sentinel=False)
    set_a0(g, _SUCCESS)
