"""Benchmarks of the embedding API's hot paths, per backend.

Measures, on a warm instance:

* ``add_numbers(1, 10)`` of example-hello-world.polkavm (one host call to a
  trivial Python function returning 100),
* ``noop()`` of c-guests/bench.polkavm (no host call),
* one ``ecalli`` round trip to a trivial Python host function (a guest loop of
  N host calls minus the same loop with none, divided by N),
* instantiating example-hello-world.polkavm and c-guests/bench.polkavm (1 MB
  of .bss) from a ready ``InstancePre`` (imports resolved once, as the
  reference measurements do; the previous instance is dropped each time),
* instantiating example-hello-world.polkavm through the documented API,
  ``linker.instantiate(module)`` then ``close()`` (every backend, the sandbox
  too),

for the interpreter, the JIT in-process (``sandbox=None``) and the JIT in a
Linux sandbox worker (calls only; where the sandbox works),

each as ns per operation and as a ratio to a baseline measured in the same
run: a call of a plain two-argument Python function.  A single cffi call into
the C core is shown too, for scale.  Times are the best of many short runs in
CPU time of the benchmarking thread.

    .venv/bin/python benches/bench_api.py [--quick] [--append]

``--append`` adds the table, with the command, under "## Embedding API" in
benches/RESULTS.md (the file is created if missing).
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from executor import Config, Engine, Linker, Module  # noqa: E402
from executor.backends import available_backends  # noqa: E402
from executor.native import lib  # noqa: E402
from tests.guests import trampolines  # noqa: E402

BLOBS = ROOT.parent / "shared" / "blobs"
RESULTS = ROOT / "benches" / "RESULTS.md"
HEADING = "## Embedding API"


def best_ns(fn: Callable[[int], None], n: int, repeats: int) -> float:
    """Best time per iteration over ``repeats`` runs of ``fn(n)``, in CPU time of
    this thread (so time spent descheduled on a busy machine does not count)."""
    best = float("inf")
    for _ in range(repeats):
        t0 = time.thread_time_ns()
        fn(n)
        best = min(best, (time.thread_time_ns() - t0) / n)
    return best


def baseline(n: int, repeats: int) -> tuple[float, float]:
    def add(a: int, b: int) -> int:
        return a + b

    def py(k: int) -> None:
        for _ in range(k):
            add(1, 10)

    engine = Engine()
    inst = Module(engine, BLOBS / "c-guests" / "bench.polkavm").instantiate()
    ptr = inst.raw._ptr
    gas = lib.pvm_instance_gas

    def cffi(k: int) -> None:
        for _ in range(k):
            gas(ptr)

    return best_ns(py, n, repeats), best_ns(cffi, n, repeats)


#: (label, backend, sandbox) of each column measured
SETUPS = (("interpreter", "interpreter", None), ("jit in-process", "jit", None),
          ("jit sandboxed", "jit", "linux"))


def workloads(backend: str, n: int, sandbox: str | None = None
              ) -> dict[str, tuple[Callable[[int], None], int, Callable[[int], None] | None]]:
    """name -> (fn, iterations, fn to subtract per call or None), all warmed up."""
    engine = Engine(Config(backend=backend, sandbox=sandbox))
    linker = Linker()
    linker.define("get_third_number", lambda caller: 100)
    hello = linker.instantiate(Module(engine, BLOBS / "example-hello-world.polkavm"))
    assert hello.call("add_numbers", 1, 10) == 111

    def add_numbers(k: int) -> None:
        call = hello.call
        for _ in range(k):
            call("add_numbers", 1, 10)

    bench = Module(engine, BLOBS / "c-guests" / "bench.polkavm").instantiate()
    assert bench.call("noop") == 42

    def noop(k: int) -> None:
        call = bench.call
        for _ in range(k):
            call("noop")

    tick = Linker()

    @tick.define("host0")
    def host0(caller: object) -> None:
        return None

    loop = tick.instantiate(Module(engine, trampolines("latest64", ("host0",))))

    def loop_n(k: int) -> None:
        call = loop.call
        for _ in range(k):
            call("loop", PER_LOOP)

    def loop_0(k: int) -> None:
        call = loop.call
        for _ in range(k):
            call("loop", 0)

    out: dict[str, tuple[Callable[[int], None], int, Callable[[int], None] | None]] = {
        "add_numbers(1, 10), 1 host call": (add_numbers, n, None),
        "noop()": (noop, n, None),
        "ecalli round trip (trivial host fn)": (loop_n, max(1, n // PER_LOOP), loop_0),
    }
    hello_module = Module(engine, BLOBS / "example-hello-world.polkavm")

    def inst_linker(k: int) -> None:  # the documented API, instance closed each time
        for _ in range(k):
            linker.instantiate(hello_module).close()

    out["instantiate hello-world (`linker.instantiate` + close)"] = (
        inst_linker, max(10, n // 20), None)
    if sandbox is None:
        # as the reference measures it: imports resolved once (InstancePre)
        hello_pre = linker.instantiate_pre(Module(engine, BLOBS / "example-hello-world.polkavm"))
        bench_pre = Linker().instantiate_pre(Module(engine, BLOBS / "c-guests" / "bench.polkavm"))

        def inst_hello(k: int) -> None:
            for _ in range(k):
                hello_pre.instantiate()

        def inst_bench(k: int) -> None:
            for _ in range(k):
                bench_pre.instantiate()

        m = max(10, n // 20)
        out["instantiate hello-world"] = (inst_hello, m, None)
        out["instantiate bench.polkavm (1 MB .bss)"] = (inst_bench, m, None)
    for fn, k, sub in out.values():
        fn(min(k, 50))
        if sub is not None:
            sub(10)
    return out


PER_LOOP = 1000


def table(n: int, repeats: int) -> str:
    """Every workload of every backend measured in turn, round after round
    (so a change of the machine's load hits all alike); best per cell."""
    py, cffi = baseline(n, repeats)
    rows = [f"| baseline: Python call `add(1, 10)` | all | {py:.0f} | 1.0 | - |",
            f"| one cffi call into the C core | all | {cffi:.0f} | {cffi / py:.1f} | - |"]
    setups: dict[str, dict[str, tuple[Callable[[int], None], int,
                                      Callable[[int], None] | None]]] = {}
    for label, backend, sandbox in SETUPS:
        if backend not in available_backends():
            continue
        if sandbox is not None:
            from executor.sandbox import sandbox_unavailable_reason

            if sandbox_unavailable_reason() is not None:
                continue
        setups[label] = workloads(backend, n, sandbox)
    best: dict[tuple[str, str], float] = {}
    for _ in range(repeats):
        for label, loads in setups.items():
            for name, (fn, k, sub) in loads.items():
                ns = best_ns(fn, k, 1)
                if sub is not None:  # per host call: the loop minus the empty loop
                    ns = (ns - best_ns(sub, n, 1)) / PER_LOOP
                best[label, name] = min(best.get((label, name), float("inf")), ns)
    for label, loads in setups.items():
        for name in loads:
            ns = best[label, name]
            base = best.get(("interpreter", name))
            vs = f"{ns / base:.2f}" if base else "-"
            rows.append(f"| {name} | {label} | {ns:.0f} | {ns / py:.1f} | {vs} |")
    head = ["| operation | backend | ns | x baseline | x interpreter |",
            "|---|---|---:|---:|---:|"]
    return "\n".join(head + rows)


def append(text: str, command: str) -> None:
    when = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    block = (f"\n`{command}` ({when}, Python {platform.python_version()}, "
             f"{platform.machine()}, {os.cpu_count()} CPUs):\n\n{text}\n")
    if RESULTS.exists():
        doc = RESULTS.read_text()
    else:
        doc = "# Benchmark results\n\nEach section is owned by one part of the project.\n"
    if HEADING not in doc:
        doc = doc.rstrip("\n") + f"\n\n{HEADING}\n\nWarm-instance call costs (see " \
            "benches/bench_api.py); best of several runs.\n"
    start = doc.index(HEADING) + len(HEADING)
    nxt = doc.find("\n## ", start)
    end = len(doc) if nxt < 0 else nxt
    doc = doc[:end].rstrip("\n") + "\n" + block + doc[end:]
    RESULTS.write_text(doc)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer iterations (smoke test)")
    ap.add_argument("--append", action="store_true", help="append to benches/RESULTS.md")
    ap.add_argument("--write", action="store_true",
                    help="replace the Embedding API section of benches/RESULTS.md")
    args = ap.parse_args()
    n, repeats = (1000, 3) if args.quick else (5000, 30)
    text = table(n, repeats)
    print(text)
    if args.append:
        command = ".venv/bin/python benches/bench_api.py" + (" --quick" if args.quick else "")
        append(text, command)
    if args.write:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from results import machine_info, write_section

        command = ".venv/bin/python benches/bench_api.py --write"
        write_section("Embedding API", f"Machine: {machine_info()}\n\nCommand: `{command}`\n\n"
                      "Warm-instance call costs; best of several runs.\n\n" + text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
