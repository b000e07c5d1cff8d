"""The pallet-revive host functions (spec section 3) as raw host functions of a
:class:`~executor.linker.Linker`.

Each function reads its arguments straight from the registers (``a0..a5`` =
``r7..r12``; ``u32`` arguments are the low 32 bits, packed pairs are
``(hi << 32) | lo``), and the :class:`~executor.revive.frame.Frame` it runs for is the
instance's ``user_data``.  Every call first pays ``CostTable.host_fn``; functions marked
mutating then fail with ``StateChangeDenied`` in a read-only frame.  A function ends
its frame by raising :class:`~executor.revive.errors.ExecError` (the pallet error) or
:class:`~executor.revive.errors.FrameReturn` (``seal_return``); a bad guest pointer
raises :class:`~executor.errors.GuestFault` through the Caller (error ``OutOfBounds``).

The runtime is reached only through the frame's :class:`~executor.revive.frame.Ext`
(``frame.runtime``): this module does not import :mod:`executor.revive.runtime`.
"""

from __future__ import annotations

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
    SENTINEL,
    CallFlags,
    ReturnCode,
    ReturnFlags,
    StorageFlags,
)
from executor.revive.errors import ExecError, FrameReturn
from executor.revive.frame import Ext, Frame, FrameResult
from executor.revive.hashing import keccak256
from executor.revive.state import Event, StorageKey

HostBody = Callable[[Caller, Frame], None]

_HOST: dict[str, tuple[HostBody, bool]] = {}

A0, A1, A2, A3, A4, A5 = 7, 8, 9, 10, 11, 12


def host(name: str, *, mutating: bool = False) -> Callable[[HostBody], HostBody]:
    """Registers ``fn(caller, frame)`` as the host function ``name``."""
    def register(fn: HostBody) -> HostBody:
        _HOST[name] = (fn, mutating)
        return fn
    return register


def host_function_names() -> list[str]:
    """The import names this runtime implements."""
    return sorted(_HOST)


def build_linker() -> Linker:
    """A linker with every host function of this module."""
    linker = Linker()
    for name, (fn, mutating) in _HOST.items():
        linker.define_raw(name, _wrap(fn, mutating))
    return linker


def _wrap(fn: HostBody, mutating: bool) -> Callable[[Caller], None]:
    def thunk(c: Caller) -> None:
        f: Frame = c.user_data
        charge(c, f.runtime.costs.host_fn)
        if mutating and f.read_only:
            raise ExecError(E.STATE_CHANGE_DENIED)
        fn(c, f)
    return thunk


# ---- helpers ----
def charge(c: Caller, amount: int) -> None:
    """Takes ``amount`` gas; the frame fails with ``OutOfGas`` when there is not enough."""
    if amount and not c.charge(amount):
        raise ExecError(E.OUT_OF_GAS)


def u32(c: Caller, reg: int) -> int:
    return c.reg(reg) & MASK32


def hi_lo(c: Caller, reg: int) -> tuple[int, int]:
    """A register packing two u32 values as ``(hi << 32) | lo``."""
    v = c.reg(reg)
    return v >> 32, v & MASK32


def set_a0(c: Caller, value: int) -> None:
    c.set_reg(A0, value)


def read_u256(c: Caller, ptr: int) -> int:
    return int.from_bytes(c.read_memory(ptr, 32), "little")


def write_u256(c: Caller, ptr: int, value: int) -> None:
    c.write_memory(ptr, value.to_bytes(32, "little"))


def write_output(c: Caller, f: Frame, out_ptr: int, out_len_ptr: int,
                 data: bytes | memoryview, *,
                 skip_sentinel: bool) -> None:
    """The variable-output convention (spec 1.9): capacity in ``*out_len_ptr``, the
    data truncated to it, the length written back.  With ``skip_sentinel`` an
    ``out_ptr`` of ``SENTINEL`` skips the copy entirely."""
    if skip_sentinel and out_ptr == SENTINEL:
        return
    cap = c.read_u32(out_len_ptr)
    n = min(cap, len(data))
    charge(c, f.runtime.costs.copy_bytes(n))
    c.write_memory(out_ptr, data[:n])
    c.write_u32(out_len_ptr, n)


