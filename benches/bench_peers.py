#!/usr/bin/env python3
"""Other PVM implementations side by side (issue 11): the JAM v0.4 vector pass count
and a long-running loop in the raw JAM program format.

    (cd benches/peers && npm install)        # @fluffylabs/anan-as 1.2.0, pinned
    .venv/bin/python benches/bench_peers.py [--iterations N] [--write]

Done so far: anan-as (its `release-mini` build, through benches/peers/anan_as.mjs).
Not yet: @typeberry/lib, and tsrkit-pvm (PyPI; installs only on Python 3.12).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benches"))

from results import machine_info, write_section  # noqa: E402

from executor.asm import assemble  # noqa: E402
from executor.backends import available_backends, new_instance  # noqa: E402
from executor.raw import NativeProgram, Profile  # noqa: E402
from executor.vectors import collect, run_json_vector  # noqa: E402

PEERS = ROOT / "benches" / "peers"
VECTORS = ROOT.parent / "shared" / "vectors" / "jam-v0.4" / "programs"


def loop_program(iterations: int) -> bytes:
    src = f"""%isa = latest64
pub @main:
    a0 = 0
    a1 = {iterations}
@loop:
    a0 = a0 + 1
    a2 = a2 ^ a0
    jump @loop if a0 <u a1
    trap
"""
    return assemble(src).code_blob()


def anan(*args: str) -> dict[str, object]:
    r = subprocess.run(["node", str(PEERS / "anan_as.mjs"), *args], capture_output=True,
                       text=True, cwd=PEERS, check=True)
    return dict(json.loads(r.stdout.strip().splitlines()[-1]))


def ours_loop(code: bytes, backend: str, gas: int) -> tuple[float, int, int]:
    from executor.blob import ProgramBlob
    from executor.isa import InstructionSet

    blob = ProgramBlob.from_code_blob(code, InstructionSet.LATEST64)
    inst = new_instance(NativeProgram(blob, profile=Profile.JAM_V04), backend, dynamic_paging=True)
    inst.gas = gas
    inst.next_program_counter = 0
    t0 = time.perf_counter()
    intr = inst.run()
    dt = time.perf_counter() - t0
    assert intr.kind.name == "TRAP", intr
    return dt, inst.gas, inst.reg(9)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--iterations", type=int, default=5_000_000)
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()
    if not (PEERS / "node_modules").exists():
        print("run `npm install` in benches/peers first", file=sys.stderr)
        return 2
    gas = 10 * args.iterations
    code = loop_program(args.iterations)
    rows = []
    vec = anan("vectors", str(VECTORS))
    t0 = time.perf_counter()
    ours = [run_json_vector(p) for p in collect([VECTORS])]
    ours_s = time.perf_counter() - t0
    ours_pass = sum(r.ok for r in ours)
    loop = anan("loop", code.hex(), str(gas))
    base = float(loop["seconds"])  # type: ignore[arg-type]
    rows.append(("anan-as 1.2.0 (release-mini, WebAssembly in node)", f"{vec['passed']}/201",
                 base, str(loop["gas"]), "1.0 (baseline)"))
    for backend in available_backends():
        dt, left, reg = ours_loop(code, backend, gas)
        rows.append((f"pvm-executor {backend}", f"{ours_pass}/201", dt, str(left),
                     f"{base / dt:.1f}x faster" if dt < base else f"{dt / base:.1f}x slower"))
    lines = [f"Machine: {machine_info()}", "",
             "Command: `.venv/bin/python benches/bench_peers.py"
             f" --iterations {args.iterations}{' --write' if args.write else ''}`", "",
             f"Loop: {args.iterations:,} iterations of 3 instructions (raw JAM program, "
             "Latest64 numbering), one run each.", "",
             "| implementation | JAM v0.4 vectors passed | loop seconds | gas left | vs anan-as |",
             "|---|---|---|---|---|"]
    for name, passed, dt, left, ratio in rows:
        lines.append(f"| {name} | {passed} | {dt:.3f} | {left} | {ratio} |")
    fails = ", ".join(vec["failures"])  # type: ignore[arg-type]
    lines += ["", f"anan-as fails: {fails or 'none'} — the 9 page-fault vectors, where it "
              "charges gas per instruction (9999) and the vectors, like PolkaVM, charge per "
              "basic block (9998); see shared/spec/gas.md §7.",
              f"Our vector runner took {ours_s:.2f} s for all 201 (Python harness included).",
              "Not yet compared: @typeberry/lib (npm) and tsrkit-pvm (PyPI, Python 3.12 only)."]
    body = "\n".join(lines)
    print(body)
    if args.write:
        write_section("Peer comparison", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
