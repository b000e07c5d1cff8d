"""Benchmarks of the trio executor (executor.aio) against the synchronous API,
per backend, in one run (issue 17's table):

* one ``noop()`` call (c-guests/bench.polkavm) at a time: sync ``Instance.call``,
  the same with ``reset_memory()`` first (what every executor call does: each
  starts from the module's initial memory image), and through the executor;
* the ``ecalli`` round trip (a guest loop of N host calls minus the same loop
  with none, divided by N) to a trivial sync host function: sync API and
  through the executor (served inline in the calling task); also an
  ``async def`` host function and ``host_calls="worker"``;
* ``prime_sieve(1)`` and ``noop()`` calls per second with 1 and 2 workers
  (4 concurrent tasks per worker) and the scaling 2/1;
* the loop thread's CPU per host call (``thread_time`` of the trio thread
  during the ecalli loop, divided by N: guest time included in-process), the
  longest gap another trio task saw while a call made 20,000 sync host calls,
  ``prime_sieve(1)`` with the default gas slice vs unsliced, and the worst time
  from cancel to return for an infinite guest loop.

Each figure is min / median / max over the repeats (wall time).

    .venv/bin/python benches/bench_aio.py [--quick] [--write]

``--write`` replaces the "## trio executor" section of benches/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import trio

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benches.results import machine_info, write_section  # noqa: E402
from executor import Caller, Config, Engine, Instance, Linker, Module  # noqa: E402
from executor.aio import Executor  # noqa: E402
from executor.backends import available_backends  # noqa: E402
from executor.workers import DEFAULT_SLICE_GAS  # noqa: E402
from tests.guests import trampolines  # noqa: E402

BENCH = ROOT.parent / "shared" / "blobs" / "c-guests" / "bench.polkavm"

Stats = tuple[float, float, float]


def mmm(xs: list[float]) -> Stats:
    return min(xs), statistics.median(xs), max(xs)


def fmt(s: Stats, scale: float = 1e6, digits: int = 2) -> str:
    return " / ".join(f"{v * scale:,.{digits}f}" for v in s)


def per_op(fn: Callable[[], object], n: int, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        out.append((time.perf_counter() - t0) / n)
    return out


async def aper_op(fn: Callable[[], Awaitable[object]], n: int, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(n):
            await fn()
        out.append((time.perf_counter() - t0) / n)
    return out


def host_linker(kind: str) -> Linker:
    linker = Linker()
    if kind == "async":
        async def host(caller: Caller) -> int:
            return 1
        linker.define("host0", host)
    else:
        linker.define("host0", lambda caller: 1)
    return linker


def sync_ecalli(engine: Engine, n: int, repeats: int) -> list[float]:
    inst = host_linker("sync").instantiate(Module(engine, trampolines()))
    inst.call("loop", 10)
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        inst.call("loop", n)
        t1 = time.perf_counter()
        inst.call("loop", 0)
        t2 = time.perf_counter()
        out.append(((t1 - t0) - (t2 - t1)) / n)
    return out


async def exec_ecalli(engine: Engine, kind: str, n: int, repeats: int
                      ) -> tuple[list[float], list[float]]:
    """Per host call: wall time, and the trio thread's CPU time."""
    module = Module(engine, trampolines())
    linker = host_linker(kind)
    host_calls: Any = "worker" if kind == "worker" else "trio"
    wall, cpu = [], []
    async with Executor(engine, workers=1, host_calls=host_calls) as ex:
        await ex.call(module, "loop", 10, linker=linker)
        for _ in range(repeats):
            c0 = time.thread_time()
            t0 = time.perf_counter()
            await ex.call(module, "loop", n, linker=linker)
            t1 = time.perf_counter()
            c1 = time.thread_time()
            await ex.call(module, "loop", 0, linker=linker)
            t2 = time.perf_counter()
            c2 = time.thread_time()
            wall.append(((t1 - t0) - (t2 - t1)) / n)
            cpu.append(((c1 - c0) - (c2 - c1)) / n)
    return wall, cpu


async def exec_noop(engine: Engine, module: Module, n: int, repeats: int) -> list[float]:
    async with Executor(engine, workers=1) as ex:
        await ex.call(module, "noop")
        return await aper_op(lambda: ex.call(module, "noop"), n, repeats)