def own_input(f: Frame) -> bytes:
    if f.input is None:
        raise ExecError(E.INPUT_FORWARDED)
    return f.input


def rt(f: Frame) -> Ext:
    return f.runtime


# ---- context getters ----
@host("address")
def address(c: Caller, f: Frame) -> None:
    charge(c, rt(f).costs.getter)
    c.write_memory(u32(c, A0), f.account)


@host("caller")
def caller(c: Caller, f: Frame) -> None:
    charge(c, rt(f).costs.getter)
    c.write_memory(u32(c, A0), f.caller)


@host("origin")
def origin(c: Caller, f: Frame) -> None:
    charge(c, rt(f).costs.getter)
    c.write_memory(u32(c, A0), rt(f).origin)


@host("value_transferred")
def value_transferred(c: Caller, f: Frame) -> None:
    charge(c, rt(f).costs.getter)
    write_u256(c, u32(c, A0), f.value)


@host("balance")
def balance(c: Caller, f: Frame) -> None:
    charge(c, rt(f).costs.balance)
    write_u256(c, u32(c, A0), rt(f).state.balance(f.account))


@host("balance_of")
def balance_of(c: Caller, f: Frame) -> None:
    charge(c, rt(f).costs.balance_of)
    who = c.read_memory(u32(c, A0), 20)
    write_u256(c, u32(c, A1), rt(f).state.balance(who))


@host("now")
def now(c: Caller, f: Frame) -> None:
    charge(c, rt(f).costs.getter)
    write_u256(c, u32(c, A0), rt(f).state.block.timestamp)


@host("block_number")
def block_number(c: Caller, f: Frame) -> None:
    charge(c, rt(f).costs.getter)
    write_u256(c, u32(c, A0), rt(f).state.block.number)


@host("block_author")
def block_author(c: Caller, f: Frame) -> None:
    charge(c, rt(f).costs.getter)
    c.write_memory(u32(c, A0), rt(f).state.block.author)


@host("block_hash")
def block_hash(c: Caller, f: Frame) -> None:
    charge(c, rt(f).costs.block_hash)
    number = read_u256(c, u32(c, A0))
    state = rt(f).state
    current = state.block.number
    result = bytes(32)
    if current - 256 <= number < current:
        result = state.block_hash(number)
    c.write_memory(u32(c, A1), result)


@host("chain_id")
def chain_id(c: Caller, f: Frame) -> None:
    charge(c, rt(f).costs.getter)
    write_u256(c, u32(c, A0), rt(f).state.block.chain_id)


@host("base_fee")
def base_fee(c: Caller, f: Frame) -> None:
    charge(c, rt(f).costs.getter)
    write_u256(c, u32(c, A0), rt(f).state.block.base_fee)


@host("gas_limit")
def gas_limit(c: Caller, f: Frame) -> None:
    charge(c, rt(f).costs.getter)
    set_a0(c, rt(f).state.block.gas_limit)


@host("gas_price")
def gas_price(c: Caller, f: Frame) -> None:
    charge(c, rt(f).costs.getter)
    set_a0(c, rt(f).state.block.gas_price)


@host("ref_time_left")
def ref_time_left(c: Caller, f: Frame) -> None:
    charge(c, rt(f).costs.getter)
    set_a0(c, max(c.gas, 0))


@host("weight_to_fee")
def weight_to_fee(c: Caller, f: Frame) -> None:
    costs = rt(f).costs
    charge(c, costs.copy + costs.copy_bytes(32))
    fee = c.reg(A0) * rt(f).state.block.gas_price
    write_u256(c, u32(c, A2), fee)


