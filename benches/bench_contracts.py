"""Contract testing speed: what a test suite on ``contracts.harness.TestChain`` costs.

Measures, per execution setup (interpreter, in-process JIT, sandboxed JIT):

* one ERC-20 ``transfer`` transaction (Token.sol) through ``Contract.transact`` with
  no host-call layer, with the default console.log layer (``call`` only), with the
  :class:`~executor.revive.trace.CallTracer` layer (the tree recorded, not printed),
  and with ``chain.tracing = True`` (recorded and formatted as text) -- ms per
  transaction (median of the repeats) and the ratio to "no layer";
* a test suite of N steps, each a deploy + a transaction + a dry-run call, on a fresh
  chain -- total seconds.

Wall-clock times (the sandboxed JIT runs in a worker process); the machine's load
average is printed with the table, because the machine this runs on is shared.

    .venv/bin/python benches/bench_contracts.py [--quick] [--append]

``--append`` adds the table under "## Contract testing" in benches/RESULTS.md.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from contracts.build import compiled  # noqa: E402
from contracts.harness import TestChain  # noqa: E402
from contracts.pytest_plugin import chain_setups  # noqa: E402
from executor.revive.trace import CallTracer  # noqa: E402

RESULTS = ROOT / "benches" / "RESULTS.md"


def per_tx_ms(fn: Callable[[], None], n: int, repeats: int) -> float:
    """Median over ``repeats`` of the mean ms per call of ``n`` calls."""
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        samples.append((time.perf_counter() - t0) * 1000 / n)
    return statistics.median(samples)


def transfers(setup: str, n: int, repeats: int) -> dict[str, float]:
    backend, sandbox = chain_setups()[setup]
    art = compiled("Token")["Token"]
    out: dict[str, float] = {}
    for mode in ("no layer", "console layer", "CallTracer layer", "tracing + text"):
        chain = TestChain(backend=backend, sandbox=sandbox)
        alice, bob = chain.new_account(10**20), chain.new_account()
        token = chain.deploy(art.blob, art.abi, "T", "T", 10**30, sender=alice)
        if mode == "no layer":
            chain.runtime.layers = ()
        if mode == "tracing + text":
            chain.tracing = True

        def send() -> None:
            token.transact("transfer", bob, 1, sender=alice)

        if mode == "CallTracer layer":
            tracer = CallTracer()
            data = token.encode("transfer", bob, 1)
            runtime = chain.runtime

            def send_traced() -> None:
                result, _ = tracer.trace_call(runtime, alice.address, token.address, data)
                assert result.success

            fn = send_traced
        else:
            fn = send
        for _ in range(20):  # warm: code compiled, instances kept, caches filled
            fn()
        out[mode] = per_tx_ms(fn, n, repeats)
    return out


def suite_seconds(setup: str, steps: int) -> float:
    backend, sandbox = chain_setups()[setup]
    art = compiled("Token")["Token"]
    t0 = time.perf_counter()
    chain = TestChain(backend=backend, sandbox=sandbox)
    alice, bob = chain.new_account(10**20), chain.new_account()
    for i in range(steps):
        token = chain.deploy(art.blob, art.abi, "T", "T", 1000 + i, sender=alice)
        token.transact("transfer", bob, 7, sender=alice)
        assert token.call("balanceOf", bob) == 7
    return time.perf_counter() - t0


def table(n: int, repeats: int, steps: int) -> str:
    rows = ["| setup | mode | ms per transfer (median) | ratio to no layer |",
            "|---|---|---:|---:|"]
    suite = ["| setup | steps (deploy + transact + call) | seconds | ms per step |",
             "|---|---:|---:|---:|"]
    for setup in chain_setups():
        ms = transfers(setup, n, repeats)
        for mode, value in ms.items():
            rows.append(f"| {setup} | {mode} | {value:.3f} | {value / ms['no layer']:.2f} |")
            print(rows[-1], flush=True)
        s = suite_seconds(setup, steps)
        suite.append(f"| {setup} | {steps} | {s:.2f} | {s * 1000 / steps:.2f} |")
        print(suite[-1], flush=True)
    load = os.getloadavg()
    head = (f"{datetime.date.today()}, {platform.processor() or platform.machine()}, "
            f"{os.cpu_count()} cores, load average {load[0]:.1f} / {load[1]:.1f} / "
            f"{load[2]:.1f} (1/5/15 min) when it ended")
    return "\n".join([head, "", *rows, "", *suite])


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--append", action="store_true")
    args = parser.parse_args()
    n, repeats, steps = (50, 3, 10) if args.quick else (200, 5, 40)
    text = table(n, repeats, steps)
    print("\n" + text)
    if args.append:
        command = "`.venv/bin/python benches/bench_contracts.py" + \
            (" --quick`" if args.quick else "`")
        with RESULTS.open("a") as f:
            f.write(f"\n## Contract testing\n\n{command}: ERC-20 transfers through "
                    f"TestChain, {n} per repeat, {repeats} repeats; a suite of {steps} "
                    f"deploy + transact + call steps on a fresh chain.\n\n{text}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
