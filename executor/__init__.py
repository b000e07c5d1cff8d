"""pvm-executor: a PolkaVM executor in Python with a C core.

The embedding API::

    from executor import Config, Engine, Linker, Module

    engine = Engine(Config())                      # backend="interpreter" or "jit"
    module = Module(engine, "example-hello-world.polkavm")
    linker = Linker()
    linker.define("get_third_number", lambda caller: 100)
    instance = linker.instantiate(module)
    assert instance.call("add_numbers", 1, 10) == 111

The names below, in the order of their layers (ARCHITECTURE.md, "Python layers"):
:class:`ProgramBlob` (a parsed ``.polkavm`` blob), :class:`Config`, :class:`Engine`,
:class:`Module`, :class:`Linker` / :class:`InstancePre` / :class:`HostLayer`,
:class:`Instance` / :class:`ExportFunc`, :class:`Caller` (what a host function sees),
:class:`Executor` (many concurrent calls under trio), and the exceptions, all under
:class:`PvmError`.  Host-function conventions: :mod:`executor.hostfn`; calls:
:mod:`executor.instance`; pallet-revive contracts: :mod:`executor.revive`.  The tools
(assembler, vector runner, CLI, ...) are apart, in :mod:`executor.tools`.

The names are imported lazily, so ``import executor`` stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from executor.aio import Executor
    from executor.blob import ProgramBlob
    from executor.caller import Caller
    from executor.config import Config
    from executor.engine import Engine
    from executor.errors import (
        AssemblerError,
        BlobError,
        ExecutionError,
        GuestFault,
        HostError,
        MissingImport,
        ModuleError,
        OutOfGas,
        PvmError,
        SandboxError,
        Trap,
    )
    from executor.instance import ExportFunc, Instance
    from executor.linker import HostLayer, InstancePre, Linker
    from executor.module import Module

_LAZY = {
    "ProgramBlob": "executor.blob",
    "Config": "executor.config",
    "Engine": "executor.engine",
    "Module": "executor.module",
    "Linker": "executor.linker",
    "InstancePre": "executor.linker",
    "HostLayer": "executor.linker",
    "Instance": "executor.instance",
    "ExportFunc": "executor.instance",
    "Caller": "executor.caller",
    "Executor": "executor.aio",
    "PvmError": "executor.errors",
    "BlobError": "executor.errors",
    "ModuleError": "executor.errors",
    "AssemblerError": "executor.errors",
    "ExecutionError": "executor.errors",
    "SandboxError": "executor.errors",
    "Trap": "executor.errors",
    "OutOfGas": "executor.errors",
    "HostError": "executor.errors",
    "MissingImport": "executor.errors",
    "GuestFault": "executor.errors",
}

__all__ = [
    "AssemblerError",
    "BlobError",
    "Caller",
    "Config",
    "Engine",
    "ExecutionError",
    "Executor",
    "ExportFunc",
    "GuestFault",
    "HostError",
    "HostLayer",
    "Instance",
    "InstancePre",
    "Linker",
    "MissingImport",
    "Module",
    "ModuleError",
    "OutOfGas",
    "ProgramBlob",
    "PvmError",
    "SandboxError",
    "Trap",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'executor' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