# ---- input and output ----
@host("call_data_size")
def call_data_size(c: Caller, f: Frame) -> None:
    charge(c, rt(f).costs.getter)
    set_a0(c, 0 if f.input is None else len(f.input))


@host("call_data_load")
def call_data_load(c: Caller, f: Frame) -> None:
    charge(c, rt(f).costs.call_data_load)
    data = own_input(f)
    offset = u32(c, A1)
    word = data[offset:offset + 32].ljust(32, b"\0")
    c.write_memory(u32(c, A0), word[::-1])


@host("call_data_copy")
def call_data_copy(c: Caller, f: Frame) -> None:
    out_ptr, out_len, offset = u32(c, A0), u32(c, A1), u32(c, A2)
    costs = rt(f).costs
    charge(c, costs.copy + costs.copy_bytes(out_len))
    data = own_input(f)
    # the destination is checked before anything is copied; zeros past the input are
    # written without building an out_len-sized buffer (issue 19, item 5)
    c.write_memory_padded(out_ptr, memoryview(data)[offset:offset + out_len], out_len)


@host("return_data_size")
def return_data_size(c: Caller, f: Frame) -> None:
    charge(c, rt(f).costs.getter)
    set_a0(c, len(f.last_output))


@host("return_data_copy")
def return_data_copy(c: Caller, f: Frame) -> None:
    out_ptr, out_len_ptr, offset = u32(c, A0), u32(c, A1), u32(c, A2)
    charge(c, rt(f).costs.copy)
    data = f.last_output
    if offset > len(data):
        raise ExecError(E.OUT_OF_BOUNDS, f"return data offset {offset} > {len(data)}")
    # a view, not a copy: the guest pays per byte written, not per byte of return data
    write_output(c, f, out_ptr, out_len_ptr, memoryview(data)[offset:], skip_sentinel=False)


@host("seal_return")
def seal_return(c: Caller, f: Frame) -> None:
    flags, ptr, length = u32(c, A0), u32(c, A1), u32(c, A2)
    charge(c, rt(f).costs.copy_bytes(length))
    if flags & ~int(ReturnFlags.REVERT):
        raise ExecError(E.INVALID_CALL_FLAGS, f"seal_return flags 0x{flags:x}")
    raise FrameReturn(flags, c.read_memory(ptr, length))


@host("hash_keccak_256")
def hash_keccak_256(c: Caller, f: Frame) -> None:
    in_ptr, in_len, out_ptr = u32(c, A0), u32(c, A1), u32(c, A2)
    costs = rt(f).costs
    charge(c, costs.hash_keccak_256 + costs.hash_keccak_256_per_word * ((in_len + 31) >> 5))
    c.write_memory(out_ptr, keccak256(c.read_memory(in_ptr, in_len)))


# ---- storage ----
def _storage_key(c: Caller, f: Frame, key_ptr: int, key_len: int) -> StorageKey:
    if key_len == SENTINEL:
        return StorageKey(c.read_memory(key_ptr, 32), True)
    if key_len > rt(f).limits.storage_key_bytes:
        raise ExecError(E.DECODING_FAILED, f"storage key of {key_len} bytes")
    return StorageKey(c.read_memory(key_ptr, key_len), False)


def _storage_flags(c: Caller) -> bool:
    flags = u32(c, A0)
    if flags & ~int(StorageFlags.TRANSIENT):
        raise ExecError(E.INVALID_STORAGE_FLAGS, f"0x{flags:x}")
    return bool(flags & StorageFlags.TRANSIENT)


