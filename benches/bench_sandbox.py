#!/usr/bin/env python3
"""Sandbox costs: cold worker spawn, instantiate on a warm worker, export call
on a warm instance, ecalli round trip -- against the in-process JIT measured
in the same run; then issue 17's rows through the embedding API: warm
``noop()`` (c-guests/bench.polkavm), ``add_numbers(1, 10)`` with one host call
and instantiate (example-hello-world.polkavm), sync API and through the trio
``Executor`` side by side.

    .venv/bin/python benches/bench_sandbox.py [--write]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benches"))

import trio  # noqa: E402
from results import machine_info, stats, write_section  # noqa: E402

from executor import Config, Engine, Linker, Module  # noqa: E402
from executor.aio import Executor  # noqa: E402
from executor.raw import InterruptKind, NativeProgram, RawInstance  # noqa: E402
from executor.sandbox import SandboxProcess  # noqa: E402
from executor.tools.asm import assemble  # noqa: E402

NOOP = assemble("%isa = latest64\n%rw_data_size = 4096\n%stack_size = 4096\n"
                "pub @main:\n a0 = 42\n ret\n")
ECALLI = assemble("%isa = latest64\npub @main:\n@loop:\n ecalli 0\n jump @loop\n")


def per_op(fn, n: int, repeats: int = 5) -> list[float]:  # type: ignore[no-untyped-def]
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        out.append((time.perf_counter() - t0) / n)
    return out


BLOBS = ROOT.parent / "shared" / "blobs"
REFERENCE = {"noop": 1.39, "add": 1.54, "instantiate": 21.6}   # reference-measurements.md


def api_rows(repeats: int) -> list[str]:
    """Issue 17's sandbox rows: sync API (in-process and sandboxed JIT) and
    the executor (sandboxed), min / median / max in µs."""
    def linker() -> Linker:
        lk = Linker()
        lk.define("get_third_number", lambda caller: 100)
        return lk

    out = []
    results: dict[str, dict[str, list[float]]] = {}
    for label, config in (("in-process", Config(backend="jit", sandbox=None)),
                          ("sandboxed", Config(backend="jit", sandbox="linux"))):
        engine = Engine(config)
        bench = Module(engine, BLOBS / "c-guests" / "bench.polkavm")
        hello = Module(engine, BLOBS / "example-hello-world.polkavm")
        lk = linker()
        inst = bench.instantiate()
        inst.call("noop")
        h = lk.instantiate(hello)
        assert h.call("add_numbers", 1, 10) == 111
        # the instantiate row's instance needs a third worker (the two above
        # hold theirs): started here, not inside the first timed repeat
        lk.instantiate(hello).close()
        r = results[label] = {}
        r["noop"] = per_op(lambda i=inst: i.call("noop"), 5000, repeats)
        r["add"] = per_op(lambda i=h: i.call("add_numbers", 1, 10), 5000, repeats)
        r["instantiate"] = per_op(lambda lk=lk, m=hello: lk.instantiate(m).close(), 300, repeats)
        inst.close()
        h.close()
        if label == "sandboxed":
            async def through_executor(engine: Engine = engine, bench: Module = bench,
                                       hello: Module = hello, lk: Linker = lk,
                                       r: dict[str, list[float]] = r) -> None:
                async with Executor(engine, workers=1) as ex:
                    await ex.call(bench, "noop")
                    await ex.call(hello, "add_numbers", 1, 10, linker=lk)
                    for key, fn in (("ex noop", lambda: ex.call(bench, "noop")),
                                    ("ex add", lambda: ex.call(hello, "add_numbers", 1, 10,
                                                               linker=lk))):
                        runs = []
                        for _ in range(repeats):
                            t0 = time.perf_counter()
                            for _ in range(2000):
                                await fn()
                            runs.append((time.perf_counter() - t0) / 2000)
                        r[key] = runs
            trio.run(through_executor)

    def cell(xs: list[float] | None) -> str:
        if xs is None:
            return "–"
        lo, med, hi = stats(xs)
        return f"{lo * 1e6:.2f} / {med * 1e6:.2f} / {hi * 1e6:.2f}"

    ip, sb = results["in-process"], results["sandboxed"]
    for key, name in (("noop", "warm `noop()` (bench.polkavm)"),
                      ("add", "`add_numbers(1, 10)`, one host call (hello-world)"),
                      ("instantiate", "instantiate hello-world (`linker.instantiate` + close)")):
        out.append(f"| {name} | {cell(ip[key])} | {cell(sb[key])} | {cell(sb.get('ex ' + key))} "
                   f"| {REFERENCE[key]} |")
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()
    rows = []

    spawn = per_op(lambda: SandboxProcess().close(), 20)
    rows.append(("cold worker spawn (+ exit)", None, spawn))

    prog = NativeProgram(NOOP)
    worker = SandboxProcess()
    inst_sb = per_op(lambda: RawInstance(prog, backend="jit", worker=worker).close(), 200)
    inst_ip = per_op(lambda: RawInstance(prog, backend="jit").close(), 200)
    rows.append(("instantiate (warm worker / in-process)", inst_ip, inst_sb))

    def caller(inst: RawInstance):  # type: ignore[no-untyped-def]
        def call() -> None:
            inst.prepare_call(0)
            inst.gas = 1000
            inst.run()
        return call

    sb = RawInstance(prog, backend="jit", worker=worker)
    ip = RawInstance(prog, backend="jit")
    rows.append(("export call, warm instance", per_op(caller(ip), 5000),
                 per_op(caller(sb), 5000)))
    sb.close()

    eprog = NativeProgram(ECALLI)

    def looper(inst: RawInstance):  # type: ignore[no-untyped-def]
        inst.gas = 1 << 60
        inst.next_program_counter = 0
        assert inst.run().kind is InterruptKind.ECALLI
        return lambda: inst.run()

    sbe = RawInstance(eprog, backend="jit", worker=worker)
    ipe = RawInstance(eprog, backend="jit")
    rows.append(("ecalli round trip (no host work)", per_op(looper(ipe), 20000),
                 per_op(looper(sbe), 20000)))
    sbe.close()
    worker.close()

    lines = [f"Machine: {machine_info()}", "",
             "Command: `.venv/bin/python benches/bench_sandbox.py"
             f"{' --write' if args.write else ''}`",
             "", "| measure | in-process JIT (median) | sandboxed JIT min / median / max | ratio |",
             "|---|---|---|---|"]
    for name, base, xs in rows:
        lo, med, hi = stats(xs)
        bmed = stats(base)[1] if base else None
        fmt = (lambda v: f"{v * 1e6:.2f} us")  # noqa: E731
        lines.append(f"| {name} | {fmt(bmed) if bmed else '-'} | {fmt(lo)} / {fmt(med)} / "
                     f"{fmt(hi)} | {med / bmed:.1f}x |" if bmed else
                     f"| {name} | - | {fmt(lo)} / {fmt(med)} / {fmt(hi)} | - |")
    repeats = 7
    lines += ["", "Through the embedding API (µs, min / median / max of "
              f"{repeats} repeats; the executor column: one call at a time through "
              "`executor.aio.Executor` with one `SandboxWorker`, each call from the module's "
              "initial memory image):", "",
              "| measure | in-process JIT, sync API | sandboxed JIT, sync API | sandboxed JIT "
              "via `Executor` | reference Linux sandbox |", "|---|---:|---:|---:|---:|",
              *api_rows(repeats)]
    lines += ["", "Load average at the end: "
              f"{' / '.join(f'{x:.2f}' for x in os.getloadavg())}."]
    lines += ["", "Times include the Python calls that drive each operation. Reference PolkaVM "
              "0.35 on this kind of machine: 26 us warm instantiate, 0.36 us call, 0.4 us "
              "ecalli; its cold spawn takes 100 ms because of a futex-timeout bug (about 2 ms "
              "intrinsic)."]
    body = "\n".join(lines)
    print(body)
    if args.write:
        write_section("Linux sandbox", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
