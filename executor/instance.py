"""An :class:`Instance`: call exports, service host calls, inspect the result.

``instance.call("name", *args, gas=None)`` follows the standard call sequence
(execution.md 4): registers zeroed, ``sp`` at the stack top, ``ra`` =
return-to-host, arguments in ``a0..a5, t0..t2`` (one register each: u64 on
64-bit code, u32 on Latest32; negative ints are stored in two's complement),
then ``run()`` until the guest returns.  The result is ``a0`` as an unsigned
int of the ISA's width.  For 64-bit values on 32-bit code (two registers, low
half first) and signed results use :meth:`Instance.typed_func`.

Gas: ``gas=N`` sets the counter before the call; ``gas=None`` continues with
the counter as it is (a fresh instance starts with ``DEFAULT_GAS``).
Afterwards :attr:`Instance.gas` is the gas left and :attr:`Instance.gas_used`
what the last call consumed (host charges included).

Failures raise :class:`~executor.errors.Trap` (with ``pc`` and the export name
as ``function``), :class:`~executor.errors.OutOfGas`, or
:class:`~executor.errors.HostError` (the host function's exception chained as
``__cause__``).

Layers (ARCHITECTURE.md): :mod:`executor.linker` makes instances; an instance
sees its module and its host-call table only through the narrow
:class:`ModuleLike` and :class:`LinkedModule`, and hands every host call a
:class:`~executor.caller.Caller` (the layer below).
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from executor.blob import ProgramBlob
from executor.caller import MASK32, MASK64, Caller, direct_views
from executor.errors import ExecutionError, GuestFault, HostError, OutOfGas, Trap
from executor.hostfn import ARG_REGS, INT_TYPES, UNIT_TYPES, Thunk, to_signed
from executor.native import ffi, lib
from executor.raw import RETURN_TO_HOST, InterruptKind, MemoryMap, RawInstance, run_error


class ModuleLike(Protocol):
    """What an instance -- and the linker -- use of a module (an
    :class:`executor.module.Module`, the layer above that reaches down here)."""

    @property
    def exports(self) -> Mapping[str, int]: ...
    @property
    def imports(self) -> tuple[str | None, ...]: ...
    @property
    def is_64_bit(self) -> bool: ...
    @property
    def blob(self) -> ProgramBlob: ...
    @property
    def backend(self) -> str: ...
    @property
    def gas_metering(self) -> Any: ...

    def export_pc(self, name: str) -> int: ...

    def new_raw_instance(self) -> RawInstance: ...


class LinkedModule(Protocol):
    """What an instance takes from its :class:`executor.linker.InstancePre`: the
    module and the host-call dispatch table (``handlers[i]`` services ``ecalli i``)."""

    @property
    def module(self) -> ModuleLike: ...
    @property
    def handlers(self) -> tuple[Thunk, ...]: ...
    @property
    def names(self) -> tuple[str, ...]: ...
    @property
    def fallback(self) -> Callable[[Any, int], Any] | None: ...


DEFAULT_GAS = 1 << 62
_SIGN32 = 1 << 31
_HIGH32 = MASK64 ^ MASK32

_FINISHED = int(InterruptKind.FINISHED)
_TRAP = int(InterruptKind.TRAP)
_ECALLI = int(InterruptKind.ECALLI)
_SEGFAULT = int(InterruptKind.SEGFAULT)
_NOT_ENOUGH_GAS = int(InterruptKind.NOT_ENOUGH_GAS)
_STEP = int(InterruptKind.STEP)
_HOSTCALL = int(lib.PVM_CALL_HOSTCALL)  # pvm_instance_call/resume: 8 + hostcall number
# the C entry points of a call, looked up once (an attribute of the cffi lib
# costs a lookup each time)
_CALL = lib.pvm_instance_call
_ENTER = lib.pvm_instance_enter
_RESUME = lib.pvm_instance_resume
# the call-site path (pvm_site_*): a0 comes back as the result, a stop as
# _STOPPED + what pvm_instance_call returns
_SITE_CALL0 = lib.pvm_site_call0
_SITE_CALL1 = lib.pvm_site_call1
_SITE_CALL2 = lib.pvm_site_call2
_SITE_RESUME = lib.pvm_site_resume
_STOPPED = (1 << 64) - (1 << int(lib.PVM_CALL_STOPPED_BITS))

StepHook = Callable[["Instance", int], None]

_TEMPLATES: dict[tuple[int, bool], memoryview] = {}


def _register_template(sp: int, is_64_bit: bool) -> memoryview:
    """The register file at a call's start (ra, sp, the rest 0), read-only."""
    t = _TEMPLATES.get((sp, is_64_bit))
    if t is None:
        base = [RETURN_TO_HOST, sp] + [0] * 11
        if not is_64_bit:  # stored sign-extended, as the C core keeps 32-bit registers
            base = [v | _HIGH32 if v & _SIGN32 else v for v in base]
        t = _TEMPLATES[(sp, is_64_bit)] = memoryview(array("Q", base)).toreadonly()
    return t


