"""cffi build script for the native core (API mode, out-of-line).

The cdef is the part of native/pvm.h between the CFFI-BEGIN and CFFI-END
markers, so the C header stays the one description of the interface.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from cffi import FFI

ROOT = Path(__file__).resolve().parent.parent
NATIVE = ROOT / "native"

SOURCES = [
    "isa.c", "decode.c", "memory.c", "program.c", "instance.c", "interp.c",
    "jit/compile.c", "jit/runtime.c",
]


def _cdef() -> str:
    text = (NATIVE / "pvm.h").read_text()
    m = re.search(r"/\* CFFI-BEGIN \*/(.*)/\* CFFI-END \*/", text, re.S)
    if m is None:
        raise RuntimeError("native/pvm.h lacks the CFFI-BEGIN/CFFI-END markers")
    return m.group(1)


def _cflags() -> list[str]:
    flags = ["-std=gnu11", "-O2", "-Wall", "-Wextra", "-Werror", "-fno-strict-aliasing"]
    extra = os.environ.get("PVM_EXTRA_CFLAGS", "")
    return flags + extra.split()


def _path(p: Path) -> str:
    """Relative to the project root when building from it (setuptools wants
    relative source paths), absolute otherwise (the sanitizer build)."""
    if Path.cwd().resolve() == ROOT:
        return str(p.relative_to(ROOT))
    return str(p)


ffibuilder = FFI()
ffibuilder.cdef(_cdef())
# PVM_NATIVE_MODULE selects another module name, e.g. for the sanitizer build
# that `make test-asan` compiles into build-asan/ next to the normal one.
MODULE = os.environ.get("PVM_NATIVE_MODULE", "executor._native")

ffibuilder.set_source(
    MODULE,
    '#include "pvm.h"\n',
    sources=[_path(NATIVE / s) for s in SOURCES],
    include_dirs=[_path(NATIVE)],
    extra_compile_args=_cflags(),
    extra_link_args=os.environ.get("PVM_EXTRA_LDFLAGS", "").split(),
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
