"""The :class:`Caller` handed to every host function, and the native-ops binding.

A host function runs while its guest is stopped at an ``ecalli``.  Through the
caller it reads and writes the guest's registers, memory and gas.  Every
memory accessor is bounds-checked: an inaccessible range raises
:class:`~executor.errors.GuestFault`, which the linker turns into a clean
:class:`~executor.errors.Trap` of the call (never a Python crash, never a
write outside guest memory).
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any

from executor.errors import ExecutionError, GuestFault
from executor.native import ffi, lib
from executor.raw import NUM_REGS, RawInstance

if TYPE_CHECKING:
    from executor.instance import Instance

MASK64 = (1 << 64) - 1
MASK32 = (1 << 32) - 1

_FAST_METHODS = ("run", "reg", "set_reg", "gas", "program_counter", "next_program_counter")


class MethodOps:
    """The ``lib.pvm_instance_*`` subset the call loop uses, implemented with the
    methods of an instance object (for backends whose instance class overrides
    :class:`RawInstance` methods; the handle is the instance itself)."""

    def __init__(self) -> None:
        self.last: Any = None

    @staticmethod
    def pvm_instance_set_reg(h: RawInstance, r: int, v: int) -> None:
        h.set_reg(r, v)

    @staticmethod
    def pvm_instance_reg(h: RawInstance, r: int) -> int:
        return h.reg(r)

    def pvm_instance_run(self, h: RawInstance) -> int:
        self.last = h.run()
        return int(self.last.kind)

    def pvm_instance_ecalli(self, h: RawInstance) -> int:
        return int(self.last.hostcall or 0)

    def pvm_instance_fault_address(self, h: RawInstance) -> int:
        return int(self.last.fault_address or 0)

    @staticmethod
    def pvm_instance_pc(h: RawInstance) -> int:
        pc = h.program_counter
        return -1 if pc is None else pc

    @staticmethod
    def pvm_instance_gas(h: RawInstance) -> int:
        return h.gas

    @staticmethod
    def pvm_instance_set_gas(h: RawInstance, gas: int) -> None:
        h.gas = gas

    @staticmethod
    def pvm_instance_set_next_pc(h: RawInstance, pc: int) -> None:
        h.next_program_counter = pc


def bind_ops(raw: RawInstance) -> tuple[Any, Any]:
    """``(ops, handle)``: ``ops.pvm_instance_x(handle, ...)`` acts on ``raw``.

    When the instance's class keeps :class:`RawInstance`'s implementation of the
    methods the call loop needs, the C functions are called directly on its
    native handle (one cffi call each, no Python frame in between); otherwise
    the instance's own methods are used."""
    cls = type(raw)
    native = isinstance(raw, RawInstance) and hasattr(raw, "_ptr") and all(
        getattr(cls, m) is getattr(RawInstance, m) for m in _FAST_METHODS)
    if native:
        return lib, raw._ptr
    return MethodOps(), raw


def direct_views(ops: Any, handle: Any) -> tuple[memoryview | None, memoryview | None]:
    """Views of the register file (13 x u64) and the gas counter (i64) of a
    native instance, when the C core exports ``pvm_instance_regs_ptr`` and
    ``pvm_instance_gas_ptr``; ``(None, None)`` otherwise.

    Registers are stored as the C core keeps them: on Latest32 a 32-bit value
    sign-extended to 64 bits (readers mask, writers sign-extend)."""
    if ops is not lib or not hasattr(lib, "pvm_instance_regs_ptr") or not hasattr(
            lib, "pvm_instance_gas_ptr"):
        return None, None
    regs = memoryview(ffi.buffer(lib.pvm_instance_regs_ptr(handle), 8 * NUM_REGS))
    gas = memoryview(ffi.buffer(lib.pvm_instance_gas_ptr(handle), 8))
    return regs.cast("B").cast("Q"), gas.cast("B").cast("q")


class Caller:
    """What a host function sees of the guest that called it.

    Registers (:meth:`reg`, :meth:`set_reg`, :attr:`regs`), gas (:attr:`gas`,
    :meth:`charge`), guest memory (:meth:`read_memory`, :meth:`write_memory`,
    ``read_u32``/``write_u32``/..., :meth:`memory_view`), ``user_data`` (set per
    instance), :attr:`instance` and, during a host call, :attr:`hostcall` (the
    import index) and :attr:`symbol` (its name).
    """

    __slots__ = ("instance", "user_data", "hostcall", "is_64_bit", "_raw", "_ops", "_h",
                 "_reg", "_set_reg", "_metered", "_mask")

    def __init__(self, instance: Instance, raw: RawInstance, ops: Any, handle: Any):
        self.instance = instance
        self.user_data: Any = None
        self.hostcall = -1
        self.is_64_bit = raw.is_64_bit
        self._raw = raw
        self._ops = ops
        self._h = handle
        # fast bound accessors used by the generated host-function thunks
        self._reg: Any = partial(ops.pvm_instance_reg, handle)
        self._set_reg: Any = partial(ops.pvm_instance_set_reg, handle)
        rv, _ = direct_views(ops, handle)
        if rv is not None:
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

    def _closed(self, ops: Any) -> None:
        """The instance was closed: every access goes to ``ops``, which raises."""
        self._ops = ops
        self._h = None
        self._reg = partial(ops.pvm_instance_reg, None)
        self._set_reg = partial(ops.pvm_instance_set_reg, None)

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
        names = self.instance.module.imports
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
            what = "write" if write else "read"
            raise GuestFault(f"bad guest pointer: cannot {what} {length} bytes at 0x{address:x}",
                             address=address, length=length)

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
