#!/usr/bin/env python3
"""Other PVM implementations side by side (issue 11): the JAM v0.4 vector pass count
and a long-running loop in the raw JAM program format.

    make peers            # benches/peers/setup.sh: npm packages + tsrkit-pvm in .venv312
    .venv/bin/python benches/bench_peers.py [--iterations N] [--repeats N] [--write]

Peers, each through a small harness in benches/peers/ that prints raw final states:
@fluffylabs/anan-as (release-mini WebAssembly build, anan_as.mjs), @typeberry/lib (its
TypeScript interpreter, typeberry.mjs) and tsrkit-pvm (interpreter, Cython and recompiler
backends, tsrkit_pvm.py under Python 3.12).  Every peer's final state is checked here with
the rules of our own runner (executor/tools/vectors.py): status, pc, gas, registers, the
page-fault address and every byte of the mapped memory.  Peers that are not installed are
reported with the command that installs them.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benches"))

from results import machine_info, stats, write_section  # noqa: E402

from executor.backends import available_backends, new_instance  # noqa: E402
from executor.raw import NativeProgram, Profile  # noqa: E402
from executor.tools.asm import assemble  # noqa: E402
from executor.tools.vectors import collect, run_json_vector  # noqa: E402

PEERS = ROOT / "benches" / "peers"
VECTORS = ROOT.parent / "shared" / "vectors" / "jam-v0.4" / "programs"
PY312 = PEERS / ".venv312" / "bin" / "python"
INSTALL = "make peers"  # runs benches/peers/setup.sh
MASK64 = (1 << 64) - 1


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


@dataclass
class Peer:
    name: str  # as shown in the tables
    argv: list[str]  # the harness; "vectors DIR [SKIP]" or "loop HEX GAS [REPEATS]" follow


@dataclass
class Outcome:
    """What one implementation did: vector problems by name, and its loop run."""

    name: str
    problems: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    vector_seconds: float | None = None
    loop: dict[str, Any] | None = None

    @property
    def passed(self) -> int:
        return sum(not p for p in self.problems.values())


# --- checking a peer's raw final state, with the rules of executor/tools/vectors.py -------------

def check(v: dict[str, Any], r: dict[str, Any]) -> list[tuple[str, str]]:
    """(category, message) for everything that differs from the vector's expectation."""
    if "error" in r:
        return [("error", str(r["error"]))]
    p: list[tuple[str, str]] = []
    if r["status"] != v["expected-status"]:
        p.append(("status", f"status {r['status']}, expected {v['expected-status']}"))
    if r["pc"] != v["expected-pc"]:
        p.append(("pc", f"pc {r['pc']}, expected {v['expected-pc']}"))
    if int(r["gas"]) != v["expected-gas"]:
        p.append(("gas", f"gas {r['gas']}, expected {v['expected-gas']}"))
    for i, (got, want) in enumerate(zip(r["regs"], v["expected-regs"], strict=True)):
        if int(got) != want:
            p.append(("registers", f"r{i} = 0x{int(got):x}, expected 0x{want:x}"))
    if r["status"] == "page-fault" and r["fault"] != v.get("expected-page-fault-address"):
        p.append(("fault address", f"fault address {r['fault']}, expected "
                  f"{v.get('expected-page-fault-address')}"))
    expected = {c["address"] + i: b for c in v["expected-memory"]
                for i, b in enumerate(c["contents"])}
    seen: set[int] = set()
    bad = 0
    for region, m in zip(r["memory"], v["initial-page-map"], strict=True):
        if region["hex"] is None:
            p.append(("memory", f"mapped region 0x{m['address']:x} cannot be read back"))
            continue
        for i, b in enumerate(bytes.fromhex(region["hex"])):
            addr = m["address"] + i
            seen.add(addr)
            want = expected.get(addr, 0)
            if b != want:
                bad += 1
                if bad <= 2:
                    p.append(("memory", f"memory[0x{addr:x}] = 0x{b:02x}, expected 0x{want:02x}"))
    for addr, want in expected.items():
        if addr not in seen and want:
            p.append(("memory", f"memory[0x{addr:x}] expected 0x{want:02x} but is not mapped"))
    return p


def describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


