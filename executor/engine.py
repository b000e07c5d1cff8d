"""The :class:`Engine`: a validated configuration, the first object of the embedding API.

::

    engine = Engine(Config(backend="interpreter"))
    module = engine.module("hello.polkavm")      # Module(engine, "hello.polkavm")
    linker = Linker()
    linker.define("get_third_number", lambda caller: 100)
    instance = linker.instantiate(module)
    assert instance.call("add_numbers", 1, 10) == 111

The engine checks that the configured backend runs on this machine and decides
whether the JIT runs in a Linux sandbox worker.  It is the top of the API's layers:
this module -> :mod:`executor.module` -> :mod:`executor.linker` ->
:mod:`executor.instance` -> :mod:`executor.caller` (ARCHITECTURE.md); ``Module`` is
importable from here too.
"""

from __future__ import annotations

from typing import Any

from executor.backends import available_backends
from executor.config import Config
from executor.errors import ModuleError
from executor.module import BlobSource, Module

__all__ = ["BlobSource", "Engine", "Module"]


class Engine:
    """Holds a :class:`Config` after checking that its backend runs here."""

    def __init__(self, config: Config | None = None):
        self.config = config if config is not None else Config()
        available = available_backends()
        if self.config.backend not in available:
            raise ModuleError(f"backend {self.config.backend!r} is not available on this "
                              f"machine (available: {', '.join(available)})")
        self.sandbox: str | None = None
        if self.config.backend == "jit" and self.config.sandbox in ("auto", "linux"):
            from executor.sandbox import sandbox_unavailable_reason

            reason = sandbox_unavailable_reason()
            if reason is None:
                self.sandbox = "linux"
            elif self.config.sandbox == "linux":
                raise ModuleError(f"the Linux sandbox is not available here: {reason}")

    @property
    def backend(self) -> str:
        return self.config.backend

    def module(self, blob: BlobSource, **overrides: Any) -> Module:
        """``Module(self, blob, **overrides)``."""
        return Module(self, blob, **overrides)

    def __repr__(self) -> str:
        return f"Engine({self.config!r})"

