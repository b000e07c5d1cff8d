"""``pvm-exec disasm --native``: every guest instruction with the x86-64 code the
JIT emitted for it -- the view needed to judge and improve the generated code.

The machine code comes from the C core (``pvm_program_jit_code``), the mapping
from guest pcs to code offsets from ``pvm_program_jit_offset`` and the layout
(entry/exit routines, instruction bodies, out-of-line paths, jump table) from
``pvm_program_jit_sections``; the x86-64 is decoded by binutils' ``objdump``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass

from executor.blob import ProgramBlob
from executor.errors import PvmError
from executor.native import errbuf, errstr, ffi, lib
from executor.raw import NativeProgram
from executor.tools.asm import format_instruction

_LINE = re.compile(r"^\s*([0-9a-f]+):\t([0-9a-f ]+?)\s*\t(.*)$")


@dataclass(frozen=True)
class X86:
    """One decoded machine instruction at a code offset."""

    offset: int
    raw: bytes
    text: str


def decode_x86(code: bytes, start: int = 0, end: int | None = None) -> list[X86]:
    """x86-64 instructions of ``code[start:end]`` (Intel syntax), by objdump."""
    objdump = shutil.which("objdump")
    if objdump is None:
        raise PvmError("objdump (binutils) is needed to show the machine code")
    end = len(code) if end is None else end
    if end <= start:
        return []
    fd, path = tempfile.mkstemp(suffix=".bin")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(code[start:end])
        r = subprocess.run([objdump, "-D", "-b", "binary", "-m", "i386:x86-64", "-M", "intel",
                            f"--adjust-vma={start}", "-w", path],
                           capture_output=True, text=True, check=False)
    finally:
        os.unlink(path)
    if r.returncode != 0:
        raise PvmError(f"objdump failed: {r.stderr.strip()}")
    out = []
    for line in r.stdout.splitlines():
        m = _LINE.match(line)
        if m:
            raw = bytes.fromhex(m.group(2).replace(" ", ""))
            out.append(X86(int(m.group(1), 16), raw, " ".join(m.group(3).split())))
    return out


def native_listing(blob: ProgramBlob, *, metered: bool = True, raw: bool = False) -> str:
    """The listing: a header per guest instruction (pc, assembler text) followed by
    its machine code; the entry/exit routines first, the out-of-line paths and the
    jump table's size last."""
    program = NativeProgram(blob, validate=False)
    err = errbuf()
    size = ffi.new("size_t*")
    m = int(metered)
    if lib.pvm_program_compile_jit(program._ptr, m, size, err, 256) != 0:
        raise PvmError(f"the JIT cannot compile this program: {errstr(err)}")
    ptr = lib.pvm_program_jit_code(program._ptr, m, size)
    code = bytes(ffi.buffer(ptr, size[0]))
    sections = ffi.new("uint32_t[3]")
    lib.pvm_program_jit_sections(program._ptr, m, sections)
    body, cold, table = (int(x) for x in sections)
    x86 = decode_x86(code, 0, table)

    # where each compiled guest instruction's code starts
    heads: dict[int, list[str]] = {}
    uncompiled: list[str] = []
    for insn in blob.instructions(listing=True):
        text = format_instruction(insn) if insn.info is not None else "invalid"
        off = int(lib.pvm_program_jit_offset(program._ptr, m, insn.pc))
        start = program.block_start(insn.pc)
        note = ""
        if start == insn.pc:
            note = f"  ; block, gas {program.block_cost(insn.pc)}" if metered else "  ; block"
        label = f"{insn.pc:>8}: {text}{note}"
        if off < 0:
            if not insn.implicit:
                uncompiled.append(label)
            continue
        heads.setdefault(off, []).append(label)

    out = [f"; {len(code)} bytes of x86-64 for {program.instruction_count} instructions "
           f"({'gas metered' if metered else 'no gas metering'}); "
           f"instructions at {body:#x}, out-of-line paths at {cold:#x}, "
           f"jump table at {table:#x} ({(len(code) - table) // 4} entries)",
           "", "; entry trampoline and common exit"]
    for x in x86:
        if x.offset == body:
            out += ["", "; guest instructions"]
        if x.offset == cold:
            out += ["", "; out-of-line paths (out-of-gas and trap exits)"]
        for label in heads.get(x.offset, ()):
            out.append(label)
        hexes = f"{x.raw.hex(' '):<30} " if raw else ""
        out.append(f"    {x.offset:8x}  {hexes}{x.text}")
    if uncompiled:
        out += ["", "; never reached (no machine code):"] + uncompiled
    return "\n".join(out) + "\n"