class Instance:
    """One instance of a module with its host functions (see the module docstring).

    Made by :meth:`Linker.instantiate <executor.linker.Linker.instantiate>` or
    :meth:`InstancePre.instantiate <executor.linker.InstancePre.instantiate>`.
    ``raw`` is the underlying :class:`~executor.raw.RawInstance`; ``on_step``
    (``fn(instance, pc)``) is called before every instruction when the module
    has step tracing on.
    """

    _inline = True
    """:meth:`call` runs the call loop itself (False in a subclass with its own
    :meth:`_invoke`, which then runs every call)."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "_invoke" in vars(cls):
            cls._inline = False

    def __init__(self, pre: LinkedModule, raw: RawInstance, *, user_data: Any = None,
                 gas: int = DEFAULT_GAS):
        module = pre.module
        self.module = module
        self.raw = raw
        handle = raw._ptr
        self._rv: memoryview | None
        self._gv: memoryview | None
        self._rv, self._gv = views = direct_views(handle)
        self.caller = Caller(self, raw, module.imports, views=views)
        # the C core's functions on the native handle (_CLOSED once closed)
        self._ops: Any = lib
        self._h = handle
        self.caller.user_data = user_data
        self._handlers = pre.handlers
        self._nhandlers = len(pre.handlers)
        self._names = pre.names
        self._fallback = pre.fallback
        self._exports = module.exports
        self.is_64_bit = is_64_bit = raw.is_64_bit
        self._mask = MASK64 if is_64_bit else MASK32
        self._sp = raw.memory_map.default_sp
        self._rv_template = _register_template(self._sp, is_64_bit)
        self._metered = raw.gas_metering
        self._busy = False
        self._gas_start: int | None = None
        self._gas_used: int | None = 0
        self._typed: dict[tuple[Any, ...], ExportFunc] = {}
        self._sites: dict[str, Any] = {}  # export name -> its pvm_call_site (see _site)
        self.on_step: StepHook | None = None
        if self._metered:
            views[1][0] = gas

    # ---- calls ----
    def call(self, export: str | int, *args: int, gas: int | None = None) -> int:
        """Calls ``export`` (a name or a pc) with register arguments; returns ``a0``."""
        # The common case -- a known export by name, up to two int arguments --
        # in one C call on the export's call site (made once, see _site), which
        # returns a0 itself when the guest finished without a stop; one C call
        # per resumption after a host call.  Everything else: _call_general.
        site = self._sites.get(export) if export.__class__ is str else None
        if site is None or self._busy:
            return self._call_general(export, args, gas)
        n = len(args)
        a0 = a1 = 0
        if n:
            if n > 2:
                return self._call_general(export, args, gas)
            mask = self._mask
            a0 = args[0]
            if a0.__class__ is not int or not 0 <= a0 <= mask:
                a0 = self._plain_arg(a0)
            if n == 2:
                a1 = args[1]
                if a1.__class__ is not int or not 0 <= a1 <= mask:
                    a1 = self._plain_arg(a1)
        if gas is not None and self._metered:
            self._gv[0] = gas  # type: ignore[index]
        self._busy = True
        try:
            if n == 0:
                r = _SITE_CALL0(site)
            elif n == 1:
                r = _SITE_CALL1(site, a0)
            else:
                r = _SITE_CALL2(site, a0, a1)
            self._gas_start = self._gas_used = None  # the C core has the start
            if r < _STOPPED:
                self.raw._finished = True
                return r  # type: ignore[no-any-return]
            return self._stopped(r - _STOPPED, export)
        finally:
            self._busy = False

    def _stopped(self, k: int, export: Any) -> int:
        """The rest of a call after its first stop ``k`` (what
        pvm_instance_call returns: a host call or an interrupt), on a site or
        from the general path; the caller holds ``_busy``."""
        raw = self.raw
        raw._finished = False  # keep RawInstance's view (program_counter None after Finished)
        h = self._h
        while True:
            if k >= _HOSTCALL:
                k -= _HOSTCALL
                if k < self._nhandlers:
                    caller = self.caller
                    caller.hostcall = k
                    try:
                        self._handlers[k](caller)
                    except Exception as exc:
                        self._host_failed(exc, k, export)
                else:
                    self._unknown_hostcall(k, export)
            elif k == _FINISHED:  # finished with a0 >= _STOPPED: read it
                raw._finished = True
                return self._rv[7] & self._mask  # type: ignore[index]
            else:
                self._interrupt(k, export)
            r = _SITE_RESUME(h)
            if r < _STOPPED:
                raw._finished = True
                return r  # type: ignore[no-any-return]
            k = r - _STOPPED

    def _site(self, export: str, pc: int) -> None:
        """Makes the call site of ``export`` at ``pc`` (used by :meth:`call` from
        the next call on) when this instance's calls can take it."""
        if self._inline and self._ops is lib and self._h is not None and len(self._sites) < 256:
            site = ffi.new("pvm_call_site *")
            site.vm = self._h
            site.pc = pc
            self._sites[export] = site

    def _call_general(self, export: str | int, args: tuple[Any, ...], gas: int | None) -> int:
        """:meth:`call` for every case: any export, up to 9 arguments, and the
        first call of an export by name (which makes its site)."""
        pc = self._exports.get(export) if export.__class__ is str else None
        if pc is None:
            pc = self._resolve(export)
        elif not self._busy:
            self._site(export, pc)  # type: ignore[arg-type]
        n = len(args)
        if n > 2 or not self._inline:
            return self._invoke(pc, self._plain_args(args), export, gas)
        # The common case inline (no further Python frame): up to two
        # arguments, one C call that sets the registers and runs, one per
        # resumption after a host call.
        mask = self._mask
        a0 = a1 = 0
        if n:
            a0 = args[0]
            if a0.__class__ is not int or not 0 <= a0 <= mask:
                a0 = self._plain_arg(a0)
            if n == 2:
                a1 = args[1]
                if a1.__class__ is not int or not 0 <= a1 <= mask:
                    a1 = self._plain_arg(a1)
        if self._busy:
            raise ExecutionError("the instance is already running a call (re-entrant call)")
        h = self._h
        if h is None:
            raise ExecutionError("the instance is closed")
        if self._metered:
            gv = self._gv
            if gas is None:
                gas = gv[0]  # type: ignore[index]
            else:
                gv[0] = gas  # type: ignore[index]
            self._gas_start = gas
            self._gas_used = None
        raw = self.raw
        raw._finished = False  # keep RawInstance's view (program_counter None after Finished)
        self._busy = True
        try:
            r = _CALL(h, pc, a0, a1)
            if not r:  # Finished
                raw._finished = True
                return self._rv[7] & mask  # type: ignore[index]
            # a stop: served as on a site (pvm_site_resume resumes any call)
            return self._stopped(r, export)
        finally:
            self._busy = False

    def _plain_args(self, args: tuple[Any, ...]) -> tuple[int, ...]:
        mask = self._mask
        for a in args:
            if a.__class__ is not int or not 0 <= a <= mask:
                args = tuple(self._plain_arg(x) for x in args)
                break
        if len(args) > 9:
            raise ExecutionError(f"too many arguments: {len(args)} > 9 registers")
        return args

    def typed_func(self, export: str | int, params: Sequence[str] = (),
                   result: str | None = None) -> ExportFunc:
        """A callable for ``export`` with typed arguments and result (reference
        marshalling: u32 zero- and i32 sign-extended on 64-bit code; u64/i64 as
        two registers, low half first, on 32-bit code)."""
        key = (export, tuple(params), result)
        f = self._typed.get(key)
        if f is None:
            f = self._typed[key] = ExportFunc(self, export, params, result)
        return f

    def _plain_arg(self, a: Any) -> int:
        if isinstance(a, bool):
            return int(a)
        if not isinstance(a, int):
            raise TypeError(f"export arguments are ints, got {type(a).__name__}")
        mask = self._mask
        if not -((mask + 1) >> 1) <= a <= mask:
            hint = " (declare it as u64 with typed_func)" if not self.is_64_bit else ""
            raise ExecutionError(f"argument {a} does not fit a {mask.bit_length()}-bit "
                                 f"register{hint}")
        return a & mask

    def _resolve(self, export: Any) -> int:
        if isinstance(export, str):
            return self.module.export_pc(export)
        if isinstance(export, int) and not isinstance(export, bool) and 0 <= export < 1 << 32:
            return export
        raise ExecutionError(f"invalid export {export!r}")

    def _invoke(self, pc: int, a: Sequence[int], export: Any, gas: int | None) -> int:
        """The call loop.  ``a`` holds up to 9 argument-register values (u64, or
        u32 on Latest32) in the order a0..a5, t0..t2; every other register is
        zeroed except ra and sp."""
        if self._busy:
            raise ExecutionError("the instance is already running a call (re-entrant call)")
        h = self._h
        rv = self._rv
        if rv is None or h is None:
            raise ExecutionError("the instance is closed")
        if self._metered:
            gv = self._gv
            if gas is None:
                gas = gv[0]  # type: ignore[index]
            else:
                gv[0] = gas  # type: ignore[index]
            self._gas_start = gas
            self._gas_used = None
        # A native instance: one C call sets the registers and runs
        # (pvm_instance_call), one per resumption, the hostcall number folded
        # into the result (no extra call to fetch it).
        raw = self.raw
        raw._finished = False  # keep RawInstance's view (program_counter None after Finished)
        handlers = self._handlers
        caller = self.caller
        resume = _RESUME
        n = len(a)
        self._busy = True
        try:
            if n == 0:
                r = _CALL(h, pc, 0, 0)
            elif n == 1:
                r = _CALL(h, pc, a[0], 0)
            elif n == 2:
                r = _CALL(h, pc, a[0], a[1])
            else:
                rv[:] = self._rv_template
                if self.is_64_bit:
                    for i in range(n):
                        rv[ARG_REGS[i]] = a[i]
                else:  # Latest32 registers hold sign-extended 32-bit values
                    for i in range(n):
                        v = a[i]
                        rv[ARG_REGS[i]] = v | _HIGH32 if v & _SIGN32 else v
                r = _ENTER(h, pc)
            while True:
                if r == _FINISHED:
                    raw._finished = True
                    return rv[7] & self._mask
                if r >= _HOSTCALL:
                    k = r - _HOSTCALL
                    if k < self._nhandlers:
                        caller.hostcall = k
                        try:
                            handlers[k](caller)
                        except Exception as exc:
                            self._host_failed(exc, k, export)
                    else:
                        self._unknown_hostcall(k, export)
                else:
                    self._interrupt(r, export)
                r = resume(h)
        finally:
            self._busy = False

    def _name(self, export: Any) -> str:
        if isinstance(export, str):
            return export
        for name, pc in self._exports.items():
            if pc == export:
                return name
        return f"<pc {export}>"

    def _pc(self) -> int | None:
        pc = int(self._ops.pvm_instance_pc(self._h))
        return None if pc < 0 else pc

    def _host_failed(self, exc: Exception, n: int, export: Any) -> None:
        symbol = self._names[n]
        pc = self._pc()
        if isinstance(exc, GuestFault):
            raise Trap(pc, self._name(export), f"host function {symbol!r}: {exc}") from exc
        raise HostError(f"host function {symbol!r} raised {type(exc).__name__}: {exc}",
                        symbol=symbol, function=self._name(export), pc=pc) from exc

    def _unknown_hostcall(self, n: int, export: Any) -> None:
        if self._fallback is None:
            raise Trap(self._pc(), self._name(export),
                       f"ecalli {n} is outside the import table ({self._nhandlers} imports)")
        self.caller.hostcall = n
        try:
            self._fallback(self.caller, n)
        except Exception as exc:
            pc = self._pc()
            if isinstance(exc, GuestFault):
                raise Trap(pc, self._name(export), f"host fallback: {exc}") from exc
            raise HostError(f"the host fallback raised {type(exc).__name__}: {exc}",
                            function=self._name(export), pc=pc) from exc

    def _interrupt(self, kind: int, export: Any) -> None:
        """Handles a stop other than finish/ecalli: returns to resume, else raises."""
        ops, h = self._ops, self._h
        if kind == _STEP:
            if self.on_step is not None:
                self.on_step(self, int(ops.pvm_instance_pc(h)))
            return
        if kind == _TRAP:
            raise Trap(self._pc(), self._name(export))
        if kind == _NOT_ENOUGH_GAS:
            raise OutOfGas(self._pc(), int(ops.pvm_instance_gas(h)))
        if kind == _SEGFAULT:
            page = int(ops.pvm_instance_fault_address(h))
            if self._map_page(page):
                return
            raise Trap(self._pc(), self._name(export),
                       f"page fault at 0x{page:x} outside the module's memory")
        if ops is lib:
            raise run_error(h)
        raise ExecutionError(f"unexpected interrupt {kind}")  # pragma: no cover - other ops raise

    def _map_page(self, page: int) -> bool:
        """Dynamic paging: maps a stack/RO/RW page on demand (execution.md 4.6)."""
        mm = self.raw.memory_map
        size = mm.page_size
        raw = self.raw
        blob = self.module.blob
        if mm.stack_address_low <= page < mm.stack_address_high:
            raw.map_memory(page, size, writable=True)
            return True
        for base, length, payload, writable in (
                (mm.ro_data_address, mm.ro_data_size, blob.ro_data, False),
                (mm.rw_data_address, mm.rw_data_size, blob.rw_data, True)):
            if base <= page < base + length:
                raw.map_memory(page, size, writable=True)
                chunk = payload[page - base:page - base + size]
                if chunk:
                    raw.write_memory(page, chunk)
                if not writable:
                    raw.protect_memory(page, size, writable=False)
                return True
        return False

    # ---- state after (or between) calls ----
    @property
    def user_data(self) -> Any:
        return self.caller.user_data

    @user_data.setter
    def user_data(self, value: Any) -> None:
        self.caller.user_data = value

    @property
    def gas(self) -> int:
        """Gas left (0 without metering)."""
        return int(self._ops.pvm_instance_gas(self._h)) if self._metered else 0

    @gas.setter
    def gas(self, value: int) -> None:
        if self._metered:
            self._settle_gas_used()
            self._ops.pvm_instance_set_gas(self._h, value)

    @property
    def gas_used(self) -> int:
        """Gas consumed by the last call (0 without metering)."""
        self._settle_gas_used()
        return self._gas_used or 0

    def _settle_gas_used(self) -> None:
        """``_gas_used`` None: the last call's use is not computed yet; it
        started with ``_gas_start`` or, if None (a call on a site), with what
        the C core recorded (pvm_instance_call_gas)."""
        if self._gas_used is None:
            if not self._metered:
                self._gas_used = 0
                return
            ops, h = self._ops, self._h
            start = self._gas_start
            if start is None:
                start = int(ops.pvm_instance_call_gas(h))
            self._gas_used = start - int(ops.pvm_instance_gas(h))

    @property
    def gas_metering(self) -> bool:
        return bool(self._metered)

    def reg(self, r: int) -> int:
        return self.raw.reg(r)

    def set_reg(self, r: int, value: int) -> None:
        self.raw.set_reg(r, value & MASK64)

    @property
    def regs(self) -> list[int]:
        return self.raw.regs

    @property
    def program_counter(self) -> int | None:
        return self.raw.program_counter

    @property
    def memory_map(self) -> MemoryMap:
        return self.raw.memory_map

    def read_memory(self, address: int, length: int) -> bytes:
        return self.raw.read_memory(address, length)

    def write_memory(self, address: int, data: bytes) -> None:
        self.raw.write_memory(address, bytes(data))

    def memory_view(self, address: int, length: int) -> memoryview:
        return self.raw.memory_view(address, length)

    def is_memory_accessible(self, address: int, length: int, *, write: bool = False) -> bool:
        return self.raw.is_memory_accessible(address, length, write=write)

    def sbrk(self, size: int) -> int | None:
        return self.raw.sbrk(size)

    @property
    def heap_size(self) -> int:
        return self.raw.heap_size

    def reset_memory(self) -> None:
        """Restores the initial memory image and heap (registers are zeroed too)."""
        self.raw.reset_memory()

    # ---- lifetime ----
    def close(self) -> None:
        """Frees the instance now: its memory, and its sandbox worker goes back
        to the pool at once (instead of whenever the garbage collector runs).
        Any later use raises :class:`~executor.errors.ExecutionError`.  Also
        done on leaving a ``with`` block; closing twice is harmless."""
        if self._busy:
            raise ExecutionError("cannot close an instance while it runs a call")
        if self._h is None:
            return
        self._ops = _CLOSED
        self._h = None
        self._sites = {}
        self._rv = self._gv = None
        self.caller._rebind(_CLOSED, None)
        self.raw.close()

    @property
    def closed(self) -> bool:
        return self._h is None

    def __enter__(self) -> Instance:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = ", closed" if self.closed else ""
        return f"Instance({self.module!r}, backend={self.module.backend!r}{state})"


