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


ffibuilder = FFI()
ffibuilder.cdef(_cdef())
ffibuilder.set_source(
    "executor._native",
    '#include "pvm.h"\n',
    sources=[str((NATIVE / s).relative_to(ROOT)) for s in SOURCES],
    include_dirs=[str(NATIVE.relative_to(ROOT))],
    extra_compile_args=_cflags(),
    extra_link_args=os.environ.get("PVM_EXTRA_LDFLAGS", "").split(),
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
