"""Access to the compiled C core (the cffi module ``executor._native``)."""

from __future__ import annotations

from typing import Any

try:
    from executor._native import ffi as _ffi
    from executor._native import lib as _lib
except ImportError as exc:  # pragma: no cover - depends on the build
    raise ImportError(
        "the native core executor._native is not built; run `make build` "
        "(or `pip install -e .`) in the project root"
    ) from exc

ffi: Any = _ffi
lib: Any = _lib


def errbuf() -> Any:
    """A fresh C buffer for error messages."""
    return ffi.new("char[256]")


def errstr(buf: Any) -> str:
    return str(ffi.string(buf).decode("utf-8", "replace"))