def json_lines(text: str) -> list[dict[str, Any]]:
    out = []
    for line in text.splitlines():
        if line.startswith("{"):
            try:
                out.append(dict(json.loads(line)))
            except json.JSONDecodeError:
                pass
    return out


def peer_vectors(peer: Peer, vectors: list[dict[str, Any]]) -> Outcome:
    """Runs all vectors through a peer's harness; a harness that dies on one vector is
    restarted after it (the vector counts as failed, with the way the process ended)."""
    out = Outcome(peer.name)
    by_name = {v["name"]: v for v in vectors}
    skip = 0
    seconds = 0.0
    empty = 0  # consecutive runs that reported nothing: the harness cannot start
    while skip < len(vectors):
        proc = subprocess.run([*peer.argv, "vectors", str(VECTORS), str(skip)], cwd=PEERS,
                              capture_output=True, text=True, timeout=1800, check=False)
        lines = json_lines(proc.stdout)
        done = [r for r in lines if "name" in r]
        for r in done:
            out.problems[r["name"]] = check(by_name[r["name"]], r)
        skip += len(done)
        seconds += sum(float(r["seconds"]) for r in lines if "seconds" in r)
        if any("seconds" in r for r in lines) and proc.returncode == 0:
            break
        empty = 0 if done else empty + 1
        if skip < len(vectors):
            err = (proc.stderr.strip().splitlines() or [""])[-1][:160]
            how = f"harness {describe_exit(proc.returncode)}" + (f": {err}" if err else "")
            for v in vectors[skip:] if empty >= 2 else vectors[skip:skip + 1]:
                out.problems[v["name"]] = [("crash", how)]
            skip = len(vectors) if empty >= 2 else skip + 1
    out.vector_seconds = seconds
    return out


def peer_loop(peer: Peer, code: bytes, gas: int, repeats: int) -> dict[str, Any]:
    proc = subprocess.run([*peer.argv, "loop", code.hex(), str(gas), str(repeats)], cwd=PEERS,
                          capture_output=True, text=True, timeout=1800, check=False)
    lines = [r for r in json_lines(proc.stdout) if "seconds" in r]
    if proc.returncode != 0 or not lines:
        err = (proc.stderr.strip().splitlines() or [""])[-1][:200]
        return {"error": f"{describe_exit(proc.returncode)}: {err}"}
    return lines[-1]


# --- ours -----------------------------------------------------------------------------

def ours_vectors(backend: str, paths: list[Path]) -> Outcome:
    out = Outcome(f"pvm-executor {backend}")
    t0 = time.perf_counter()
    for p in paths:
        res = run_json_vector(p, backend=backend)
        out.problems[res.name] = [(our_category(m), m) for m in res.problems]
    out.vector_seconds = time.perf_counter() - t0
    return out


def our_category(message: str) -> str:
    """The category of one of executor/tools/vectors.py's problem messages."""
    for prefix, cat in (("status", "status"), ("pc", "pc"), ("gas", "gas"), ("r", "registers"),
                        ("fault address", "fault address"), ("memory", "memory")):
        if message.startswith(prefix):
            return cat
    return "error"


def ours_loop(code: bytes, backend: str, gas: int, repeats: int) -> dict[str, Any]:
    from executor.blob import ProgramBlob
    from executor.isa import InstructionSet

    blob = ProgramBlob.from_code_blob(code, InstructionSet.LATEST64)
    program = NativeProgram(blob, profile=Profile.JAM_V04)
    runs = []
    for _ in range(repeats):
        inst = new_instance(program, backend, dynamic_paging=True)
        inst.gas = gas
        inst.next_program_counter = 0
        t0 = time.perf_counter()
        intr = inst.run()
        runs.append(time.perf_counter() - t0)
    status = {"TRAP": "panic", "FINISHED": "halt"}.get(intr.kind.name, intr.kind.name.lower())
    return {"status": status, "gas": str(inst.gas), "pc": intr.pc, "seconds": min(runs),
            "runs": runs, "registers": [str(r) for r in inst.regs]}


# --- discovery ------------------------------------------------------------------------

def npm_version(package: str) -> str | None:
    meta = PEERS / "node_modules" / package / "package.json"
    if not meta.exists():
        return None
    return str(json.loads(meta.read_text())["version"])


