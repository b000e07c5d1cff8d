"""Contract testing speed: what a test suite on ``contracts.harness.TestChain`` costs.

Measures, per execution setup (interpreter, in-process JIT, sandboxed JIT):

* one ERC-20 ``transfer`` (Token.sol): through ``ReviveRuntime.call`` with no layer and
  with the :class:`~executor.revive.trace.CallTracer` layer (the tree recorded); through
  ``Contract.transact`` (its event decoded) with no layer, with the default console.log
  layer (``call`` only), with ``chain.tracing = True`` (the tree recorded) and with the
  tree also formatted as text -- ms per transaction (median of the repeats) and the
  ratio to the same path with no layer;
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
import gc
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
from contracts.harness import Account, Contract, TestChain  # noqa: E402
from contracts.pytest_plugin import chain_setups  # noqa: E402
from executor.revive.runtime import ReviveRuntime  # noqa: E402
from executor.revive.trace import CallTracer  # noqa: E402

RESULTS = ROOT / "benches" / "RESULTS.md"


MODES = ("runtime, no layer", "runtime, CallTracer layer", "transact, no layer",
         "transact, console layer", "transact, tracing", "transact, tracing + text")
"""``runtime``: ReviveRuntime.call with the encoded call (what a node does);
``transact``: Contract.transact (encoding, the receipt, checks; the receipt's events
are decoded when asked, and here each transfer asks for them); ``tracing``:
``chain.tracing = True`` (the call tree recorded); ``+ text``: the tree also formatted
as text (``receipt.trace_text``, what ``--pvm-trace`` prints)."""
BASE = {"runtime, CallTracer layer": "runtime, no layer",
        "transact, console layer": "transact, no layer",
        "transact, tracing": "transact, no layer",
        "transact, tracing + text": "transact, no layer"}


def transfers(setup: str, n: int, repeats: int) -> dict[str, float]:
    """ms per transfer for each mode: every mode has its own warmed chain, and the
    repeats go round-robin over the modes (so drift in the machine's load hits all
    alike); the median of the repeats."""
    backend, sandbox = chain_setups()[setup]
    art = compiled("Token")["Token"]
    fns: dict[str, Callable[[], None]] = {}
    for mode in MODES:
        chain = TestChain(backend=backend, sandbox=sandbox)
        alice, bob = chain.new_account(10**20), chain.new_account()
        token = chain.deploy(art.blob, art.abi, "T", "T", 10**30, sender=alice)
        if "console" not in mode:
            chain.runtime.layers = ()
        if "tracing" in mode:
            chain.tracing = True
        text = mode.endswith("+ text")
        runtime, data = chain.runtime, token.encode("transfer", bob, 1)
        tracer = CallTracer()
        a, t = alice.address, token.address

        def raw(runtime: ReviveRuntime = runtime, a: bytes = a, t: bytes = t,
                data: bytes = data) -> None:
            assert runtime.call(a, t, data).success

        def traced(runtime: ReviveRuntime = runtime, a: bytes = a, t: bytes = t,
                   data: bytes = data, tracer: CallTracer = tracer) -> None:
            assert tracer.trace_call(runtime, a, t, data)[0].success

        def send(token: Contract = token, bob: Account = bob, alice: Account = alice,
                 text: bool = text) -> None:
            receipt = token.transact("transfer", bob, 1, sender=alice)
            assert receipt.events[0].name == "Transfer"
            if text:
                assert receipt.trace_text

        fn = raw if mode == "runtime, no layer" else traced if mode.startswith("runtime") \
            else send
        for _ in range(50):  # warm: code compiled, instances kept, caches filled
            fn()
        fns[mode] = fn
    samples: dict[str, list[float]] = {m: [] for m in MODES}
    for _ in range(repeats):
        for mode, run in fns.items():
            gc.collect()
            t0 = time.perf_counter()
            for _ in range(n):
                run()
            samples[mode].append((time.perf_counter() - t0) * 1000 / n)
    return {m: statistics.median(v) for m, v in samples.items()}


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


def table(n: int, repeats: int, steps: int, setups: list[str] | None = None) -> str:
    rows = ["| setup | mode | ms per transfer (median) | ratio to the same path, no layer |",
            "|---|---|---:|---:|"]
    suite = ["| setup | steps (deploy + transact + call) | seconds | ms per step |",
             "|---|---:|---:|---:|"]
    aims: list[str] = []
    for setup in setups or list(chain_setups()):
        ms = transfers(setup, n, repeats)
        for mode, value in ms.items():
            base = ms[BASE.get(mode, mode)]
            rows.append(f"| {setup} | {mode} | {value:.3f} | {value / base:.2f} |")
            print(rows[-1], flush=True)
        if setup == "jit-inprocess":
            plain, traced = ms["transact, no layer"], ms["transact, tracing"]
            aims = [f"Aim of issue 21 (jit-inprocess): transact, no layer {plain:.3f} ms "
                    f"(aim <= 0.300: {'met' if plain <= 0.3 else 'NOT met'}); tracing "
                    f"{traced / plain:.2f}x that (aim <= 2x: "
                    f"{'met' if traced <= 2 * plain else 'NOT met'}) -- at the load below"]
        s = suite_seconds(setup, steps)
        suite.append(f"| {setup} | {steps} | {s:.2f} | {s * 1000 / steps:.2f} |")
        print(suite[-1], flush=True)
    load = os.getloadavg()
    head = (f"{datetime.date.today()}, {platform.processor() or platform.machine()}, "
            f"{os.cpu_count()} cores, load average {load[0]:.1f} / {load[1]:.1f} / "
            f"{load[2]:.1f} (1/5/15 min) when it ended")
    return "\n".join([head, "", *rows, "", *suite, *([""] + aims if aims else [])])


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--append", action="store_true")
    parser.add_argument("--setup", action="append", default=[],
                        help="only this setup (interpreter, jit-sandbox, jit-inprocess)")
    args = parser.parse_args()
    n, repeats, steps = (50, 3, 10) if args.quick else (100, 9, 40)
    text = table(n, repeats, steps, args.setup)
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