@host("get_storage")
def get_storage(c: Caller, f: Frame) -> None:
    transient = _storage_flags(c)
    key_ptr, key_len, out_ptr, out_len_ptr = u32(c, A1), u32(c, A2), u32(c, A3), u32(c, A4)
    costs = rt(f).costs
    state = rt(f).state
    key = _storage_key(c, f, key_ptr, key_len)
    if transient:
        value = state.transient(f.account, key)
        charge(c, costs.transient_storage
               + costs.transient_storage_per_word * ((len(value or b"") + 31) >> 5))
    else:
        value = state.storage(f.account, key)
        charge(c, costs.get_storage
               + costs.get_storage_per_word * ((len(value or b"") + 31) >> 5))
    if value is None:
        set_a0(c, ReturnCode.KEY_NOT_FOUND)
        return
    write_output(c, f, out_ptr, out_len_ptr, value, skip_sentinel=False)
    set_a0(c, ReturnCode.SUCCESS)


@host("set_storage", mutating=True)
def set_storage(c: Caller, f: Frame) -> None:
    transient = _storage_flags(c)
    key_ptr, key_len, value_ptr, value_len = u32(c, A1), u32(c, A2), u32(c, A3), u32(c, A4)
    runtime = rt(f)
    costs = runtime.costs
    words = (value_len + 31) >> 5
    if transient:
        charge(c, costs.transient_storage + costs.transient_storage_per_word * words)
    else:
        charge(c, costs.set_storage + costs.set_storage_per_word * words)
    if value_len > runtime.limits.payload_bytes:
        raise ExecError(E.VALUE_TOO_LARGE, f"{value_len} > {runtime.limits.payload_bytes}")
    key = _storage_key(c, f, key_ptr, key_len)
    value = c.read_memory(value_ptr, value_len)
    state = runtime.state
    if transient:
        old = state.set_transient(f.account, key, value)
        if state.transient_size() > runtime.limits.transient_storage_bytes:
            raise ExecError(E.OUT_OF_TRANSIENT_STORAGE)
    else:
        old = state.set_storage(f.account, key, value)
    set_a0(c, SENTINEL if old is None else len(old))


# ---- immutable data ----
@host("get_immutable_data")
def get_immutable_data(c: Caller, f: Frame) -> None:
    out_ptr, out_len_ptr = u32(c, A0), u32(c, A1)
    if f.is_deploy:
        raise ExecError(E.INVALID_IMMUTABLE_ACCESS, "read in the constructor")
    info = rt(f).state.contract(f.code_owner)
    data = b"" if info is None else info.immutable_data
    if not data:
        raise ExecError(E.INVALID_IMMUTABLE_ACCESS, "the contract has no immutable data")
    charge(c, rt(f).costs.copy)
    write_output(c, f, out_ptr, out_len_ptr, data, skip_sentinel=False)


@host("set_immutable_data")
def set_immutable_data(c: Caller, f: Frame) -> None:
    ptr, length = u32(c, A0), u32(c, A1)
    runtime = rt(f)
    charge(c, runtime.costs.set_immutable_data + runtime.costs.copy_bytes(length))
    if length > runtime.limits.immutable_bytes:
        raise ExecError(E.OUT_OF_BOUNDS, f"{length} bytes of immutable data")
    if not f.is_deploy or length == 0:
        raise ExecError(E.INVALID_IMMUTABLE_ACCESS)
    data = c.read_memory(ptr, length)
    state = runtime.state
    info = state.contract(f.account)
    if info is None:  # pragma: no cover - the runtime creates it before deploy runs
        raise ExecError(E.INVALID_IMMUTABLE_ACCESS)
    state.set_contract(f.account, replace(info, immutable_data=data))


# ---- events ----
@host("deposit_event", mutating=True)
def deposit_event(c: Caller, f: Frame) -> None:
    topics_ptr, num_topics, data_ptr, data_len = u32(c, A0), u32(c, A1), u32(c, A2), u32(c, A3)
    runtime = rt(f)
    costs = runtime.costs
    charge(c, costs.deposit_event + costs.event_topic * min(num_topics, 1 << 16)
           + costs.deposit_event_per_word * ((data_len + 31) >> 5))
    if num_topics > runtime.limits.num_event_topics:
        raise ExecError(E.TOO_MANY_TOPICS, str(num_topics))
    if data_len > runtime.limits.payload_bytes:
        raise ExecError(E.VALUE_TOO_LARGE, f"event data of {data_len} bytes")
    raw = c.read_memory(topics_ptr, 32 * num_topics) if num_topics else b""
    topics = tuple(raw[i:i + 32] for i in range(0, len(raw), 32))
    runtime.state.emit(Event(f.account, topics, c.read_memory(data_ptr, data_len)))


