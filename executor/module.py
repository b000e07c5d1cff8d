"""The :class:`Module`: a program validated and compiled once, instantiated many times.

::

    module = Module(engine, "hello.polkavm")     # or engine.module("hello.polkavm")
    instance = module.instantiate(linker)        # linker.instantiate(module)

A module reads its engine's :class:`~executor.config.Config` (through the narrow
:class:`EngineSettings`), loads the blob (:class:`~executor.blob.ProgramBlob`),
compiles it once (:class:`~executor.raw.NativeProgram`) and makes the low-level
instances (:class:`~executor.raw.RawInstance`) its :class:`~executor.instance.Instance`
objects run on.  Layers: :mod:`executor.engine` -> this module ->
:mod:`executor.linker` -> :mod:`executor.instance` (ARCHITECTURE.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from executor.backends import new_instance
from executor.blob import ProgramBlob
from executor.config import Config, GasMetering, check_page_size, normalize_gas_metering
from executor.errors import ExecutionError, ModuleError
from executor.gas import AnyCostModel
from executor.instance import Instance
from executor.linker import Linker
from executor.raw import MemoryMap, NativeProgram, RawInstance

if TYPE_CHECKING:
    from executor.sandbox import SandboxPool

_DEFAULT_STALL_S = 5.0
"""The stall timeout a sandbox worker starts every instance with
(PVM_SBX_DEFAULT_STALL_NS in native/sandbox/protocol.h)."""


class EngineSettings(Protocol):
    """What a :class:`Module` reads of its engine (an :class:`executor.engine.Engine`):
    the configuration, the backend and the sandbox it chose."""

    config: Config
    sandbox: str | None

    @property
    def backend(self) -> str: ...


BlobSource = bytes | bytearray | memoryview | ProgramBlob | str | Path


def _load(blob: BlobSource, strict: bool) -> ProgramBlob:
    if isinstance(blob, ProgramBlob):
        if strict:
            blob.check_strict()
        return blob
    if isinstance(blob, bytes | bytearray | memoryview):
        return ProgramBlob.from_bytes(bytes(blob), strict=strict)
    if isinstance(blob, str | Path):
        return ProgramBlob.load(blob, strict=strict)
    raise TypeError(f"expected blob bytes, a ProgramBlob or a path, got {type(blob).__name__}")


class Module:
    """A program ready to instantiate: parsed, validated and compiled once.

    ``blob`` is the ``.polkavm`` bytes, a :class:`ProgramBlob` or a file path.
    Keyword arguments override the engine's :class:`Config` for this module
    (``page_size``, ``gas_metering``, ``dynamic_paging``, ``aux_data_size``,
    ``step_tracing``, ``cost_model``, ``strict``).

    Attributes: ``exports`` (name -> pc), ``imports`` (import index -> name,
    ``None`` for an unnamed import), ``memory_map``, ``is_64_bit``, ``blob``,
    ``program`` (the shared :class:`NativeProgram`).
    """

    def __init__(self, engine: EngineSettings, blob: BlobSource, *, page_size: int | None = None,
                 gas_metering: GasMetering | None = None, dynamic_paging: bool | None = None,
                 aux_data_size: int | None = None, step_tracing: bool | None = None,
                 cost_model: AnyCostModel | None = None, strict: bool | None = None):
        cfg = engine.config
        self.engine = engine
        self.page_size = check_page_size(cfg.page_size if page_size is None else page_size)
        self.gas_metering = normalize_gas_metering(
            cfg.gas_metering if gas_metering is None else gas_metering)
        self.dynamic_paging = bool(cfg.dynamic_paging if dynamic_paging is None
                                   else dynamic_paging)
        self.aux_data_size = cfg.aux_data_size if aux_data_size is None else aux_data_size
        self.step_tracing = bool(cfg.step_tracing if step_tracing is None else step_tracing)
        self.cost_model = cfg.cost_model if cost_model is None else cost_model
        self.strict = bool(cfg.strict if strict is None else strict)
        self.blob = _load(blob, self.strict)
        limit = cfg.code_size_limit()
        if len(self.blob.code) > limit:
            field = "jit_code_limit" if cfg.backend == "jit" else "interpreter_code_limit"
            raise ModuleError(f"the code section is {len(self.blob.code)} bytes, more than the "
                              f"{cfg.backend} backend accepts ({limit} bytes, Config.{field})")
        self.memory_map = MemoryMap(self.page_size, self.blob.ro_data_size,
                                    self.blob.rw_data_size, self.blob.stack_size,
                                    self.aux_data_size)
        self.program = NativeProgram(self.blob, cost_model=self.cost_model,
                                     jit_code_limit=cfg.jit_native_code_limit)
        self.is_64_bit = self.program.is_64_bit
        exports: dict[str, int] = {}
        for e in self.blob.exports:
            if e.name in exports and self.strict:
                raise ModuleError(f"duplicate export {e.name!r}")
            exports.setdefault(e.name, e.pc)
        self.exports: Mapping[str, int] = exports
        self.imports: tuple[str | None, ...] = tuple(self.blob.import_names())
        self._raw_kwargs: dict[str, Any] | None = None
        self._pool: SandboxPool | None = None
        self._stall_timeout: float | None = _DEFAULT_STALL_S

    @property
    def backend(self) -> str:
        return self.engine.backend

    def export_pc(self, name: str) -> int:
        try:
            return self.exports[name]
        except KeyError:
            raise ExecutionError(f"the module has no export named {name!r} (exports: "
                                 f"{', '.join(self.exports) or 'none'})") from None

    def new_raw_instance(self) -> RawInstance:
        """A fresh low-level instance on the engine's backend."""
        kwargs = self._raw_kwargs
        if kwargs is not None:
            pool = self._pool
            if pool is None:  # an in-process backend, known to work here
                return RawInstance(self.program, **kwargs)
            # a sandbox worker from the pool: straight to it (the first
            # instance went through new_instance, which checked the rest)
            worker = pool.acquire()
            try:
                inst = RawInstance(self.program, worker=worker, **kwargs)
            except BaseException:
                pool.release(worker)
                raise
            inst._release_worker = pool.release  # type: ignore[attr-defined]
            if self._stall_timeout != _DEFAULT_STALL_S:  # a worker starts with the default
                inst.set_stall_timeout(self._stall_timeout)
            return inst
        sandbox = self.engine.sandbox
        kwargs = {"page_size": self.page_size, "dynamic_paging": self.dynamic_paging,
                  "gas_metering": self.gas_metering, "step_tracing": self.step_tracing,
                  "aux_data_size": self.aux_data_size}
        inst = new_instance(self.program, self.engine.backend, sandbox=sandbox, **kwargs)
        if inst.worker is not None:
            from executor.sandbox import default_pool

            timeout = self.engine.config.sandbox_stall_timeout
            if timeout != _DEFAULT_STALL_S:  # a worker starts with the default
                inst.set_stall_timeout(timeout)
            # the next ones take a worker from the same pool themselves
            self._pool = default_pool()
            self._stall_timeout = timeout
        # checked once: the next ones go straight to C
        self._raw_kwargs = {**kwargs, "backend": inst.backend}
        return inst

    def instantiate(self, linker: Linker | None = None, **kwargs: Any) -> Instance:
        """Instantiates with ``linker`` (default: an empty one, so the module
        must import nothing)."""
        return (linker if linker is not None else Linker()).instantiate(self, **kwargs)

    def __repr__(self) -> str:
        return (f"Module(isa={self.blob.isa.key}, exports={list(self.exports)}, "
                f"imports={list(self.imports)})")