def npm_override_notes() -> list[str]:
    """A line for each npm override in benches/peers/package.json that replaces a version
    range some installed package asks for."""
    overrides = dict(json.loads((PEERS / "package.json").read_text()).get("overrides", {}))
    modules = PEERS / "node_modules"
    notes = []
    for meta in sorted([*modules.glob("*/package.json"), *modules.glob("@*/*/package.json")]):
        pkg = json.loads(meta.read_text())
        for dep, wanted in dict(pkg.get("dependencies", {})).items():
            got = npm_version(dep)
            if dep in overrides and got is not None and got != wanted:
                notes.append(f"{pkg['name']} {pkg['version']} asks for {dep} {wanted}; "
                             f"{dep} {got} is installed through an npm override in "
                             "benches/peers/package.json, since the npm registry reachable "
                             "here has no version in that range (see benches/peers/"
                             "typeberry.mjs for why the measured interpreter is unaffected).")
    return notes


def discover() -> tuple[list[Peer], list[str]]:
    """The installed peers, and a line for each one that is missing or cannot run."""
    peers: list[Peer] = []
    notes: list[str] = []
    node = shutil.which("node")
    node_peers = [("@fluffylabs/anan-as", "anan-as {} (release-mini, WebAssembly in node)",
                   "anan_as.mjs"),
                  ("@typeberry/lib",
                   "typeberry {} (@typeberry/lib, TypeScript interpreter in node)",
                   "typeberry.mjs")]
    for package, label, script in node_peers:
        version = npm_version(package)
        if node is None:
            notes.append(f"{package}: not run, `node` is not on PATH (install Node.js, then "
                         f"`{INSTALL}`)")
        elif version is None:
            notes.append(f"{package}: not installed — `{INSTALL}` (or `cd benches/peers && "
                         "npm ci`)")
        else:
            peers.append(Peer(label.format(version), [node, str(PEERS / script)]))
    notes += npm_override_notes()
    if not PY312.exists():
        notes.append(f"tsrkit-pvm: not installed — `{INSTALL}` (needs Python 3.12; makes "
                     "benches/peers/.venv312)")
        return peers, notes
    harness = str(PEERS / "tsrkit_pvm.py")
    probe = subprocess.run([str(PY312), harness, "probe"], capture_output=True, text=True,
                           cwd=PEERS, check=False)
    info = json_lines(probe.stdout)
    if probe.returncode != 0 or not info:
        err = (probe.stderr.strip().splitlines() or [""])[-1]
        notes.append(f"tsrkit-pvm: the harness cannot load it ({describe_exit(probe.returncode)}: "
                     f"{err}) — `{INSTALL}`")
        return peers, notes
    version = info[-1]["version"]
    for backend, error in info[-1]["backends"].items():
        if error:
            notes.append(f"tsrkit-pvm {version} {backend}: not measured — {error}")
        else:
            kind = {"interpreter": "pure Python", "cython": "Cython",
                    "recompiler": "x86-64 recompiler"}[backend]
            peers.append(Peer(f"tsrkit-pvm {version} {backend} ({kind}, Python "
                              f"{info[-1]['python']})",
                              [str(PY312), harness, "--backend", backend]))
    if info[-1]["segwrap_as_installed"]:
        notes.append(
            f"tsrkit-pvm {version}: as installed, its recompiler is switched off "
            f"(`tsrkit_pvm._HAS_RECOMPILER` False) because it looks for "
            f"`libsegwrap.so` in a package named `libs` that the wheel does not ship "
            f"(`{info[-1]['segwrap_as_installed']}`; LD_LIBRARY_PATH or LD_PRELOAD cannot "
            f"help, the error comes before any library is loaded). benches/peers/tsrkit_pvm.py "
            f"points such a `libs` folder at the bundled `{info[-1]['segwrap_bundled']}`.")
    return peers, notes


# --- report ---------------------------------------------------------------------------

def ratio(ours: float, theirs: float) -> str:
    if ours <= 0 or theirs <= 0:
        return "-"
    if abs(ours - theirs) / theirs < 0.005:
        return "1.0"
    return f"{theirs / ours:.1f}x faster" if ours < theirs else f"{ours / theirs:.1f}x slower"


def median(loop: dict[str, Any]) -> float:
    return stats([float(x) for x in loop["runs"]])[1]


