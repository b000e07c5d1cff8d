#!/usr/bin/env python3
"""Differential campaign: random programs on the interpreter and the JIT.

    .venv/bin/python tools/difffuzz.py --count 1000000 --jobs 2

Prints progress and a final line `programs N, divergences D, wall S s`;
divergent seeds are written to difffuzz-divergences.txt (re-run one with
`--seed SEED --count 1`)."""

from __future__ import annotations

import argparse
import multiprocessing as mp
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from executor.tools.difftest import compare, random_case, run_case  # noqa: E402


def work(args: tuple[int, int, str, str | None]) -> tuple[int, list[tuple[int, str]]]:
    start, count, other, sandbox = args
    bad = []
    for seed in range(start, start + count):
        case = random_case(seed)
        d = compare(run_case(case, "interpreter"), run_case(case, other, sandbox=sandbox))
        if d:
            bad.append((seed, d))
    return count, bad


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--chunk", type=int, default=2000)
    ap.add_argument("--backend", default="jit")
    ap.add_argument("--sandbox", choices=["linux"], default=None,
                    help="run the JIT side inside Linux sandbox workers")
    args = ap.parse_args()
    chunks = [(s, min(args.chunk, args.seed + args.count - s), args.backend, args.sandbox)
              for s in range(args.seed, args.seed + args.count, args.chunk)]
    done = 0
    divergences: list[tuple[int, str]] = []
    t0 = time.time()
    with mp.Pool(args.jobs) as pool:
        for n, bad in pool.imap_unordered(work, chunks):
            done += n
            divergences.extend(bad)
            if done % 50000 < args.chunk or done == args.count:
                print(f"{done}/{args.count} programs, {len(divergences)} divergences, "
                      f"{time.time() - t0:.0f} s", flush=True)
    if divergences:
        with open("difffuzz-divergences.txt", "w") as f:
            for seed, d in sorted(divergences):
                f.write(f"{seed}\t{d}\n")
    print(f"programs {done}, divergences {len(divergences)}, wall {time.time() - t0:.0f} s")
    return 1 if divergences else 0


if __name__ == "__main__":
    sys.exit(main())
