"""pvm-executor: a PolkaVM executor in Python with a C core.

The embedding API::

    from executor import Config, Engine, Linker, Module

    engine = Engine(Config())                      # backend="interpreter" or "jit"
    module = Module(engine, "example-hello-world.polkavm")
    linker = Linker()
    linker.define("get_third_number", lambda caller: 100)
    instance = linker.instantiate(module)
    assert instance.call("add_numbers", 1, 10) == 111

Host-function conventions: :mod:`executor.hostfn`; calls: :mod:`executor.instance`.
The names below are imported lazily, so ``import executor`` stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from executor.caller import Caller
    from executor.config import Config
    from executor.engine import Engine, Module
    from executor.errors import (
        BlobError,
        ExecutionError,
        GuestFault,
        HostError,
        MissingImport,
        ModuleError,
        OutOfGas,
        PvmError,
        Trap,
    )
    from executor.instance import ExportFunc, Instance
    from executor.linker import InstancePre, Linker

_LAZY = {
    "Config": "executor.config",
    "Engine": "executor.engine",
    "Module": "executor.engine",
    "Linker": "executor.linker",
    "InstancePre": "executor.linker",
    "Instance": "executor.instance",
    "ExportFunc": "executor.instance",
    "Caller": "executor.caller",
    "PvmError": "executor.errors",
    "BlobError": "executor.errors",
    "ModuleError": "executor.errors",
    "ExecutionError": "executor.errors",
    "Trap": "executor.errors",
    "OutOfGas": "executor.errors",
    "HostError": "executor.errors",
    "MissingImport": "executor.errors",
    "GuestFault": "executor.errors",
}

__all__ = [
    "BlobError",
    "Caller",
    "Config",
    "Engine",
    "ExecutionError",
    "ExportFunc",
    "GuestFault",
    "HostError",
    "Instance",
    "InstancePre",
    "Linker",
    "MissingImport",
    "Module",
    "ModuleError",
    "OutOfGas",
    "PvmError",
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
