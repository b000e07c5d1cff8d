"""Small guest programs for the embedding-API tests and benchmarks (built with
the project's assembler, executor.tools.asm)."""

from __future__ import annotations

from typing import Any

from executor.backends import available_backends
from executor.blob import ProgramBlob
from executor.config import Config
from executor.engine import Engine, Module
from executor.tools.asm import assemble

ISAS = ("latest64", "latest32")
RO_DATA = bytes(range(1, 9))


def trampolines(isa: str = "latest64", imports: tuple[str, ...] = ("host0",),
                rw_data_size: int = 4096) -> ProgramBlob:
    """Read-only data is ``RO_DATA``; export ``h<i>`` is ``ecalli i; ret`` for
    each import, so the export's arguments reach host function ``i`` unchanged
    and its result comes back.

    Also: ``loop(n)`` calls import 0 ``n`` times and returns ``n``; ``bad``
    traps; ``spin`` loops forever; ``outside`` runs ``ecalli 77`` (outside the
    import table); ``add64`` adds two u64 (two registers each on 32-bit code)."""
    lines = [f"%isa = {isa}", "%stack_size = 4096", f"%rw_data_size = {rw_data_size}",
             f"%ro_data = {RO_DATA.hex()}"]
    lines += [f"%import {i} = {name}" for i, name in enumerate(imports)]
    for i in range(len(imports)):
        lines += [f"pub @h{i}:", f"    ecalli {i}", "    ret"]
    lines += [
        "pub @loop:",
        "    s0 = a0",
        "    s1 = a0",
        "@top:",
        "    jump @done if s0 == 0",
        "    ecalli 0",
        "    s0 = s0 - 1",
        "    jump @top",
        "@done:",
        "    a0 = s1",
        "    ret",
        "pub @bad:",
        "    trap",
        "pub @spin:",
        "@forever:",
        "    jump @forever",
        "pub @outside:",
        "    ecalli 77",
        "    ret",
        "pub @add64:",
    ]
    if isa == "latest32":
        lines += [
            "    t0 = a0 + a2",
            "    t1 = t0 <u a0",
            "    a1 = a1 + a3",
            "    a1 = a1 + t1",
            "    a0 = t0",
            "    ret",
        ]
    else:
        lines += ["    a0 = a0 + a1", "    ret"]
    return assemble("\n".join(lines) + "\n")


def module(blob: ProgramBlob, backend: str, **overrides: object) -> Module:
    return Module(Engine(Config(backend=backend)), blob, **overrides)  # type: ignore[arg-type]


def memory_image(inst: Any) -> dict[str, bytes]:
    """The read-only data, read/write data and stack regions of an instance
    (`Instance` or `RawInstance`), as bytes, for comparing two instances."""
    mm = inst.memory_map
    return {
        "ro": inst.read_memory(mm.ro_data_address, mm.ro_data_size),
        "rw": inst.read_memory(mm.rw_data_address, mm.rw_data_size),
        "stack": inst.read_memory(mm.stack_address_low, mm.stack_size),
    }


def backend_configs() -> list[tuple[str, Config]]:
    """Every way this machine runs a guest, named: the interpreter, the JIT in
    process and (where Linux sandboxing works here) the JIT in a sandbox worker."""
    out = [("interpreter", Config(backend="interpreter"))]
    if "jit" in available_backends():
        out.append(("jit-inprocess", Config(backend="jit", sandbox=None)))
        engine = Engine(Config(backend="jit"))
        if getattr(engine, "sandbox", None) == "linux":
            out.append(("jit-sandbox", Config(backend="jit")))
    return out
