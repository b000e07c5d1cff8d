"""Direct access to a paused guest, for the pallet-revive host functions.

An ERC-20 transfer makes 17 host calls, and each reads registers, charges gas (twice)
and copies guest memory.  Through the generic :class:`~executor.caller.Caller` each of
those is several Python calls deep (a bounds check in the Caller, another in
:class:`~executor.raw.RawInstance`, a C buffer allocated per read).  A :class:`Guest`
holds direct views of the instance's register file, gas counter and memory (the C
core's ``pvm_instance_regs_ptr``, ``pvm_instance_gas_ptr`` and
``pvm_instance_memory_base``), so a host function reads a register with one index,
charges gas with two, and copies memory after one C bounds check.

The checks are the Caller's: a range is read only if the guest may read all of it and
written only if the guest may write all of it (``pvm_instance_is_accessible``, which
also refuses a range running past 4 GiB); otherwise :class:`~executor.errors.GuestFault`
with the Caller's message, so the call traps exactly as it did through the Caller.  A
charge that leaves the counter negative stores it (clamped to i64) and fails the frame
with ``OutOfGas``, as :func:`executor.revive.hostfns.charge` over ``Caller.charge`` does.

A guest is only touched during a host call of its instance (the guest is stopped at its
``ecalli``); the runtime keeps one :class:`Guest` per kept instance
(:class:`~executor.revive.runtime.ReviveRuntime`), and a frame run elsewhere (a
``frame_runner``) binds one at its first host call.
"""

from __future__ import annotations

from typing import Any

from executor.caller import Caller, bad_pointer, direct_views
from executor.native import ffi, lib
from executor.revive import errors as E
from executor.revive.errors import ExecError

MASK32 = (1 << 32) - 1
MASK64 = (1 << 64) - 1
_I64_MIN = -(1 << 63)
_accessible = lib.pvm_instance_is_accessible


class Guest:
    """The register file (``regs[i]``: u64; contracts are 64-bit code), the gas counter
    (``gas[0]``: i64), all of guest memory (``mem``: 4 GiB, touched only where
    ``pvm_instance_is_accessible`` allows) and the native handle of one instance."""

    __slots__ = ("regs", "gas", "mem", "handle")

    def __init__(self, caller: Caller):
        handle = caller.handle
        self.handle: Any = handle
        self.regs, self.gas = direct_views(handle)
        self.mem = memoryview(ffi.buffer(lib.pvm_instance_memory_base(handle), 1 << 32))


def read(g: Guest, ptr: int, n: int) -> bytes:
    """``n`` bytes of guest memory at ``ptr`` (``ptr``/``n`` are u32 values)."""
    if n and not _accessible(g.handle, ptr, n, 0):
        raise bad_pointer(ptr, n, False)
    return g.mem[ptr:ptr + n].tobytes()


def write(g: Guest, ptr: int, data: bytes | memoryview) -> None:
    """Writes ``data`` at ``ptr``; the range must be writable by the guest."""
    n = len(data)
    if n:
        if not _accessible(g.handle, ptr, n, 1):
            raise bad_pointer(ptr, n, True)
        g.mem[ptr:ptr + n] = data


def check_write(g: Guest, ptr: int, n: int) -> None:
    """Raises the GuestFault :func:`write` would raise for ``n`` bytes at ``ptr``."""
    if n and not _accessible(g.handle, ptr, n, 1):
        raise bad_pointer(ptr, n, True)


def read_u32(g: Guest, ptr: int) -> int:
    return int.from_bytes(read(g, ptr, 4), "little")


def write_u32(g: Guest, ptr: int, value: int) -> None:
    write(g, ptr, (value & MASK32).to_bytes(4, "little"))


def charge(g: Guest, amount: int) -> None:
    """Takes ``amount`` (>= 0) gas; the frame fails with ``OutOfGas`` when there is not
    enough."""
    gas = g.gas
    left = gas[0] - amount
    if left < 0:
        out_of_gas(gas, left)
    gas[0] = left


def out_of_gas(gas: memoryview, left: int) -> None:
    """Stores the negative counter ``left`` (clamped to i64) and fails the frame."""
    gas[0] = left if left >= _I64_MIN else _I64_MIN
    raise ExecError(E.OUT_OF_GAS)