def sec(x: float) -> str:
    return f"{x:.4f}" if x < 0.1 else f"{x:.3f}" if x < 10 else f"{x:.1f}"


def loop_state(loop: dict[str, Any], ref: dict[str, Any]) -> str:
    if "error" in loop:
        return "did not run"
    diffs = []
    if loop["status"] != ref["status"]:
        diffs.append(f"status {loop['status']}")
    if loop["pc"] != ref["pc"]:
        diffs.append(f"pc {loop['pc']} (ours {ref['pc']})")
    if int(loop["gas"]) != int(ref["gas"]):
        diffs.append(f"gas left {loop['gas']} (ours {ref['gas']})")
    for i, (a, b) in enumerate(zip(loop["registers"], ref["registers"], strict=True)):
        if int(a) & MASK64 != int(b) & MASK64:
            diffs.append(f"r{i} = {a} (ours {b})")
    return "same as ours" if not diffs else "differs: " + ", ".join(diffs)


CATEGORIES = ("status", "pc", "gas", "registers", "fault address", "memory", "error", "crash")


def failure_table(outcomes: list[Outcome], vectors: dict[str, dict[str, Any]]) -> list[str]:
    """One row per implementation that fails vectors: how many vectors differ in each
    category, and the most common pattern with an example; then the short lists."""
    failing = [o for o in outcomes if o.passed < len(o.problems)]
    if not failing:
        return []
    used = [c for c in CATEGORIES
            if any(c in {k for k, _ in p} for o in failing for p in o.problems.values())]
    lines = ["| implementation | failed | " + " | ".join(used) + " | only the pc differs "
             "| most common pattern (vectors): example |",
             "|---|---:|" + "---:|" * len(used) + "---:|---|"]
    after: list[str] = []
    for o in failing:
        bad = {n: p for n, p in o.problems.items() if p}
        counts = [sum(c in {k for k, _ in p} for p in bad.values()) for c in used]
        pc_only = sum({k for k, _ in p} == {"pc"} for p in bad.values())
        groups: dict[tuple[str, ...], list[str]] = defaultdict(list)
        for name, p in bad.items():
            groups[tuple(sorted({k for k, _ in p}))].append(name)
        cats, names = max(groups.items(), key=lambda kv: len(kv[1]))
        example = "; ".join(m for _, m in bad[names[0]][:3])
        lines.append(f"| {o.name} | {len(bad)} | " + " | ".join(map(str, counts))
                     + f" | {pc_only} | {' + '.join(cats)} ({len(names)}): `{names[0]}`: "
                     f"{example} |")
        short = o.name.split(" (")[0]
        if len(bad) <= 10:
            after.append(f"{short} fails: " + ", ".join(f"`{n}`" for n in sorted(bad)) + ".")
        per_instruction = all(
            {k for k, _ in p} == {"gas"} and vectors[n]["expected-status"] == "page-fault"
            and any(m == f"gas {vectors[n]['expected-gas'] + 1}, expected "
                    f"{vectors[n]['expected-gas']}" for _, m in p)
            for n, p in bad.items())
        if per_instruction:
            after.append(f"{short}: every failure is a page-fault vector that ends with one "
                         "more gas left than expected, which is what charging gas per "
                         "instruction gives; the vectors, like PolkaVM, charge a whole basic "
                         "block on entry and refund nothing when it stops early "
                         "(shared/spec/gas.md §3, §7).")
    return lines + ([""] + after if after else [])


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--iterations", type=int, default=5_000_000)
    ap.add_argument("--repeats", type=int, default=5,
                    help="loop runs per implementation; the median counts (slow peers stop "
                         "repeating after 30 s)")
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()
    gas = 10 * args.iterations
    code = loop_program(args.iterations)
    paths = collect([VECTORS])
    vectors = [json.loads(p.read_text()) for p in paths]
    total = len(vectors)

    load_start = os.getloadavg()[0]
    peers, notes = discover()
    for n in notes:
        print("note:", n, file=sys.stderr)

    ours = [ours_vectors(b, paths) for b in available_backends()]
    for o, b in zip(ours, available_backends(), strict=True):
        o.loop = ours_loop(code, b, gas, args.repeats)
        print(f"{o.name}: {o.passed}/{total}, loop {median(o.loop):.4f} s", file=sys.stderr)
    theirs = []
    for peer in peers:
        print(f"{peer.name}: vectors ...", file=sys.stderr, flush=True)
        o = peer_vectors(peer, vectors)
        print(f"  {o.passed}/{total}; loop ...", file=sys.stderr, flush=True)
        o.loop = peer_loop(peer, code, gas, args.repeats)
        print(f"  {o.loop.get('runs', o.loop.get('error'))}", file=sys.stderr, flush=True)
        theirs.append(o)

    load_end = os.getloadavg()[0]
    ref = ours[0].loop
    assert ref is not None
    base = {o.name.split()[-1]: median(o.loop) for o in ours if o.loop}
    ours_cols = [b for b in ("interpreter", "jit") if b in base]
    lines = [f"Machine: {machine_info()}; node {node_version()}", "",
             "Commands: `make peers` (benches/peers/setup.sh: the npm packages pinned in "
             "benches/peers/package.json, tsrkit-pvm pinned in "
             "benches/peers/requirements-tsrkit.txt in a Python 3.12 virtualenv), then "
             f"`.venv/bin/python benches/bench_peers.py --iterations {args.iterations} "
             f"--repeats {args.repeats}{' --write' if args.write else ''}`", "",
             f"Vectors: all {total} JAM v0.4 vectors (shared/vectors/jam-v0.4/programs); a "
             "peer passes one when status, pc, gas, all registers, the page-fault address "
             "and every byte of the mapped memory match, as in our runner "
             "(executor/tools/vectors.py).", "",
             f"Loop: {args.iterations:,} iterations of 3 instructions (raw JAM program, "
             f"Latest64 numbering, {gas:,} gas), run until its final `trap`; time of the run "
             f"alone (program loaded or compiled before), median of {args.repeats} runs "
             "(fewer for implementations that pass 30 s). The ratio columns say how much "
             "faster our interpreter and our JIT ran the same loop (medians, this run). Final "
             "state: status, pc, gas left and all registers against our interpreter's; a "
             "speed ratio against a run that ends in a different state is not like for like.",
             "",
             "| implementation | vectors passed | loop s (median) | min / max | runs | gas left "
             "| final state | " + " | ".join(f"our {c} is" for c in ours_cols) + " |",
             "|---|---|---:|---:|---:|---:|---|" + "---|" * len(ours_cols)]
    for o in [*ours, *theirs]:
        loop = o.loop or {"error": "not run"}
        if "error" in loop:
            lines.append(f"| {o.name} | {o.passed}/{total} | - | - | - | - | loop did not run: "
                         f"{loop['error']} |" + " - |" * len(ours_cols))
            continue
        lo, secs, hi = stats([float(x) for x in loop["runs"]])
        state = "-" if o in ours[:1] else loop_state(loop, ref)
        lines.append(f"| {o.name} | {o.passed}/{total} | {sec(secs)} | {sec(lo)} / {sec(hi)} | "
                     f"{len(loop['runs'])} | {loop['gas']} | {state} | "
                     + " | ".join(ratio(base[c], secs) for c in ours_cols) + " |")
    lines += ["", f"Load average (1 min) {load_start:.2f} at the start and {load_end:.2f} at the "
              "end of the run: the machine is shared, so the timings are noisy (min / max "
              "above).",
              "", "Time for the whole vector set, harness included (process start excluded): "
              + ", ".join(f"{o.name.split(' (')[0]} {o.vector_seconds:.2f} s"
                          for o in [*ours, *theirs] if o.vector_seconds is not None) + "."]
    table = failure_table([*ours, *theirs], {v["name"]: v for v in vectors})
    if table:
        lines += ["", "Failed vectors: how many differ in each part of the final state (a "
                  "vector can differ in several; error: the library threw, crash: the harness "
                  "process died), and the most common combination:", "", *table]
    if notes:
        lines += ["", "Not measured or set up specially:", ""] + [f"- {n}" for n in notes]
    body = "\n".join(lines)
    print(body)
    if args.write:
        write_section("Peer comparison", body)
    return 0


def node_version() -> str:
    node = shutil.which("node")
    if node is None:
        return "none"
    r = subprocess.run([node, "--version"], capture_output=True, text=True, check=False)
    return r.stdout.strip() or "?"



if __name__ == "__main__":
    sys.exit(main())
