#!/usr/bin/env python3.12
"""tsrkit-pvm (PyPI; Python 3.12 only) on the JAM v0.4 vectors or a timing loop.

Runs under benches/peers/.venv312 (made by `make peers`), not under our own virtualenv:

    .venv312/bin/python tsrkit_pvm.py probe
    .venv312/bin/python tsrkit_pvm.py --backend BACKEND vectors DIR [SKIP]
    .venv312/bin/python tsrkit_pvm.py --backend BACKEND loop PROGRAM_HEX GAS [REPEATS]

BACKEND is ``interpreter`` (pure Python), ``cython`` or ``recompiler`` (x86-64).  Output
is JSON lines, like the Node harnesses (benches/peers/vectors.mjs): one raw final state per
vector, then ``{"seconds": S}``; bench_peers.py checks them against the vectors.

The recompiler loads its signal-handling library with
``ctypes.CDLL(importlib.resources.files("libs") / "libsegwrap.so")``, but the wheel ships
no ``libs`` package: it bundles the library as
``tsrkit_pvm/recompiler/segwrap/_segwrap.*.so`` instead, and the import error is swallowed
(``tsrkit_pvm._HAS_RECOMPILER`` is then False).  LD_LIBRARY_PATH cannot help, since the
path is built from that package.  ``segwrap_shim()`` makes the bundled library found: a
``libs`` folder in the virtualenv holding ``libsegwrap.so`` -> the bundled file, put on
sys.path before tsrkit_pvm is imported.  Nothing of the package is copied or changed.
"""

from __future__ import annotations

import ctypes
import importlib
import importlib.util
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

# This file is named like the package: drop its own folder from the import path, or
# `import tsrkit_pvm` would import this harness.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

PAGE = 4096
BACKENDS = ("interpreter", "cython", "recompiler")


def _package_dir() -> Path:
    spec = importlib.util.find_spec("tsrkit_pvm")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("tsrkit_pvm is not installed in this Python")
    return Path(next(iter(spec.submodule_search_locations)))


def segwrap_as_installed() -> str | None:
    """Why the recompiler's library is not found without the shim (None: it is found)."""
    from importlib.resources import files

    try:
        path = files("libs") / "libsegwrap.so"
        ctypes.CDLL(str(path))
    except Exception as exc:  # what tsrkit_pvm.recompiler.pvm swallows
        return f"{type(exc).__name__}: {exc}"
    return None


def segwrap_shim() -> Path:
    bundled = sorted((_package_dir() / "recompiler" / "segwrap").glob("_segwrap*.so"))
    if not bundled:
        raise SystemExit("the tsrkit_pvm wheel has no bundled _segwrap library")
    root = Path(sys.prefix) / "tsrkit-segwrap"
    link = root / "libs" / "libsegwrap.so"
    link.parent.mkdir(parents=True, exist_ok=True)
    if not link.exists() or link.resolve() != bundled[0].resolve():
        link.unlink(missing_ok=True)
        link.symlink_to(bundled[0])
    sys.path.insert(0, str(root))
    return bundled[0]


def _status(st: Any) -> tuple[str, int | None]:
    name = str(st.value.name)
    fault = st.value.register if name == "page-fault" else None
    return ("ecalli" if name == "host" else name), fault


def _pages(v: dict[str, Any], writable: bool) -> list[int]:
    return [a // PAGE for m in v["initial-page-map"] if m["is-writable"] == writable
            for a in range(m["address"], m["address"] + m["length"], PAGE)]


def _bytes(v: dict[str, Any]) -> dict[int, int]:
    return {c["address"] + i: b for c in v["initial-memory"] for i, b in enumerate(c["contents"])}


def _mod(name: str) -> Any:
    """A tsrkit_pvm module (imported by name: this file has the package's name)."""
    return importlib.import_module(name)


Run = Callable[[dict[str, Any]], tuple[Any, int, int, list[int], Callable[[int, int], bytes]]]