async def throughput(engine: Engine, module: Module, export: str, args: tuple[int, ...],
                     workers: int, calls: int, repeats: int) -> list[float]:
    """Calls/s of ``calls`` calls from ``4 * workers`` concurrent tasks, per repeat."""
    out = []
    async with Executor(engine, workers=workers) as ex:
        for _ in range(workers):
            await ex.call(module, export, *args)   # warm: instances on the workers

        async def task(n: int) -> None:
            for _ in range(n):
                await ex.call(module, export, *args)

        tasks = 4 * workers
        for _ in range(repeats):
            t0 = time.perf_counter()
            async with trio.open_nursery() as nursery:
                for k in range(tasks):
                    nursery.start_soon(task, calls // tasks + (k < calls % tasks))
            out.append(calls / (time.perf_counter() - t0))
    return out


async def starvation_gap(engine: Engine, n: int, repeats: int) -> tuple[list[float],
                                                                          list[float]]:
    """Longest time between two steps of a ticker task while a call makes ``n``
    sync host calls (served inline on the loop for in-process backends): in CPU
    time of the loop thread (the work it did in between) and in wall time (which
    includes being descheduled on a busy machine)."""
    module = Module(engine, trampolines())
    linker = host_linker("sync")
    cpu_out, wall_out = [], []
    async with Executor(engine, workers=1) as ex:
        await ex.call(module, "loop", 10, linker=linker)
        for _ in range(repeats):
            cpu: list[float] = []
            wall: list[float] = []
            done: list[bool] = []

            async def ticker(cpu: list[float] = cpu, wall: list[float] = wall,
                             done: list[bool] = done) -> None:
                last, last_cpu = time.perf_counter(), time.thread_time()
                while not done:
                    await trio.sleep(0)
                    now, now_cpu = time.perf_counter(), time.thread_time()
                    wall.append(now - last)
                    cpu.append(now_cpu - last_cpu)
                    last, last_cpu = now, now_cpu

            async with trio.open_nursery() as nursery:
                nursery.start_soon(ticker)
                await trio.sleep(0)
                await ex.call(module, "loop", n, linker=linker)
                done.append(True)
            cpu_out.append(max(cpu))
            wall_out.append(max(wall))
    return cpu_out, wall_out


async def slicing(engine: Engine, module: Module, repeats: int) -> tuple[list[float],
                                                                         list[float]]:
    """Seconds of prime_sieve(1) with the default slice and unsliced."""
    out = []
    for slice_gas in (DEFAULT_SLICE_GAS, 1 << 62):
        async with Executor(engine, workers=1, slice_gas=slice_gas) as ex:
            await ex.call(module, "prime_sieve", 1)
            runs = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                await ex.call(module, "prime_sieve", 1)
                runs.append(time.perf_counter() - t0)
            out.append(runs)
    return out[0], out[1]


async def cancel_latency(engine: Engine, repeats: int) -> list[float]:
    """Time from cancel to the call's return for an infinite guest loop."""
    module = Module(engine, trampolines(imports=()))
    out = []
    async with Executor(engine, workers=1) as ex:
        for _ in range(repeats):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(ex.call, module, "spin")
                await trio.sleep(0.02)
                t0 = time.perf_counter()
                nursery.cancel_scope.cancel()
            out.append(time.perf_counter() - t0)
            await ex.settle()
    return out


async def run(quick: bool) -> str:
    reps = 5 if quick else 9
    n_noop, n_ecalli, n_sieve = (1000, 2000, 20) if quick else (4000, 10000, 60)
    configs: list[tuple[str, Config]] = []
    if "jit" in available_backends():
        configs.append(("jit (linux sandbox)", Config(backend="jit")))
        configs.append(("jit in-process", Config(backend="jit", sandbox=None)))
    configs.append(("interpreter", Config(backend="interpreter")))
    main_rows = ["| backend | measure | sync API | through `Executor` | executor / sync "
                 "(medians) |", "|---|---|---:|---:|---:|"]
    tput_rows = ["| backend | call | 1 worker | 2 workers | scaling 2/1 (medians) | "
                 "sync API, 1 thread |", "|---|---|---:|---:|---:|---:|"]
    loop_rows = ["| backend | loop CPU per host call (µs) | async host fn round trip (µs) | "
                 "host fn on worker thread (µs) | longest gap for other tasks during 20,000 "
                 "sync host calls, loop CPU (ms) | same, wall (ms) | sieve sliced / unsliced, "
                 "medians (ms) | cancel → return (ms) |",
                 "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for label, config in configs:
        engine = Engine(config)
        if config.backend == "jit" and config.sandbox is not None and engine.sandbox is None:
            continue   # no sandbox on this machine
        module = Module(engine, BENCH)

        inst = module.instantiate()
        inst.call("noop")
        sync_noop = per_op(lambda i=inst: i.call("noop"), n_noop, reps)

        def fresh_noop(i: Instance = inst) -> None:
            i.reset_memory()
            i.call("noop")
        sync_fresh = per_op(fresh_noop, n_noop, reps)
        ex_noop = await exec_noop(engine, module, n_noop, reps)
        main_rows.append(f"| {label} | `noop()` call, µs | {fmt(mmm(sync_noop))} | "
                         f"{fmt(mmm(ex_noop))} | "
                         f"{statistics.median(ex_noop) / statistics.median(sync_noop):.1f}× |")
        main_rows.append(f"| {label} | `noop()` from a fresh memory image (sync: "
                         f"`reset_memory()` + call), µs | {fmt(mmm(sync_fresh))} | "
                         f"{fmt(mmm(ex_noop))} | "
                         f"{statistics.median(ex_noop) / statistics.median(sync_fresh):.1f}× |")
        sync_rt = sync_ecalli(engine, n_ecalli, reps)
        ex_rt, ex_cpu = await exec_ecalli(engine, "sync", n_ecalli, reps)
        main_rows.append(f"| {label} | `ecalli` round trip, sync host fn (executor: inline "
                         f"in the calling task), µs | {fmt(mmm(sync_rt))} | {fmt(mmm(ex_rt))} | "
                         f"{statistics.median(ex_rt) / statistics.median(sync_rt):.1f}× |")
        print("\n".join(main_rows[-3:]), flush=True)

        for export, args, n in (("noop", (), n_noop), ("prime_sieve", (1,), n_sieve)):
            one = await throughput(engine, module, export, args, 1, n, reps)
            two = await throughput(engine, module, export, args, 2, n, reps)
            sync_rate = [1 / x for x in per_op(lambda e=export, a=args, i=inst: i.call(e, *a),
                                              max(1, n // 4), reps)]
            tput_rows.append(
                f"| {label} | `{export}({', '.join(map(str, args))})` | "
                f"{fmt(mmm(one), 1, 0)} | {fmt(mmm(two), 1, 0)} | "
                f"{statistics.median(two) / statistics.median(one):.2f} | "
                f"{fmt(mmm(sync_rate), 1, 0)} |")
            print(tput_rows[-1], flush=True)

        async_rt, _ = await exec_ecalli(engine, "async", n_ecalli // 4, reps)
        worker_rt, _ = await exec_ecalli(engine, "worker", n_ecalli // 4, reps)
        gap_cpu, gap_wall = await starvation_gap(engine, 20_000, max(3, reps // 2))
        sliced, unsliced = await slicing(engine, module, max(3, reps // 2))
        cancel = await cancel_latency(engine, reps)
        loop_rows.append(
            f"| {label} | {fmt(mmm(ex_cpu))} | {fmt(mmm(async_rt))} | {fmt(mmm(worker_rt))} | "
            f"{fmt(mmm(gap_cpu), 1e3)} | {fmt(mmm(gap_wall), 1e3)} | "
            f"{statistics.median(sliced) * 1e3:.2f} / "
            f"{statistics.median(unsliced) * 1e3:.2f} | {fmt(mmm(cancel), 1e3)} |")
        print(loop_rows[-1], flush=True)
        inst.raw.close()
    load = os.getloadavg()
    body = [
        "",
        f"`.venv/bin/python benches/bench_aio.py{' --quick' if quick else ''} --write` "
        f"({time.strftime('%Y-%m-%d %H:%M')}; {machine_info()}; load average "
        f"{load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f} at the end of the run).  Every cell "
        f"is min / median / max over {reps} repeats (wall time).",
        "",
        *main_rows,
        "",
        "Calls per second, 4 concurrent trio tasks per worker (`noop()` includes the "
        "fresh memory image of every executor call; the sync API column does not):",
        "",
        *tput_rows,
        "",
        "The loop itself: CPU of the trio thread per sync host call through the executor "
        "(in-process backends run the guest on that thread, so guest time is included); "
        "the `async def` host function round trip and `host_calls=\"worker\"` (a "
        "`ThreadWorker`: thread hand-offs); the longest wait another trio task saw "
        "while one call made 20,000 sync host calls (in the loop thread's CPU time, i.e. the "
        "work the loop did before letting it run, and in wall time, which also counts "
        "the thread being descheduled on this shared machine); `prime_sieve(1)` with the "
        f"default gas slice ({DEFAULT_SLICE_GAS}, the largest slice) vs unsliced; "
        "cancel → return for an infinite guest loop.",
        "",
        *loop_rows,
    ]
    return "\n".join(body)


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer calls and repeats")
    ap.add_argument("--write", action="store_true", help="update benches/RESULTS.md")
    args = ap.parse_args()
    body = trio.run(run, args.quick)
    print(body)
    if args.write:
        write_section("trio executor", body)


if __name__ == "__main__":
    main()
