"""Backend selection: every backend offers the :class:`~executor.raw.RawInstance`
surface (registers, gas, pc, memory, ``run()``)."""

from __future__ import annotations

from typing import Any

from executor.errors import PvmError
from executor.native import errbuf, errstr, lib
from executor.raw import NativeProgram, RawInstance

BACKENDS = ("interpreter", "jit")


def jit_unavailable_reason() -> str | None:
    """Why the in-process JIT cannot run here, or None if it can."""
    err = errbuf()
    if lib.pvm_jit_available(err, 256):
        return None
    return errstr(err)


def available_backends() -> list[str]:
    """Backends that work on this machine."""
    out = ["interpreter"]
    if jit_unavailable_reason() is None:
        out.append("jit")
    return out


def new_instance(program: NativeProgram, backend: str = "interpreter", *,
                 sandbox: str | None = None, **kwargs: Any) -> RawInstance:
    """A fresh instance of ``program`` on ``backend``.

    ``sandbox="linux"`` runs JIT code inside a sandbox worker taken from the
    default pool (returned when the instance is closed or collected).
    Keyword arguments are those of :class:`RawInstance` (page_size,
    dynamic_paging, gas_metering, step_tracing, aux_data_size)."""
    if sandbox not in (None, "none", "linux"):
        raise PvmError(f"unknown sandbox {sandbox!r} (expected 'linux' or None)")
    if sandbox == "linux":
        if backend != "jit":
            raise PvmError("the Linux sandbox runs the JIT backend (use --backend jit)")
        from executor.sandbox import default_pool

        pool = default_pool()
        worker = pool.acquire()
        try:
            inst = RawInstance(program, backend="jit", worker=worker, **kwargs)
        except BaseException:
            pool.release(worker)
            raise
        inst._release_worker = pool.release  # type: ignore[attr-defined]
        return inst
    if backend == "interpreter":
        return RawInstance(program, **kwargs)
    if backend == "jit":
        reason = jit_unavailable_reason()
        if reason is not None:
            raise PvmError(f"the JIT cannot run on this machine: {reason}; use the interpreter")
        return RawInstance(program, backend="jit", **kwargs)
    raise PvmError(f"backend {backend!r} is not available (available: {', '.join(BACKENDS)})")
