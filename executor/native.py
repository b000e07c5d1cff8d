"""Access to the compiled C core (the cffi module ``executor._native``)."""

from __future__ import annotations

import importlib
import os
from typing import Any

_MODULE = os.environ.get("PVM_NATIVE_MODULE", "executor._native")

try:
    _mod = importlib.import_module(_MODULE)
    _ffi = _mod.ffi
    _lib = _mod.lib
except ImportError as exc:  # pragma: no cover - depends on the build
    raise ImportError(
        f"the native core {_MODULE} is not built; run `make build` "
        "(or `pip install -e .`) in the project root"
    ) from exc

ffi: Any = _ffi
lib: Any = _lib


def errbuf() -> Any:
    """A fresh C buffer for error messages."""
    return ffi.new("char[256]")


def errstr(buf: Any) -> str:
    return str(ffi.string(buf).decode("utf-8", "replace"))
