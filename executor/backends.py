"""Backend selection: every backend offers the :class:`~executor.raw.RawInstance`
surface (registers, gas, pc, memory, ``run()``)."""

from __future__ import annotations

from typing import Any

from executor.errors import PvmError
from executor.raw import NativeProgram, RawInstance

BACKENDS = ("interpreter",)


def available_backends() -> list[str]:
    """Backends that work on this machine."""
    return list(BACKENDS)


def new_instance(program: NativeProgram, backend: str = "interpreter", **kwargs: Any) -> RawInstance:
    """A fresh instance of ``program`` on ``backend``.

    Keyword arguments are those of :class:`RawInstance` (page_size,
    dynamic_paging, gas_metering, step_tracing, aux_data_size)."""
    if backend == "interpreter":
        return RawInstance(program, **kwargs)
    raise PvmError(f"backend {backend!r} is not available (available: {', '.join(BACKENDS)})")
