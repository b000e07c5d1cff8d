#!/usr/bin/env python3
"""Disassemble -> assemble round trip over the real blobs and the JAM vector programs.

For every blob it prints whether

* ``text``: disassemble -> assemble -> disassemble gives identical text;
* ``bytes``: re-assembling the (faithful) disassembly reproduces the code, bitmask and
  jump table byte for byte (and, for ``.polkavm`` files, the whole file);
* ``canon``: re-assembling the *canonical* disassembly (every instruction in its
  shortest form, no ``%raw``) reproduces the bytes; where it does not, the first
  differing pc and the reason (unknown opcode, non-minimal immediate, padding bytes,
  clamped register nibble, ...);
* ``shortest``: whether the original uses the shortest encoding everywhere: every
  instruction canonical at its position and no jump offset longer than the least
  consistent layout needs (the reference writer can settle on 128 in two bytes where
  127 in one byte would also be consistent).

Usage: ``tools/roundtrip_report.py [--shared DIR] [--quick]`` (``--quick`` skips DOOM
and Quake).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from executor.blob import Instruction, ProgramBlob  # noqa: E402
from executor.isa import Form, InstructionSet, by_mnemonic  # noqa: E402
from executor.tools.asm import ProgramBuilder, assemble, disassemble, iter_noncanonical  # noqa: E402

REG_FORMS = {
    Form.RI: (0,), Form.RIO: (0,), Form.RII: (0,), Form.RI64: (0,),
    Form.RR: (0, 1), Form.RRI: (0, 1), Form.RRO: (0, 1), Form.RRII: (0, 1),
    Form.RRR: (0, 1, 2),
}


def classify(insn: Instruction, region: bytes, canon: bytes | None,
             isa: InstructionSet) -> str:
    """Why ``region`` (an instruction's bytes) is not its canonical encoding."""
    if canon is None:
        names = [o.mnemonic for o in by_mnemonic().values() if insn.opcode in o.opcodes]
        also = f" (is {'/'.join(names)} in other instruction sets)" if names else ""
        return f"unknown opcode {insn.opcode} in {isa.key}{also}"
    if len(region) > 25:
        return "bytes without an instruction start after it (gap > 24 bytes)"
    info = insn.info
    args = region[1:] + bytes(3)
    if info is not None:
        nibbles = {0: args[0] & 0xF, 1: args[0] >> 4, 2: args[1] & 0xF}
        if any(nibbles[n] > 12 for n in REG_FORMS.get(info.form, ())):
            return "register nibble > 12 (clamped to a5)"
    if len(region) < len(canon):
        return "operand bytes missing (operands read from the next instruction / zeros)"
    if len(region) > len(canon):
        if region.startswith(canon) or region[: len(canon)] == canon:
            return "padding bytes after the instruction"
        return "non-minimal immediate"
    return "ignored operand bits set"


@dataclass
class Result:
    name: str
    isa: str
    insns: int
    text: bool
    exact: bool
    canon: bool
    shortest: bool
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0


def _same_code(a: ProgramBlob, b: ProgramBlob) -> bool:
    return (a.code, a.bitmask, a.jump_table, a.jump_table_entry_size) == (
        b.code, b.bitmask, b.jump_table, b.jump_table_entry_size)


def _first_diff(a: ProgramBlob, b: ProgramBlob) -> int | None:
    for i, (x, y) in enumerate(zip(a.code, b.code, strict=False)):
        if x != y:
            return i
    if len(a.code) != len(b.code):
        return min(len(a.code), len(b.code))
    return None


def _longer_jumps(text: str) -> list[int]:
    """Jumps whose offsets the reference layout makes longer than the least layout."""
    builder = ProgramBuilder()
    builder.asm(text)
    ref = builder.build()
    short = builder.build(shortest=True)
    out = []
    ia = [i for i in ref.instructions() if not i.implicit]
    ib = [i for i in short.instructions() if not i.implicit]
    for x, y in zip(ia, ib, strict=True):
        if x.length != y.length:
            out.append(x.pc)
    return out


def check(name: str, blob: ProgramBlob, file_bytes: bytes | None) -> Result:
    t0 = time.perf_counter()
    text = disassemble(blob)
    again = assemble(text)
    text_ok = disassemble(again) == text
    exact = _same_code(blob, again) and (file_bytes is None or again.to_bytes() == file_bytes)
    canon_blob = assemble(disassemble(blob, canonical=True))
    canon_ok = _same_code(blob, canon_blob)
    noncanonical = list(iter_noncanonical(blob))
    longer = _longer_jumps(text)
    notes: list[str] = []
    reasons: dict[str, list[int]] = {}
    for insn, region, canon in noncanonical:
        reasons.setdefault(classify(insn, region, canon, blob.isa), []).append(insn.pc)
    for reason, pcs in reasons.items():
        notes.append(f"{len(pcs)} x {reason} (first at pc {pcs[0]})")
    if longer:
        notes.append(f"{len(longer)} jump offsets longer than the least layout needs "
                     f"(reference writer's fixed point; first at pc {longer[0]})")
    if not canon_ok:
        diff = _first_diff(blob, canon_blob)
        notes.append(f"canonical re-assembly first differs at pc {diff}")
    if not exact:
        notes.append(f"faithful re-assembly differs at pc {_first_diff(blob, again)}")
    insns = sum(1 for i in blob.instructions() if not i.implicit)
    return Result(name, blob.isa.key, insns, text_ok, exact, canon_ok,
                  not noncanonical and not longer, notes, time.perf_counter() - t0)


def _row(r: Result) -> str:
    flags = " ".join(("ok  " if v else "DIFF") for v in (r.text, r.exact, r.canon))
    short = "yes" if r.shortest else "no "
    line = f"{r.name:<44} {r.isa:<9} {r.insns:>7}  {flags}  {short}  {r.seconds:5.1f}s"
    return line + "".join(f"\n{'':<46}- {n}" for n in r.notes)


def blobs(shared: Path, quick: bool) -> list[Path]:
    out = [shared / "blobs" / "example-hello-world.polkavm"]
    if not quick:
        out += [shared / "blobs" / "doom.polkavm", shared / "blobs" / "quake.polkavm"]
    out += sorted((shared / "blobs" / "c-guests").glob("*.polkavm"))
    out += sorted((shared / "contracts-sample" / "out").glob("*.polkavm"))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default = Path(__file__).resolve().parent.parent.parent / "shared"
    ap.add_argument("--shared", type=Path, default=default)
    ap.add_argument("--quick", action="store_true", help="skip DOOM and Quake")
    args = ap.parse_args(argv)
    header = f"{'blob':<44} {'isa':<9} {'insns':>7}  text byte canon  shortest"
    print(header)
    print("-" * len(header))
    results = []
    for path in blobs(args.shared, args.quick):
        raw = path.read_bytes()
        r = check(path.name, ProgramBlob.from_bytes(raw), raw)
        results.append(r)
        print(_row(r), flush=True)
    vectors = sorted((args.shared / "vectors" / "jam-v0.4" / "programs").glob("*.json"))
    vres = []
    for path in vectors:
        program = bytes(json.loads(path.read_text())["program"])
        blob = ProgramBlob.from_code_blob(program, InstructionSet.LATEST64)
        r = check(path.stem, blob, None)
        r.exact = r.exact and assemble(disassemble(blob)).code_blob() == program
        vres.append(r)
        if not (r.text and r.exact and r.canon and r.shortest):
            print(_row(r))
    if vres:
        n = len(vres)
        print(f"{'jam-v0.4 vector programs':<44} {'latest64':<9} {n:>7} programs: text "
              f"{sum(r.text for r in vres)}/{n}, bytes {sum(r.exact for r in vres)}/{n}, "
              f"canonical {sum(r.canon for r in vres)}/{n}, shortest "
              f"{sum(r.shortest for r in vres)}/{n}")
    everything = results + vres
    failed = [r.name for r in everything if not (r.text and r.exact)]
    print(f"\n{len(everything)} blobs: text+bytes round trip {len(everything) - len(failed)}"
          f"/{len(everything)}; canonical bytes {sum(r.canon for r in everything)}"
          f"/{len(everything)}; shortest encoding {sum(r.shortest for r in everything)}"
          f"/{len(everything)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
