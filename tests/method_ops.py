"""Test plumbing: an :class:`~executor.instance.Instance` that drives its
:class:`~executor.raw.RawInstance` through the raw instance's Python methods
(``run``, ``reg``, ``set_reg``, ``gas``, ...) instead of the C core's functions.

It lets a test put a RawInstance subclass that overrides those methods (to record
or alter what happens) under the embedding API.  The library itself always drives
the C core directly (issue 16: this indirection used to sit on its hot path)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from executor.instance import Instance
from executor.raw import RETURN_TO_HOST, InterruptKind, RawInstance

_ECALLI = int(InterruptKind.ECALLI)
_FINISHED = int(InterruptKind.FINISHED)
_ZERO_ARGS = (0,) * 9


class MethodOps:
    """The ``lib.pvm_instance_*`` subset the call loop uses, implemented with the
    methods of an instance object (the handle is the instance itself)."""

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


class MethodDrivenInstance(Instance):
    """An Instance whose calls, host calls and gas go through ``raw``'s methods."""

    def __init__(self, pre: Any, raw: RawInstance, **kwargs: Any):
        super().__init__(pre, raw, **kwargs)
        ops = MethodOps()
        self._ops = ops
        self._h = raw
        self._rv = self._gv = None
        self.caller._rebind(ops, raw)

    def _invoke(self, pc: int, a: Sequence[int], export: Any, gas: int | None) -> int:
        """The call loop through the instance's methods (the standard call sequence,
        execution.md 4, one register at a time)."""
        from executor.errors import ExecutionError

        if self._busy:
            raise ExecutionError("the instance is already running a call (re-entrant call)")
        ops = self._ops
        h = self._h
        if self._metered:
            if gas is None:
                gas = int(ops.pvm_instance_gas(h))
            else:
                ops.pvm_instance_set_gas(h, gas)
            self._gas_start = gas
            self._gas_used = None
        if len(a) < 9:
            a = (*a, *_ZERO_ARGS[len(a):])
        sr = ops.pvm_instance_set_reg
        sr(h, 0, RETURN_TO_HOST)
        sr(h, 1, self._sp)
        for reg, value in zip((2, 3, 4), a[6:9], strict=True):
            sr(h, reg, value)
        sr(h, 5, 0)
        sr(h, 6, 0)
        for reg, value in zip(range(7, 13), a[:6], strict=True):
            sr(h, reg, value)
        ops.pvm_instance_set_next_pc(h, pc)
        handlers = self._handlers
        caller = self.caller
        self._busy = True
        try:
            while True:
                kind = ops.pvm_instance_run(h)
                if kind == _ECALLI:
                    n = ops.pvm_instance_ecalli(h)
                    if n < self._nhandlers:
                        caller.hostcall = n
                        try:
                            handlers[n](caller)
                        except Exception as exc:
                            self._host_failed(exc, n, export)
                    else:
                        self._unknown_hostcall(n, export)
                elif kind == _FINISHED:
                    return int(ops.pvm_instance_reg(h, 7))
                else:
                    self._interrupt(kind, export)
        finally:
            self._busy = False
