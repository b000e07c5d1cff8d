"""The :class:`Caller` handed to every host function.

A host function runs while its guest is stopped at an ``ecalli``.  Through the
caller it reads and writes the guest's registers, memory and gas.  Every
memory accessor is bounds-checked: an inaccessible range raises
:class:`~executor.errors.GuestFault`, which the linker turns into a clean
:class:`~executor.errors.Trap` of the call (never a Python crash, never a
write outside guest memory).

The caller reaches the paused guest through the C core's functions on the native
handle of its :class:`~executor.raw.RawInstance` (registers and gas through direct
views of the instance's register file and gas counter).  It is the bottom of the
embedding API's layers (ARCHITECTURE.md): it knows its :class:`~executor.instance.Instance`
only as the object it hands back from :attr:`Caller.instance`.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from functools import partial
from typing import Any

from executor.errors import ExecutionError, GuestFault
from executor.native import ffi, lib
from executor.raw import NUM_REGS, RawInstance

MASK64 = (1 << 64) - 1
MASK32 = (1 << 32) - 1
_ZEROS = bytes(1 << 16)


_layout_checked: list[bool] = []


def direct_views(handle: Any) -> tuple[memoryview, memoryview]:
    """Views of the register file (13 x u64) and the gas counter (i64) of the
    native instance ``handle`` (``pvm_instance_regs_ptr``, ``pvm_instance_gas_ptr``).

    Registers are stored as the C core keeps them: on Latest32 a 32-bit value
    sign-extended to 64 bits (readers mask, writers sign-extend).

    The two lie at the start of the instance, the counter right after the
    registers (the generated code's context, native/vm.h PVM_VMCTX_REGS and
    PVM_VMCTX_GAS): one buffer over both, without a call into C -- checked
    against the C accessors the first time."""
    if not _layout_checked:
        regs_at = int(ffi.cast("uintptr_t", lib.pvm_instance_regs_ptr(handle)))
        gas_at = int(ffi.cast("uintptr_t", lib.pvm_instance_gas_ptr(handle)))
        base = int(ffi.cast("uintptr_t", handle))
        if regs_at != base or gas_at != base + 8 * NUM_REGS:  # pragma: no cover - layout
            raise ExecutionError("the native instance layout is not the one this module knows")
        _layout_checked.append(True)
    both = memoryview(ffi.buffer(ffi.cast("uint64_t *", handle), 8 * (NUM_REGS + 1))).cast("B")
    return both[:8 * NUM_REGS].cast("Q"), both[8 * NUM_REGS:].cast("q")


def bad_pointer(address: int, length: int, write: bool) -> GuestFault:
    """The fault a host function raises for a guest range it may not read (or write)."""
    what = "write" if write else "read"
    return GuestFault(f"bad guest pointer: cannot {what} {length} bytes at 0x{address:x}",
                      address=address, length=length)

class Caller:
    """What a host function sees of the guest that called it.

    Registers (:meth:`reg`, :meth:`set_reg`, :attr:`regs`), gas (:attr:`gas`,
    :meth:`charge`), guest memory (:meth:`read_memory`, :meth:`write_memory`,
    ``read_u32``/``write_u32``/..., :meth:`memory_view`), ``user_data`` (set per
    instance), :attr:`instance` and, during a host call, :attr:`hostcall` (the
    import index) and :attr:`symbol` (its name).
    """

    __slots__ = ("_instance", "user_data", "hostcall", "is_64_bit", "_raw", "_ops", "_h",
                 "_reg", "_set_reg", "_metered", "_mask", "_imports")

    def __init__(self, instance: Any, raw: RawInstance, imports: Sequence[str | None] = (),
                 views: tuple[memoryview, memoryview] | None = None):
        """``instance`` is the :class:`~executor.instance.Instance` running ``raw``
        (held weakly), ``imports`` its module's import names, ``views`` the
        :func:`direct_views` of ``raw`` when the instance has them already."""
        # a weak reference: no cycle Instance <-> Caller, so a dropped instance
        # is freed at once (and its memory reused) instead of at the next
        # garbage collection
        self._instance = weakref.ref(instance)
        self.user_data: Any = None
        self.hostcall = -1
        self.is_64_bit = raw.is_64_bit
        self._raw = raw
        self._imports = tuple(imports)
        handle = raw._ptr
        if handle is None:
            raise ExecutionError("the instance is closed")
        self._ops: Any = lib
        self._h = handle
        # fast bound accessors used by the generated host-function thunks
        self._reg: Any
        self._set_reg: Any
        rv = (views if views is not None else direct_views(handle))[0]
        if raw.is_64_bit:
            self._reg = rv.__getitem__
            self._set_reg = rv.__setitem__
        else:
            def reg32(r: int, rv: memoryview = rv, mask: int = MASK32) -> int:
                return int(rv[r]) & mask

            def set_reg32(r: int, v: int, rv: memoryview = rv, mask: int = MASK32,
                          high: int = MASK64 ^ MASK32) -> None:
                v &= mask
                rv[r] = v | high if v >> 31 else v
            self._reg = reg32
            self._set_reg = set_reg32
        self._metered = raw.gas_metering
        self._mask = MASK64 if raw.is_64_bit else MASK32

    def _rebind(self, ops: Any, handle: Any) -> None:
        """Reaches the guest through ``ops.pvm_instance_*(handle, ...)`` from now on (a
        closed instance: an ``ops`` whose every function raises)."""
        self._ops = ops
        self._h = handle
        if handle is None:  # closed: every use raises
            self._reg = self._set_reg = ops.pvm_instance_reg
            return
        self._reg = partial(ops.pvm_instance_reg, handle)
        self._set_reg = partial(ops.pvm_instance_set_reg, handle)

    @property
    def handle(self) -> Any:
        """The native instance (``pvm_instance*``) this caller reaches its guest
        through, for host functions that access it directly (``direct_views``,
        ``pvm_instance_is_accessible``); valid while the instance lives."""
        return self._h

    @property
    def instance(self) -> Any:
        """The :class:`~executor.instance.Instance` whose guest made this host call."""
        inst = self._instance()
        if inst is None:
            raise ExecutionError("the instance of this caller was dropped")
        return inst

    # ---- registers ----
    def reg(self, r: int) -> int:
        """Register ``r`` (0..12) as an unsigned int of the ISA's width."""
        if not 0 <= r < NUM_REGS:
            raise IndexError(f"no register {r}")
        return int(self._reg(r))

    def set_reg(self, r: int, value: int) -> None:
        """Sets register ``r``; negative values are stored in two's complement."""
        if not 0 <= r < NUM_REGS:
            raise IndexError(f"no register {r}")
        self._set_reg(r, value & MASK64)

    @property
    def regs(self) -> list[int]:
        return [int(self._reg(r)) for r in range(NUM_REGS)]

    @property
    def symbol(self) -> str | None:
        """The import name of the host call being serviced."""
        names = self._imports
        return names[self.hostcall] if 0 <= self.hostcall < len(names) else None

    # ---- gas ----
    @property
    def gas(self) -> int:
        """Gas left (0 when gas is not metered)."""
        return int(self._ops.pvm_instance_gas(self._h)) if self._metered else 0

    @gas.setter
    def gas(self, value: int) -> None:
        if self._metered:
            self._ops.pvm_instance_set_gas(self._h, value)

    def charge(self, amount: int) -> bool:
        """Consumes ``amount`` gas (gas.md 4.3).  If the counter goes negative the
        host function still completes, but the call then fails with
        :class:`~executor.errors.OutOfGas` instead of resuming the guest.
        Returns whether gas is left (``False`` once it went negative).  A no-op
        without gas metering."""
        if amount < 0:
            raise ValueError(f"cannot charge a negative amount of gas: {amount}")
        if not self._metered:
            return True
        left = int(self._ops.pvm_instance_gas(self._h)) - amount
        left = max(left, -(1 << 63))
        self._ops.pvm_instance_set_gas(self._h, left)
        return left >= 0

    # ---- memory ----
    def _check(self, address: int, length: int, write: bool) -> None:
        if length < 0 or not 0 <= address < 1 << 32 or address + length > 1 << 32 or (
                length and not self._raw.is_memory_accessible(address, length, write=write)):
            raise bad_pointer(address, length, write)

    def is_memory_accessible(self, address: int, length: int, *, write: bool = False) -> bool:
        return self._raw.is_memory_accessible(address, length, write=write)

    def read_memory(self, address: int, length: int) -> bytes:
        """``length`` bytes of guest memory at ``address`` (GuestFault if inaccessible)."""
        self._check(address, length, False)
        if not length:
            return b""
        return self._raw.read_memory(address, length)

    def write_memory(self, address: int, data: bytes | bytearray | memoryview) -> None:
        """Writes into guest memory; the range must be writable *by the guest*
        (a host call never writes the guest's read-only data for it)."""
        n = len(data)
        self._check(address, n, True)
        if n:
            self._raw.write_memory(address, bytes(data))

    def write_memory_padded(self, address: int, data: bytes | bytearray | memoryview,
                            length: int) -> None:
        """Writes ``data`` then zeros up to ``length`` bytes in all (``data`` longer than
        ``length`` is cut).  The whole range is checked first; the zeros are written
        from one fixed-size buffer, so the host never allocates ``length`` bytes."""
        self._check(address, length, True)
        head = memoryview(data)[:length]
        n = len(head)
        if n:
            self._raw.write_memory(address, bytes(head))
        pos = address + n
        end = address + length
        while pos < end:
            step = min(end - pos, len(_ZEROS))
            self._raw.write_memory(pos, _ZEROS if step == len(_ZEROS) else _ZEROS[:step])
            pos += step

    def memory_view(self, address: int, length: int) -> memoryview:
        """A zero-copy view of readable guest memory (valid during the host call)."""
        self._check(address, length, False)
        try:
            return self._raw.memory_view(address, length)
        except ExecutionError as exc:  # pragma: no cover - guarded by _check
            raise GuestFault(str(exc), address=address, length=length) from exc

    def read_u8(self, address: int) -> int:
        return self.read_memory(address, 1)[0]

    def read_u16(self, address: int) -> int:
        return int.from_bytes(self.read_memory(address, 2), "little")

    def read_u32(self, address: int) -> int:
        return int.from_bytes(self.read_memory(address, 4), "little")

    def read_u64(self, address: int) -> int:
        return int.from_bytes(self.read_memory(address, 8), "little")

    def write_u8(self, address: int, value: int) -> None:
        self.write_memory(address, (value & 0xFF).to_bytes(1, "little"))

    def write_u16(self, address: int, value: int) -> None:
        self.write_memory(address, (value & 0xFFFF).to_bytes(2, "little"))

    def write_u32(self, address: int, value: int) -> None:
        self.write_memory(address, (value & MASK32).to_bytes(4, "little"))

    def write_u64(self, address: int, value: int) -> None:
        self.write_memory(address, (value & MASK64).to_bytes(8, "little"))

    def sbrk(self, size: int) -> int | None:
        """Grows the guest heap (standard memory); the new top or None."""
        return self._raw.sbrk(size)
