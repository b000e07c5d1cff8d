"""Low-level execution: a compiled :class:`NativeProgram` and a :class:`RawInstance`.

This is the thin Python face of the C core (native/program.c, instance.c,
interp.c): registers, pc, gas, memory and ``run()`` returning one
:class:`Interrupt` at a time.  Nothing here runs per instruction.
"""

from __future__ import annotations

import enum
from array import array
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from executor.blob import ProgramBlob
from executor.errors import ExecutionError, ModuleError, SandboxError
from executor.gas import AnyCostModel, FullCostModel
from executor.isa import InstructionSet
from executor.native import errbuf, errstr, ffi, lib

assert array("I").itemsize == 4, "the jump table is passed to C as uint32_t"

NUM_REGS = 13
RETURN_TO_HOST = 0xFFFF0000


class InterruptKind(enum.IntEnum):
    FINISHED = 0
    TRAP = 1
    ECALLI = 2
    SEGFAULT = 3
    NOT_ENOUGH_GAS = 4
    STEP = 5


@dataclass(frozen=True)
class Interrupt:
    """What stopped ``run()``: the kind plus its payload."""

    kind: InterruptKind
    pc: int | None = None             # the instruction that caused it (None if none)
    hostcall: int | None = None       # ECALLI: the ecalli immediate
    fault_address: int | None = None  # SEGFAULT: the page address
    fault_is_write_protected: bool = False

    def __str__(self) -> str:
        name = self.kind.name.lower()
        if self.kind is InterruptKind.ECALLI:
            return f"ecalli({self.hostcall})"
        if self.kind is InterruptKind.SEGFAULT:
            return f"segfault(0x{self.fault_address or 0:x})"
        return name


class Profile(enum.Enum):
    """Where PolkaVM 0.35 and the JAM v0.4 vectors disagree (test-vectors.md 4).

    ``POLKAVM`` follows the reference 0.35 (the default for blobs and sources);
    ``JAM_V04`` follows the JAM v0.4 vectors: a trailing ``fallthrough`` traps
    at the code end with one more gas, and no JamV1 load-time validation.
    """

    POLKAVM = "polkavm"
    JAM_V04 = "jam-v0.4"


class MemoryMap:
    """The memory map of a module (execution.md 3.2), computed in C."""

    def __init__(self, page_size: int, ro_data_size: int, rw_data_size: int, stack_size: int,
                 aux_data_size: int = 0):
        m = ffi.new("pvm_memory_map*")
        err = errbuf()
        for name, v in (("page size", page_size), ("ro_data_size", ro_data_size),
                        ("rw_data_size", rw_data_size), ("stack_size", stack_size),
                        ("aux_data_size", aux_data_size)):
            if not 0 <= v < 1 << 32:
                raise ModuleError(f"{name} out of range: {v}")
        if lib.pvm_memory_map_build(page_size, ro_data_size, rw_data_size, stack_size,
                                    aux_data_size, m, err, 256) != 0:
            raise ModuleError(errstr(err))
        self.page_size = int(m.page_size)
        self.ro_data_address = int(m.ro_data_address)
        self.ro_data_size = int(m.ro_data_size)
        self.rw_data_address = int(m.rw_data_address)
        self.rw_data_size = int(m.rw_data_size)
        self.stack_address_low = int(m.stack_address_low)
        self.stack_address_high = int(m.stack_address_high)
        self.stack_size = int(m.stack_size)
        self.aux_data_address = int(m.aux_data_address)
        self.aux_data_size = int(m.aux_data_size)
        self.heap_base = int(m.heap_base)
        self.max_heap_size = int(m.max_heap_size)

    @property
    def default_sp(self) -> int:
        return self.stack_address_high

    def as_dict(self) -> dict[str, int]:
        return dict(vars(self))