# ---- code information ----
@host("code_hash")
def code_hash(c: Caller, f: Frame) -> None:
    runtime = rt(f)
    charge(c, runtime.costs.code_info)
    who = c.read_memory(u32(c, A0), 20)
    info = runtime.contract_at(who)
    if info is not None:
        result = info.code_hash
    elif runtime.state.account_exists(who):
        result = EMPTY_CODE_HASH
    else:
        result = bytes(32)
    c.write_memory(u32(c, A1), result)


@host("code_size")
def code_size(c: Caller, f: Frame) -> None:
    runtime = rt(f)
    charge(c, runtime.costs.code_info)
    who = c.read_memory(u32(c, A0), 20)
    info = runtime.contract_at(who)
    blob = None if info is None else runtime.state.code(info.code_hash)
    set_a0(c, 0 if blob is None else len(blob))


# ---- calls ----
def _call_input(c: Caller, f: Frame, flags: int, in_ptr: int, in_len: int) -> bytes:
    costs = rt(f).costs
    if flags & CallFlags.CLONE_INPUT:
        data = own_input(f)
        charge(c, costs.copy_bytes(len(data)))
        return data
    if flags & CallFlags.FORWARD_INPUT:
        data = own_input(f)
        f.input = None
        return data
    charge(c, costs.copy_bytes(in_len))
    return c.read_memory(in_ptr, in_len)


def _error_code(error: str) -> int:
    """``exec_error_into_return_code`` for an error of callee origin (spec 1.7)."""
    if error == E.TRANSFER_FAILED:
        return ReturnCode.TRANSFER_FAILED
    if error == E.DUPLICATE_CONTRACT:
        return ReturnCode.DUPLICATE_CONTRACT_ADDRESS
    if error == E.OUT_OF_GAS:
        return ReturnCode.OUT_OF_RESOURCES
    return ReturnCode.CALLEE_TRAPPED


def _finish_call(c: Caller, f: Frame, flags: int, r: FrameResult, out_ptr: int,
                 out_len_ptr: int) -> None:
    if r.error is not None:
        c.write_u32(out_len_ptr, 0)
        set_a0(c, _error_code(r.error))
        return
    if flags & CallFlags.TAIL_CALL:
        raise FrameReturn(r.flags, r.data)
    f.last_output = r.data
    write_output(c, f, out_ptr, out_len_ptr, r.data, skip_sentinel=True)
    set_a0(c, ReturnCode.CALLEE_REVERTED if r.reverted else ReturnCode.SUCCESS)


@host("call")
def call(c: Caller, f: Frame) -> None:
    flags, callee_ptr = hi_lo(c, A0)
    ref_time_limit = c.reg(A1)
    deposit_ptr, value_ptr = hi_lo(c, A3)
    in_len, in_ptr = hi_lo(c, A4)
    out_len_ptr, out_ptr = hi_lo(c, A5)
    runtime = rt(f)
    if flags & ~ALL_CALL_FLAGS:
        raise ExecError(E.INVALID_CALL_FLAGS, f"0x{flags:x}")
    callee = c.read_memory(callee_ptr, 20)
    charge(c, runtime.costs.call)
    c.read_memory(deposit_ptr, 32)  # the storage deposit limit: not modelled
    input_data = _call_input(c, f, flags, in_ptr, in_len)
    value = read_u256(c, value_ptr)
    read_only = bool(flags & CallFlags.READ_ONLY) or f.read_only
    if value:
        if read_only:
            raise ExecError(E.STATE_CHANGE_DENIED, "value transfer in a read-only call")
        charge(c, runtime.costs.transfer_surcharge)
    f.last_output = b""
    gas_left = max(c.gas, 0)
    f.allows_reentry = bool(flags & CallFlags.ALLOW_REENTRY)
    try:
        r = runtime.ext_call(f.account, callee, value, input_data,
                             min(ref_time_limit, gas_left), read_only=read_only)
    finally:
        f.allows_reentry = True
    c.gas = gas_left - r.gas_used
    _finish_call(c, f, flags, r, out_ptr, out_len_ptr)


