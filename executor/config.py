"""Engine configuration (the reference's ``Config`` plus ``ModuleConfig`` defaults).

One :class:`Config` is given to an :class:`~executor.engine.Engine`; every
:class:`~executor.module.Module` built by that engine starts from these values
and may override the per-module ones (page size, metering, paging, ...).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from typing import Literal

from executor.errors import ModuleError
from executor.gas import CostModel, FullCostModel

GasMetering = bool | Literal["sync", "none"]

SANDBOXES = (None, "linux", "auto")
MiB = 1 << 20
#: Default bounds on a module's code section (bytes of guest code), per backend,
#: checked before any decoding or compiling.  The interpreter takes what the
#: blob format allows; the JIT half of it (its machine code is ~4-20x larger).
DEFAULT_CODE_SIZE_LIMITS = {"interpreter": 32 * MiB, "jit": 16 * MiB}
#: Default bound on the JIT's machine code for one module: what a sandbox
#: worker's code region holds, so in-process and sandboxed accept the same.
DEFAULT_JIT_NATIVE_CODE_LIMIT = 64 * MiB
MIN_PAGE_SIZE = 0x1000
MAX_PAGE_SIZE = 0x10000


def normalize_gas_metering(value: GasMetering) -> bool:
    """``True``/``"sync"`` -> metered (sync), ``False``/``"none"`` -> unmetered."""
    if value is True or value == "sync":
        return True
    if value is False or value == "none":
        return False
    if value == "async":
        raise ModuleError("async gas metering is not supported (use 'sync' or 'none')")
    raise ModuleError(f"invalid gas_metering {value!r} (expected a bool, 'sync' or 'none')")


def check_page_size(page_size: int) -> int:
    """A page size must be a power of two in [0x1000, 0x10000] (execution.md 3.1)."""
    if not isinstance(page_size, int) or isinstance(page_size, bool):
        raise ModuleError(f"invalid page size: {page_size!r}")
    if page_size < MIN_PAGE_SIZE:
        raise ModuleError(f"invalid page size: page size is too small (0x{page_size:x})")
    if page_size > MAX_PAGE_SIZE:
        raise ModuleError(f"invalid page size: page size is too big (0x{page_size:x})")
    if page_size & (page_size - 1):
        raise ModuleError(f"invalid page size: page size is not a power of two (0x{page_size:x})")
    return page_size


@dataclass(frozen=True)
class Config:
    """How an :class:`~executor.engine.Engine` builds modules and instances.

    ``backend``        ``"interpreter"`` (default) or any name from
                       :func:`executor.backends.available_backends` (e.g. ``"jit"``).
    ``sandbox``        ``"auto"`` (default): JIT code runs in Linux sandbox workers where
                       they work here, in-process otherwise; ``"linux"``: require the
                       sandbox; ``None``: in-process (explicit opt-out).  The
                       interpreter always runs in-process.
    ``gas_metering``   ``True``/``"sync"`` (default) or ``False``/``"none"``.
    ``cost_model``     a :class:`~executor.gas.CostModel` (per-instruction costs), a
                       :class:`~executor.gas.FullCostModel` (the reference's pipeline
                       model, with a cache variant), or ``None`` = the naive model;
                       :func:`executor.gas.cost_model_from_name` maps the names
                       ``naive``, ``full``, ``full-l1-hit`` ... to these.
    ``page_size``      module page size, a power of two in [0x1000, 0x10000].
    ``dynamic_paging`` start instances with no memory mapped; calls map the stack,
                       RO and RW pages on demand (execution.md 4, step 6).
    ``aux_data_size``  bytes of the aux-data region (execution.md 3.2).
    ``worker_count``   sandbox workers to keep (stored for the JIT backend), >= 1.
    ``step_tracing``   interrupt before every instruction (see ``Instance.on_step``).
    ``strict``         parse blobs in strict mode (every import named, jump-table
                       entries and export pcs inside the code).
    ``sandbox_stall_timeout``
                       seconds a sandbox worker may go without using any CPU while
                       the host waits on it (stopped, blocked, a lost wake-up)
                       before it is killed and the call raises ``SandboxError``;
                       guest run time does not count.  ``None``: never.
    ``interpreter_code_limit`` / ``jit_code_limit``
                       most bytes of guest code (the blob's code section) a module may
                       have on that backend; checked before anything is decoded or
                       compiled (defaults: 32 MiB / 16 MiB).
    ``jit_native_code_limit``
                       most bytes of machine code the JIT emits for one module
                       (default 64 MiB, what a sandbox worker holds); compiling stops
                       with a :class:`~executor.errors.ModuleError` as soon as it is
                       passed, so a hostile blob costs at most this much code memory.
    """

    backend: str = "interpreter"
    sandbox: str | None = "auto"
    gas_metering: GasMetering = True
    cost_model: CostModel | FullCostModel | None = None
    page_size: int = MIN_PAGE_SIZE
    dynamic_paging: bool = False
    aux_data_size: int = 0
    worker_count: int = 2
    step_tracing: bool = False
    strict: bool = False
    sandbox_stall_timeout: float | None = 5.0
    interpreter_code_limit: int = DEFAULT_CODE_SIZE_LIMITS["interpreter"]
    jit_code_limit: int = DEFAULT_CODE_SIZE_LIMITS["jit"]
    jit_native_code_limit: int = DEFAULT_JIT_NATIVE_CODE_LIMIT

    def __post_init__(self) -> None:
        if not isinstance(self.backend, str) or not self.backend:
            raise ModuleError(f"invalid backend {self.backend!r}")
        if self.sandbox not in SANDBOXES:
            raise ModuleError(
                f"invalid sandbox {self.sandbox!r} (expected 'auto', 'linux' or None)")
        normalize_gas_metering(self.gas_metering)
        if self.cost_model is not None and not isinstance(self.cost_model,
                                                          (CostModel, FullCostModel)):
            raise ModuleError("cost_model must be a CostModel or a FullCostModel, "
                              f"got {type(self.cost_model)}")
        check_page_size(self.page_size)
        if not isinstance(self.aux_data_size, int) or not 0 <= self.aux_data_size < 1 << 32:
            raise ModuleError(f"invalid aux_data_size {self.aux_data_size!r}")
        if not isinstance(self.worker_count, int) or self.worker_count < 1:
            raise ModuleError(f"invalid worker_count {self.worker_count!r} (must be >= 1)")
        t = self.sandbox_stall_timeout
        if t is not None and (isinstance(t, bool) or not isinstance(t, int | float) or not t > 0):
            raise ModuleError(f"invalid sandbox_stall_timeout {t!r} (seconds > 0, or None)")
        for name in ("interpreter_code_limit", "jit_code_limit", "jit_native_code_limit"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or not 0 < v < 1 << 40:
                raise ModuleError(f"invalid {name} {v!r} (a positive number of bytes)")

    def code_size_limit(self, backend: str | None = None) -> int:
        """The bound on guest code bytes for ``backend`` (default: this config's)."""
        b = self.backend if backend is None else backend
        return self.jit_code_limit if b == "jit" else self.interpreter_code_limit

    @property
    def metered(self) -> bool:
        """Whether gas is metered (sync)."""
        return normalize_gas_metering(self.gas_metering)

    def with_(self, **changes: object) -> Config:
        """A copy with some fields changed (validated again)."""
        return replace(self, **changes)  # type: ignore[arg-type]

    @classmethod
    def from_env(cls, **overrides: object) -> Config:
        """Defaults taken from ``PVM_BACKEND``, ``PVM_SANDBOX`` and
        ``PVM_GAS_METERING`` when set; keyword arguments win."""
        values: dict[str, object] = {}
        if b := os.environ.get("PVM_BACKEND"):
            values["backend"] = b
        if s := os.environ.get("PVM_SANDBOX"):
            values["sandbox"] = None if s in ("none", "") else s
        if g := os.environ.get("PVM_GAS_METERING"):
            values["gas_metering"] = g
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]