class NativeProgram:
    """A blob's code decoded and lowered once by the C core; shared by instances."""

    def __init__(self, blob: ProgramBlob, *, cost_model: AnyCostModel | None = None,
                 profile: Profile = Profile.POLKAVM, validate: bool | None = None,
                 jit_code_limit: int | None = None):
        self.blob = blob
        self.profile = profile
        flags = 0
        if profile is Profile.JAM_V04:
            flags |= lib.PVM_PROG_JAM_FALLTHROUGH
        if validate is None:
            validate = blob.isa is InstructionSet.JAM_V1 and profile is Profile.POLKAVM
        if validate:
            flags |= lib.PVM_PROG_VALIDATE_JAM
        # the table as one C array (the C core copies it): array() converts it in C,
        # ffi.new would convert each entry in Python (~0.3 ms for doom's 10,002)
        table = array("I", blob.jump_table or [0])  # "I": 4 bytes (checked at import)
        jt = ffi.from_buffer("uint32_t[]", table)
        err = errbuf()
        if isinstance(cost_model, FullCostModel):
            model = ffi.new("pvm_cost_model*")
            model.kind = lib.PVM_COST_FULL
            model.memory_access_cost = int(cost_model.cache)
            ptr = lib.pvm_program_new_with_model(int(blob.isa), blob.code, len(blob.code),
                                                 blob.bitmask, len(blob.bitmask), jt,
                                                 len(blob.jump_table), model, flags, err, 256)
        else:
            costs = ffi.NULL if cost_model is None else ffi.new("uint32_t[]", cost_model.table())
            ptr = lib.pvm_program_new(int(blob.isa), blob.code, len(blob.code), blob.bitmask,
                                      len(blob.bitmask), jt, len(blob.jump_table), costs, flags,
                                      err, 256)
        if ptr == ffi.NULL:
            raise ModuleError(f"module validation failed: {errstr(err)}")
        self._ptr: Any = ffi.gc(ptr, lib.pvm_program_free)
        if jit_code_limit is not None:
            lib.pvm_program_set_jit_code_limit(self._ptr, jit_code_limit)
        self._instance_setup: dict[tuple[Any, ...], tuple[Any, MemoryMap]] = {}
        self._is_64_bit = bool(lib.pvm_program_is_64_bit(self._ptr))

    @property
    def instruction_count(self) -> int:
        return int(lib.pvm_program_instruction_count(self._ptr))

    @property
    def basic_block_count(self) -> int:
        return int(lib.pvm_program_block_count(self._ptr))

    @property
    def is_64_bit(self) -> bool:
        return self._is_64_bit

    def block_start(self, pc: int) -> int | None:
        s = int(lib.pvm_program_block_start(self._ptr, pc))
        return None if s < 0 else s

    def block_cost(self, start: int) -> int:
        return int(lib.pvm_program_block_cost(self._ptr, start))

    def is_jump_target(self, pc: int) -> bool:
        return bool(lib.pvm_program_is_jump_target(self._ptr, pc))


_BACKEND_IDS = {"interpreter": 0, "jit": 1}


def run_error(ptr: Any) -> ExecutionError:
    """The exception for a run that returned ``PVM_INT_ERROR``."""
    message = ffi.string(lib.pvm_instance_error(ptr)).decode("utf-8", "replace")
    if lib.pvm_instance_error_kind(ptr) == lib.PVM_ERROR_SANDBOX:
        return SandboxError(message)
    return ExecutionError(message)


def _inaccessible(address: int, length: int) -> str:
    return f"memory at 0x{address:x}..0x{address + length:x} is not accessible"


def _check_range(address: int, length: int) -> None:
    """Guest addresses are 32-bit: a range must lie inside the 4 GiB address space
    (checked before any allocation, so no MemoryError/OverflowError escapes)."""
    if not isinstance(address, int) or not isinstance(length, int):
        raise ExecutionError(f"memory range must be ints, not {type(address).__name__}/"
                             f"{type(length).__name__}")
    if not 0 <= length < 1 << 32 or not 0 <= address < 1 << 32 or address + length > 1 << 32:
        raise ExecutionError(f"bad memory range 0x{address:x}+0x{length:x}: guest memory is "
                             f"the 32-bit address space")

_PERM = {"none": 0, "r": 1, "ro": 1, "read": 1, "rw": 2, "write": 2}