@host("delegate_call")
def delegate_call(c: Caller, f: Frame) -> None:
    flags, address_ptr = hi_lo(c, A0)
    ref_time_limit = c.reg(A1)
    deposit_ptr = u32(c, A3)
    in_len, in_ptr = hi_lo(c, A4)
    out_len_ptr, out_ptr = hi_lo(c, A5)
    runtime = rt(f)
    if flags & ~ALL_CALL_FLAGS or flags & (CallFlags.ALLOW_REENTRY | CallFlags.READ_ONLY):
        raise ExecError(E.INVALID_CALL_FLAGS, f"0x{flags:x}")
    target = c.read_memory(address_ptr, 20)
    charge(c, runtime.costs.delegate_call)
    c.read_memory(deposit_ptr, 32)
    input_data = _call_input(c, f, flags, in_ptr, in_len)
    f.last_output = b""
    gas_left = max(c.gas, 0)
    r = runtime.ext_delegate_call(f, target, input_data, min(ref_time_limit, gas_left))
    c.gas = gas_left - r.gas_used
    _finish_call(c, f, flags, r, out_ptr, out_len_ptr)


@host("instantiate", mutating=True)
def instantiate(c: Caller, f: Frame) -> None:
    ref_time_limit = c.reg(A0)
    deposit_ptr, value_ptr = hi_lo(c, A2)
    in_len, in_ptr = hi_lo(c, A3)
    out_len_ptr, out_ptr = hi_lo(c, A4)
    address_ptr, salt_ptr = hi_lo(c, A5)
    runtime = rt(f)
    costs = runtime.costs
    if in_len < 32:
        raise ExecError(E.OUT_OF_BOUNDS, "instantiate input shorter than a code hash")
    charge(c, costs.instantiate + costs.instantiate_per_word * ((in_len + 31) >> 5))
    c.read_memory(deposit_ptr, 32)
    value = read_u256(c, value_ptr)
    raw = c.read_memory(in_ptr, in_len)
    code_hash_, input_data = raw[:32], raw[32:]
    salt = None if salt_ptr == SENTINEL else c.read_memory(salt_ptr, 32)
    if value:
        charge(c, costs.transfer_surcharge)
    f.last_output = b""
    state = runtime.state
    if state.code(code_hash_) is None:
        raise ExecError(E.CODE_NOT_FOUND, code_hash_.hex())
    new = runtime.new_address(f.account, code_hash_, input_data, salt, state.nonce(f.account))
    gas_left = max(c.gas, 0)
    r = runtime.ext_instantiate(f.account, code_hash_, input_data, value, new,
                                min(ref_time_limit, gas_left), bump_deployer_nonce=True)
    c.gas = gas_left - r.gas_used
    if r.error is not None:
        set_a0(c, _error_code(r.error))
        return
    if not r.reverted and address_ptr != SENTINEL:
        c.write_memory(address_ptr, new)
    f.last_output = r.data
    write_output(c, f, out_ptr, out_len_ptr, r.data, skip_sentinel=True)
    set_a0(c, ReturnCode.CALLEE_REVERTED if r.reverted else ReturnCode.SUCCESS)