class _ClosedOps:
    """Stands in for the C functions of a closed instance: every use raises."""

    def __getattr__(self, name: str) -> Any:
        def closed(*args: Any) -> Any:
            raise ExecutionError("the instance is closed")
        setattr(self, name, closed)  # made once per name
        return closed


_CLOSED = _ClosedOps()


class ExportFunc:
    """A typed export of one instance: ``f(*args, gas=None)`` -> result."""

    def __init__(self, instance: Instance, export: str | int, params: Sequence[str],
                 result: str | None):
        self.instance = instance
        self.export = export
        self.pc = instance._resolve(export)
        is64 = instance.is_64_bit
        self.params = tuple(p.strip() for p in params)
        for p in self.params:
            if p not in INT_TYPES:
                raise ValueError(f"export parameters are integer types, got {p!r}")
        self.result = None if result is None or result.strip() in UNIT_TYPES else result.strip()
        if self.result is not None and self.result not in INT_TYPES:
            raise ValueError(f"export results are integer types, got {result!r}")
        slots: list[tuple[int, ...]] = []  # indexes into the a0..a5, t0..t2 order
        k = 0
        for p in self.params:
            n = 2 if INT_TYPES[p][0] == 64 and not is64 else 1
            slots.append(tuple(range(k, k + n)))
            k += n
        if k > len(ARG_REGS):
            raise ValueError(f"{k} argument registers needed, at most {len(ARG_REGS)} exist")
        self._slots = slots

    def __call__(self, *args: int, gas: int | None = None) -> int | None:
        inst = self.instance
        if len(args) != len(self.params):
            raise ExecutionError(f"{inst._name(self.export)} takes {len(self.params)} "
                                 f"arguments, got {len(args)}")
        values = [0] * len(ARG_REGS)
        for p, slots, a in zip(self.params, self._slots, args, strict=True):
            bits, signed = INT_TYPES[p]
            lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
            if isinstance(a, bool) or not isinstance(a, int) or not lo <= a <= hi:
                raise ExecutionError(f"argument {a!r} does not fit {p}")
            if len(slots) == 2:
                values[slots[0]] = a & MASK32
                values[slots[1]] = (a >> 32) & MASK32
            else:
                values[slots[0]] = a & inst._mask
        a0 = inst._invoke(self.pc, values, self.export, gas)
        if self.result is None:
            return None
        bits, signed = INT_TYPES[self.result]
        if bits == 64 and not inst.is_64_bit:
            value = a0 | (int(inst._ops.pvm_instance_reg(inst._h, 8)) << 32)
        else:
            value = a0 & ((1 << bits) - 1)
        return to_signed(value, bits) if signed else value