class RawInstance:
    """One instance of a program: registers, gas, pc and memory, and ``run()``.

    ``dynamic_paging`` starts with no memory mapped; the host maps pages with
    :meth:`map_memory` (as the JAM vectors and spectool sources need).  In
    standard mode memory is laid out from the blob's memory config.
    """

    def __init__(self, program: NativeProgram, *, page_size: int = 0x1000,
                 dynamic_paging: bool = False, gas_metering: bool = True,
                 step_tracing: bool = False, aux_data_size: int = 0,
                 backend: str = "interpreter", worker: Any = None):
        blob = program.blob
        if backend not in _BACKEND_IDS:
            raise ModuleError(f"unknown backend {backend!r}")
        # the configuration and the memory map depend on these alone: built
        # once per program (pvm_instance_new only reads the configuration)
        key = (page_size, dynamic_paging, gas_metering, step_tracing, aux_data_size, backend)
        made = program._instance_setup.get(key)
        if made is None:
            cfg = ffi.new("pvm_instance_config*")
            cfg.page_size = page_size
            cfg.ro_data_size = blob.ro_data_size
            cfg.rw_data_size = blob.rw_data_size
            cfg.stack_size = blob.stack_size
            cfg.aux_data_size = aux_data_size
            cfg.dynamic_paging = 1 if dynamic_paging else 0
            cfg.gas_metering = lib.PVM_GAS_SYNC if gas_metering else lib.PVM_GAS_NONE
            cfg.step_tracing = 1 if step_tracing else 0
            cfg.backend = _BACKEND_IDS[backend]
            made = (cfg, MemoryMap(page_size, blob.ro_data_size, blob.rw_data_size,
                                   blob.stack_size, aux_data_size))
            program._instance_setup[key] = made
        cfg, self.memory_map = made
        self.backend = backend
        self.worker = worker  # keeps the sandbox worker alive while bound
        if worker is not None:
            # a copy naming the worker (the shared one keeps none), made once
            # per worker and configuration: kept by the worker, keyed by the
            # shared configuration (which the key keeps alive)
            copies = worker._configs
            shared = cfg
            cfg = copies.get(shared)
            if cfg is None or worker._ptr is None:
                if len(copies) >= 64:
                    copies.clear()
                cfg = copies[shared] = ffi.new("pvm_instance_config*", shared[0])
                cfg.worker = worker._ptr
        err = errbuf()
        ptr = lib.pvm_instance_new(program._ptr, cfg, blob.ro_data, len(blob.ro_data),
                                   blob.rw_data, len(blob.rw_data), err, 256)
        if ptr == ffi.NULL:
            raise ModuleError(errstr(err))
        self.program = program
        self._finished = False
        self._ptr: Any = ffi.gc(ptr, lib.pvm_instance_free)
        self.is_64_bit = program.is_64_bit
        self.dynamic_paging = dynamic_paging
        self.gas_metering = gas_metering
        self.page_size = page_size

    @cached_property
    def _base(self) -> Any:
        """Where the guest's memory starts in this process (asked on first use)."""
        return lib.pvm_instance_memory_base(self._ptr)

    def close(self) -> None:
        """Frees the instance now (and hands a sandbox worker back)."""
        ptr = getattr(self, "_ptr", None)
        if ptr is None:
            return
        self._ptr = None
        ffi.release(ptr)  # runs pvm_instance_free now
        release = getattr(self, "_release_worker", None)
        if release is not None and self.worker is not None:
            release(self.worker)
            self.worker = None
        # every later use raises instead of reaching freed memory
        self.__class__ = _closed_class(type(self))

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - never raise from a finalizer
            pass

    # ---- registers ----
    def reg(self, r: int) -> int:
        return int(lib.pvm_instance_reg(self._ptr, r))

    def set_reg(self, r: int, value: int) -> None:
        if not 0 <= r < NUM_REGS:
            raise ExecutionError(f"no register {r}")
        lib.pvm_instance_set_reg(self._ptr, r, value & 0xFFFFFFFFFFFFFFFF)

    @property
    def regs(self) -> list[int]:
        return [int(lib.pvm_instance_reg(self._ptr, r)) for r in range(NUM_REGS)]

    @regs.setter
    def regs(self, values: list[int]) -> None:
        if len(values) != NUM_REGS:
            raise ExecutionError(f"expected {NUM_REGS} registers, got {len(values)}")
        for r, v in enumerate(values):
            self.set_reg(r, v)

    # ---- gas and pc ----
    @property
    def gas(self) -> int:
        return int(lib.pvm_instance_gas(self._ptr))

    @gas.setter
    def gas(self, value: int) -> None:
        lib.pvm_instance_set_gas(self._ptr, value)

    @property
    def program_counter(self) -> int | None:
        """The pc of the last interruption; None after Finished (as the reference)."""
        if self._finished:
            return None
        v = int(lib.pvm_instance_pc(self._ptr))
        return None if v < 0 else v

    @property
    def next_program_counter(self) -> int | None:
        v = int(lib.pvm_instance_next_pc(self._ptr))
        return None if v < 0 else v

    @next_program_counter.setter
    def next_program_counter(self, pc: int | None) -> None:
        if pc is None:
            lib.pvm_instance_clear_next_pc(self._ptr)
        else:
            if not 0 <= pc < 1 << 32:
                raise ExecutionError(f"program counter out of range: {pc}")
            lib.pvm_instance_set_next_pc(self._ptr, pc)
        self._finished = False

    # ---- execution ----
    def run(self) -> Interrupt:
        """Runs until the next interrupt.  For Finished, ``Interrupt.pc`` is
        the pc of the jump to the return-to-host address (what spectool and
        the JAM vectors report), while ``program_counter`` becomes None."""
        self._finished = False
        k = int(lib.pvm_instance_run(self._ptr))
        if k == lib.PVM_INT_ERROR:
            raise run_error(self._ptr)
        kind = InterruptKind(k)
        v = int(lib.pvm_instance_pc(self._ptr))
        pc = None if v < 0 else v
        self._finished = kind is InterruptKind.FINISHED
        if kind is InterruptKind.ECALLI:
            return Interrupt(kind, pc, hostcall=int(lib.pvm_instance_ecalli(self._ptr)))
        if kind is InterruptKind.SEGFAULT:
            return Interrupt(kind, pc, fault_address=int(lib.pvm_instance_fault_address(self._ptr)),
                             fault_is_write_protected=bool(
                                 lib.pvm_instance_fault_is_write(self._ptr)))
        return Interrupt(kind, pc)

    def set_stall_timeout(self, seconds: float | None) -> None:
        """Inside a sandbox worker: a worker that uses no CPU for this long while
        the host waits on it (stopped, blocked) is killed and ``run()`` raises
        :class:`~executor.errors.SandboxError`.  Default 5 s; None: never."""
        ns = 0 if seconds is None else max(1, int(seconds * 1e9))
        lib.pvm_instance_set_stall_timeout(self._ptr, ns)

    def set_deadline(self, seconds: float | None) -> None:
        """Wall-clock limit for each ``run()`` inside a sandbox worker; past it
        the worker is killed and ``run()`` raises.  None removes the limit."""
        ns = 0 if seconds is None else max(1, int(seconds * 1e9))
        lib.pvm_instance_set_deadline(self._ptr, ns)

    def prepare_call(self, pc: int, args: list[int] | tuple[int, ...] = ()) -> None:
        """The standard call sequence (execution.md 4): registers zeroed, sp at
        the stack top, ra = return-to-host, arguments in a0..a5, t0..t2."""
        if len(args) > 9:
            raise ExecutionError(f"too many argument registers: {len(args)} > 9")
        for r in range(NUM_REGS):
            self.set_reg(r, 0)
        self.set_reg(1, self.memory_map.default_sp)
        self.set_reg(0, RETURN_TO_HOST)
        for reg, value in zip((7, 8, 9, 10, 11, 12, 2, 3, 4), args, strict=False):
            self.set_reg(reg, value)
        self.next_program_counter = pc

    # ---- memory ----
    def read_memory(self, address: int, length: int) -> bytes:
        """``length`` bytes at ``address``.  The range is checked before anything is
        allocated, so an absurd length costs nothing but an :class:`ExecutionError`."""
        _check_range(address, length)
        if not length:
            return b""
        if not lib.pvm_instance_is_accessible(self._ptr, address, length, 0):
            raise ExecutionError(_inaccessible(address, length))
        buf = ffi.new("uint8_t[]", length)
        if lib.pvm_instance_read(self._ptr, address, buf, length) != 0:  # pragma: no cover
            raise ExecutionError(_inaccessible(address, length))
        return bytes(ffi.buffer(buf, length))

    def write_memory(self, address: int, data: bytes) -> None:
        _check_range(address, len(data))
        if lib.pvm_instance_write(self._ptr, address, data, len(data)) != 0:
            raise ExecutionError(_inaccessible(address, len(data)))

    def is_memory_accessible(self, address: int, length: int, *, write: bool = False) -> bool:
        if not 0 <= length < 1 << 32 or not 0 <= address < 1 << 32 or \
                address + length > 1 << 32:
            return False
        return bool(lib.pvm_instance_is_accessible(self._ptr, address, length, int(write)))

    def memory_view(self, address: int, length: int) -> memoryview:
        """A zero-copy view of accessible guest memory (valid while the instance lives).

        The view is writable only where the guest itself may write: read-only data
        is changed through :meth:`write_memory`, which records the change so that
        a memory reset restores it (a store through a view would not be seen, and
        on some backends the pages are read-only in this process too)."""
        _check_range(address, length)
        if not self.is_memory_accessible(address, length):
            raise ExecutionError(_inaccessible(address, length))
        view = memoryview(ffi.buffer(self._base + address, length))
        if not lib.pvm_instance_is_accessible(self._ptr, address, length, 1):
            return view.toreadonly()
        return view

    def map_memory(self, address: int, length: int, *, writable: bool = True) -> None:
        perm = lib.PVM_PERM_WRITE if writable else lib.PVM_PERM_READ
        if lib.pvm_instance_map(self._ptr, address, length, perm) != 0:
            raise ExecutionError(self._page_error("map", address, length))

    def protect_memory(self, address: int, length: int, *, writable: bool = False) -> None:
        perm = lib.PVM_PERM_WRITE if writable else lib.PVM_PERM_READ
        if lib.pvm_instance_protect(self._ptr, address, length, perm) != 0:
            raise ExecutionError(self._page_error("protect", address, length))

    def unmap_memory(self, address: int, length: int) -> None:
        if lib.pvm_instance_unmap(self._ptr, address, length) != 0:
            raise ExecutionError(self._page_error("unmap", address, length))

    def _page_error(self, what: str, address: int, length: int) -> str:
        if not self.dynamic_paging:
            return f"cannot {what} pages: dynamic paging is not enabled"
        return (f"cannot {what} 0x{address:x}+0x{length:x}: the address must be page aligned, "
                f">= 0x10000, the range inside 4 GiB and (for protect) mapped")

    def sbrk(self, size: int) -> int | None:
        top = int(lib.pvm_instance_sbrk(self._ptr, size & 0xFFFFFFFF))
        return None if top == 0 else top

    @property
    def heap_size(self) -> int:
        return int(lib.pvm_instance_heap_size(self._ptr))

    def reset_memory(self) -> None:
        lib.pvm_instance_reset_memory(self._ptr)


_CLOSED_CLASSES: dict[type, type] = {}


def _closed_class(cls: type) -> type:
    """``cls`` with every method and property that reaches the C instance
    replaced by one that raises ``ExecutionError("the instance is closed")``."""
    closed = _CLOSED_CLASSES.get(cls)
    if closed is not None:
        return closed

    def fail(self: object, *args: object, **kwargs: object) -> Any:
        raise ExecutionError("the instance is closed")

    members: dict[str, Any] = {"close": lambda self: None, "__del__": lambda self: None}
    for klass in reversed(cls.__mro__):
        for name, value in vars(klass).items():
            if name.startswith("_") or name == "close":
                continue
            if isinstance(value, property):
                members[name] = property(fail, fail)
            elif callable(value):
                members[name] = fail
    closed = _CLOSED_CLASSES[cls] = type(f"Closed{cls.__name__}", (cls,), members)
    return closed