# ---- a few functions outside the resolc set (spec section 7) ----
@host("terminate", mutating=True)
def terminate(c: Caller, f: Frame) -> None:
    """Removes the contract (code reference and storage), sends its whole balance to
    the beneficiary and ends the frame successfully with no output."""
    runtime = rt(f)
    charge(c, runtime.costs.set_storage)
    beneficiary = c.read_memory(u32(c, A0), 20)
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
def hash_blake2_256(c: Caller, f: Frame) -> None:
    in_ptr, in_len, out_ptr = u32(c, A0), u32(c, A1), u32(c, A2)
    costs = rt(f).costs
    charge(c, costs.hash_keccak_256 + costs.hash_keccak_256_per_word * ((in_len + 31) >> 5))
    digest = hashlib.blake2b(c.read_memory(in_ptr, in_len), digest_size=32).digest()
    c.write_memory(out_ptr, digest)


@host("hash_blake2_128")
def hash_blake2_128(c: Caller, f: Frame) -> None:
    in_ptr, in_len, out_ptr = u32(c, A0), u32(c, A1), u32(c, A2)
    costs = rt(f).costs
    charge(c, costs.hash_keccak_256 + costs.hash_keccak_256_per_word * ((in_len + 31) >> 5))
    digest = hashlib.blake2b(c.read_memory(in_ptr, in_len), digest_size=16).digest()
    c.write_memory(out_ptr, digest)


@host("caller_is_origin")
def caller_is_origin(c: Caller, f: Frame) -> None:
    charge(c, rt(f).costs.getter)
    set_a0(c, int(f.caller == rt(f).origin))


@host("caller_is_root")
def caller_is_root(c: Caller, f: Frame) -> None:
    charge(c, rt(f).costs.getter)
    set_a0(c, 0)


@host("is_contract")
def is_contract(c: Caller, f: Frame) -> None:
    charge(c, rt(f).costs.code_info)
    who = c.read_memory(u32(c, A0), 20)
    set_a0(c, int(rt(f).contract_at(who) is not None))


@host("own_code_hash")
def own_code_hash(c: Caller, f: Frame) -> None:
    charge(c, rt(f).costs.getter)
    c.write_memory(u32(c, A0), f.code_hash)


@host("minimum_balance")
def minimum_balance(c: Caller, f: Frame) -> None:
    charge(c, rt(f).costs.getter)
    write_u256(c, u32(c, A0), 0)


@host("contains_storage")
def contains_storage(c: Caller, f: Frame) -> None:
    transient = _storage_flags(c)
    key = _storage_key(c, f, u32(c, A1), u32(c, A2))
    state = rt(f).state
    charge(c, rt(f).costs.get_storage)
    value = state.transient(f.account, key) if transient else state.storage(f.account, key)
    set_a0(c, SENTINEL if value is None else len(value))


@host("clear_storage", mutating=True)
def clear_storage(c: Caller, f: Frame) -> None:
    transient = _storage_flags(c)
    key = _storage_key(c, f, u32(c, A1), u32(c, A2))
    state = rt(f).state
    charge(c, rt(f).costs.set_storage)
    old = (state.set_transient(f.account, key, None) if transient
           else state.set_storage(f.account, key, None))
    set_a0(c, SENTINEL if old is None else len(old))


@host("take_storage", mutating=True)
def take_storage(c: Caller, f: Frame) -> None:
    transient = _storage_flags(c)
    key = _storage_key(c, f, u32(c, A1), u32(c, A2))
    out_ptr, out_len_ptr = u32(c, A3), u32(c, A4)
    state = rt(f).state
    charge(c, rt(f).costs.set_storage)
    old = (state.set_transient(f.account, key, None) if transient
           else state.set_storage(f.account, key, None))
    if old is None:
        set_a0(c, ReturnCode.KEY_NOT_FOUND)
        return
    write_output(c, f, out_ptr, out_len_ptr, old, skip_sentinel=False)
    set_a0(c, ReturnCode.SUCCESS)