def runner(backend: str) -> tuple[Run, Callable[[bytes], Any]]:
    """(run one vector, prepare a program for the loop) for one backend."""
    tsrkit_pvm = _mod("tsrkit_pvm")
    if backend == "interpreter":
        INT_Memory = _mod("tsrkit_pvm.interpreter.memory").INT_Memory
        INT_Program = _mod("tsrkit_pvm.interpreter.program").INT_Program
        Interpreter = _mod("tsrkit_pvm.interpreter.pvm").Interpreter

        def run_int(v: dict[str, Any]) -> Any:
            prog = INT_Program.decode_from(bytes(v["program"]))[0]
            mem = INT_Memory(_bytes(v), _pages(v, False), _pages(v, True))
            st, pc, gas, regs, mem = Interpreter.execute(prog, v["initial-pc"], v["initial-gas"],
                                                         list(v["initial-regs"]), mem)
            return st, pc, gas, regs, mem.read

        def loop_int(code: bytes) -> Any:
            prog = INT_Program.decode_from(code)[0]
            return lambda gas: Interpreter.execute(prog, 0, gas, [0] * 13, INT_Memory({}, [], []))

        return run_int, loop_int
    if backend == "cython":
        if not tsrkit_pvm._HAS_CYTHON:
            raise RuntimeError("tsrkit_pvm._HAS_CYTHON is False (cpvm extension not importable)")
        CyMemory = _mod("tsrkit_pvm.cpvm.cy_memory").CyMemory
        CyProgram = _mod("tsrkit_pvm.cpvm.cy_program").CyProgram
        CyInterpreter = _mod("tsrkit_pvm.cpvm.cy_pvm").CyInterpreter

        def run_cy(v: dict[str, Any]) -> Any:
            prog = CyProgram.decode_from(bytes(v["program"]))[0]
            mem = CyMemory(_bytes(v), _pages(v, False), _pages(v, True))
            st, pc, gas, regs, mem = CyInterpreter.execute(prog, v["initial-pc"], v["initial-gas"],
                                                           list(v["initial-regs"]), mem)
            return st, pc, gas, regs, mem.read

        def loop_cy(code: bytes) -> Any:
            prog = CyProgram.decode_from(code)[0]
            return lambda gas: CyInterpreter.execute(prog, 0, gas, [0] * 13, CyMemory({}, [], []))

        return run_cy, loop_cy
    if backend == "recompiler":
        if not tsrkit_pvm._HAS_RECOMPILER:
            why = segwrap_as_installed()
            raise RuntimeError(f"tsrkit_pvm._HAS_RECOMPILER is False: {why}")
        REC_Memory = _mod("tsrkit_pvm.recompiler.memory").REC_Memory
        REC_Program = _mod("tsrkit_pvm.recompiler.program").REC_Program
        Recompiler = _mod("tsrkit_pvm.recompiler.pvm").Recompiler
        VMContext = _mod("tsrkit_pvm.recompiler.vm_context").VMContext

        def run_rec(v: dict[str, Any]) -> Any:
            prog = REC_Program.decode_from(bytes(v["program"]))[0]
            size = VMContext.calculate_size(len(prog.jump_table))
            mem = REC_Memory.from_initial(v["initial-page-map"], v["initial-memory"], size)
            st, pc, gas, regs, mem = Recompiler.execute(prog, v["initial-pc"], v["initial-gas"],
                                                        list(v["initial-regs"]), mem)
            return st, pc, gas, regs, lambda a, n: ctypes.string_at(mem.offset + a, n)

        def loop_rec(code: bytes) -> Any:
            prog = REC_Program.decode_from(code)[0]
            prog.assemble()  # compiled outside the timed run, like our JIT

            def go(gas: int) -> Any:
                size = VMContext.calculate_size(len(prog.jump_table))
                return Recompiler.execute(prog, 0, gas, [0] * 13, REC_Memory(size))

            return go

        return run_rec, loop_rec
    raise SystemExit(f"unknown backend {backend!r}; one of {', '.join(BACKENDS)}")


def emit(obj: object) -> None:
    print(json.dumps(obj), flush=True)


def cmd_vectors(folder: str, backend: str, skip: int) -> None:
    run, _ = runner(backend)
    t0 = time.perf_counter()
    files = sorted(f for f in Path(folder).glob("*.json") if not f.name.startswith("schema"))
    for f in files[skip:]:
        v = json.loads(f.read_text())
        try:
            st, pc, gas, regs, read = run(v)
            status, fault = _status(st)
            emit({"name": v["name"], "status": status, "pc": pc, "gas": str(gas),
                  "regs": [str(r & 0xFFFFFFFFFFFFFFFF) for r in regs], "fault": fault,
                  "memory": [{"address": m["address"], "hex": _read_hex(read, m)}
                             for m in v["initial-page-map"]]})
        except Exception as exc:
            emit({"name": v["name"], "error": f"{type(exc).__name__}: {exc}"})
    emit({"seconds": time.perf_counter() - t0})


def _read_hex(read: Callable[[int, int], bytes], m: dict[str, Any]) -> str | None:
    try:
        return bytes(read(m["address"], m["length"])).hex()
    except Exception:
        return None


def cmd_loop(code_hex: str, gas: int, backend: str, repeats: int) -> None:
    _, prepare = runner(backend)
    go = prepare(bytes.fromhex(code_hex))
    times: list[float] = []
    result: Any = None
    while len(times) < repeats and sum(times) < 30.0:  # slow backends: fewer repeats
        t0 = time.perf_counter()
        result = go(gas)
        times.append(time.perf_counter() - t0)
    st, pc, left, regs, _ = result
    status, _fault = _status(st)
    emit({"status": status, "gas": str(left), "pc": pc, "seconds": min(times), "runs": times,
          "registers": [str(r & 0xFFFFFFFFFFFFFFFF) for r in regs]})


def cmd_probe() -> None:
    from importlib.metadata import version

    as_installed = segwrap_as_installed()
    bundled = segwrap_shim()
    tsrkit_pvm = _mod("tsrkit_pvm")

    backends: dict[str, str | None] = {}
    for b in BACKENDS:
        try:
            runner(b)
            backends[b] = None
        except Exception as exc:
            backends[b] = f"{type(exc).__name__}: {exc}"
    emit({"version": version("tsrkit-pvm"), "python": sys.version.split()[0],
          "segwrap_as_installed": as_installed, "segwrap_bundled": bundled.name,
          "has_recompiler": bool(tsrkit_pvm._HAS_RECOMPILER), "backends": backends})


def main(argv: list[str]) -> None:
    backend = "interpreter"
    if argv[:1] == ["--backend"] and len(argv) > 1:
        backend, argv = argv[1], argv[2:]
    if not argv or argv[0] not in ("probe", "vectors", "loop"):
        raise SystemExit(__doc__)
    if argv[0] == "probe":
        cmd_probe()
        return
    segwrap_shim()  # before tsrkit_pvm is imported
    if argv[0] == "vectors":
        cmd_vectors(argv[1], backend, int(argv[2]) if len(argv) > 2 else 0)
    else:
        cmd_loop(argv[1], int(argv[2]), backend, int(argv[3]) if len(argv) > 3 else 1)


if __name__ == "__main__":
    main(sys.argv[1:])
