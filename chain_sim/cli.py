"""``pvm-exec chain``: create, run, inspect and verify a simulated chain.

::

    pvm-exec chain init   --db PATH [--users N] [--force]
    pvm-exec chain run    --db PATH --blocks N --seed S [--backend B] [--sandbox S]
                          [--txs-per-block K] [--users N] [--quiet] [--no-check]
    pvm-exec chain status --db PATH [--json]
    pvm-exec chain verify --db PATH [--from A] [--to B] [--backend B] [--replay]

``run`` creates the chain when the file does not exist, runs the seeded sample
workload (:mod:`chain_sim.workload`) for N more blocks, prints a line per block and,
unless ``--no-check``, compares every token balance with the plain-Python model; its
last line is ``state_root 0x<64 hex digits>``.  ``verify`` re-executes blocks from
their extrinsics on the state before them (``--replay``: the whole chain from
genesis in memory) and checks every header.  ``--backend``: ``interpreter`` or
``jit``; ``--sandbox``: ``auto`` (default: JIT in Linux sandbox workers where they
work), ``linux`` or ``none`` (in-process).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

# chain_sim's modules (and pycryptodome, sr25519, scalecodec behind them) are only
# imported when a chain command runs: building pvm-exec's parser stays light.
if TYPE_CHECKING:
    from chain_sim.chain import Chain
    from chain_sim.workload import BlockSummary

BACKENDS = ("interpreter", "jit")


def _sandbox(value: str) -> str | None:
    return None if value == "none" else value


def _open(args: argparse.Namespace, *, create: bool = False) -> Chain:
    from chain_sim.chain import Chain
    from chain_sim.workload import Workload

    path = Path(args.db)
    backend = getattr(args, "backend", "jit")
    sandbox = _sandbox(getattr(args, "sandbox", "auto"))
    if create and not path.exists():
        return Chain.create(Workload.genesis(args.users), path, backend=backend, sandbox=sandbox)
    return Chain.open(path, backend=backend, sandbox=sandbox)


class Progress:
    """A one-line progress bar on stderr (only when it is a terminal)."""

    def __init__(self, total: int, label: str) -> None:
        self.total = max(total, 1)
        self.label = label
        self.done = 0
        self.t0 = time.perf_counter()
        self.tty = sys.stderr.isatty()

    def step(self, n: int = 1) -> None:
        self.done += n
        if not self.tty:
            return
        width = 30
        filled = width * self.done // self.total
        rate = self.done / max(time.perf_counter() - self.t0, 1e-9)
        sys.stderr.write(f"\r{self.label} [{'#' * filled}{'.' * (width - filled)}] "
                         f"{self.done}/{self.total} ({rate:.1f}/s)")
        sys.stderr.flush()

    def close(self) -> None:
        if self.tty:
            sys.stderr.write("\r" + " " * 78 + "\r")
            sys.stderr.flush()


def cmd_init(args: argparse.Namespace) -> int:
    from chain_sim.chain import Chain
    from chain_sim.workload import Workload

    path = Path(args.db)
    if path.exists():
        if not args.force:
            print(f"pvm-exec chain: {path} exists (use --force to replace it)", file=sys.stderr)
            return 2
        for suffix in ("", "-wal", "-shm"):
            Path(str(path) + suffix).unlink(missing_ok=True)
    with Chain.create(Workload.genesis(args.users), path, sandbox=None) as chain:
        print(f"created {path}: genesis 0x{chain.genesis_hash.hex()}, "
              f"{len(chain.genesis.endowed)} endowed accounts")
        print(f"state_root 0x{chain.state_root.hex()}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from chain_sim.workload import Workload

    with _open(args, create=True) as chain:
        wl = Workload(chain, users=args.users, txs_per_block=args.txs_per_block)
        start = chain.head_number
        print(f"chain {args.db}: head {start}, backend {chain.runtime.backend}"
              f"{' (sandboxed)' if chain.runtime.engine.sandbox else ''}, seed {args.seed}, "
              f"{args.blocks} blocks of {args.txs_per_block} transactions")
        bar = Progress(args.blocks, "blocks")
        t0 = time.perf_counter()
        txs = 0

        def on_block(s: BlockSummary) -> None:
            nonlocal txs
            txs += s.included
            if not args.quiet:
                if bar.tty:
                    sys.stderr.write("\r" + " " * 78 + "\r")
                print(s.line(), flush=True)
            bar.step()

        try:
            wl.run(args.blocks, args.seed, on_block)
        finally:
            bar.close()
        dt = time.perf_counter() - t0
        print(f"{args.blocks} blocks, {txs} transactions in {dt:.2f} s "
              f"({txs / max(dt, 1e-9):.0f} tx/s)")
        if not args.no_check and wl.deployed:
            n = wl.check()
            print(f"token check: {n} balances, allowances and the supply match the "
                  f"plain-Python model")
        print(f"head {chain.head_number} 0x{chain.head.hash.hex()}")
        print(f"state_root 0x{chain.state_root.hex()}")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from chain_sim.chain import Chain
    from chain_sim.keys import ss58

    with Chain.open(args.db, sandbox=None) as chain:
        head = chain.head
        info: dict[str, Any] = {
            "db": str(args.db), "genesis_hash": "0x" + chain.genesis_hash.hex(),
            "chain_id": chain.genesis.chain_id, "head": head.number,
            "head_hash": "0x" + head.hash.hex(), "state_root": "0x" + head.state_root.hex(),
            "timestamp_ms": head.timestamp, "state_keys": len(chain.db.index),
            "accounts": [{"ss58": ss58(a), "nonce": chain.account(a)[0],
                          "balance": chain.account(a)[1]} for a, _ in chain.genesis.endowed],
        }
        if args.json:
            print(json.dumps(info, indent=2))
            return 0
        print(f"chain {args.db}: genesis {info['genesis_hash']}, chain id {info['chain_id']}")
        print(f"head {head.number} {info['head_hash']} ({info['state_keys']} state keys)")
        last = chain.block(head.number)
        print(f"last block: {len(last.extrinsics)} extrinsics, gas {head.gas_used:,}")
        for a in info["accounts"][:5]:
            print(f"  {a['ss58']}  nonce {a['nonce']:5d}  balance {a['balance']}")
        print(f"state_root {info['state_root']}")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from chain_sim.chain import Chain, replay

    with Chain.open(args.db, sandbox=None) as chain:
        sandbox = _sandbox(args.sandbox)
        last = args.to if args.to is not None else chain.head_number
        t0 = time.perf_counter()
        if args.replay:
            bar = Progress(last, "replay")
            try:
                other = replay(chain, backend=args.backend, sandbox=sandbox, last=last,
                               progress=lambda n, root: bar.step())
            finally:
                bar.close()
            print(f"replayed blocks 1..{last} from genesis on {args.backend}: every header "
                  f"matches ({time.perf_counter() - t0:.2f} s)")
            print(f"state_root 0x{other.head.state_root.hex()}")
            return 0
        bar = Progress(last - args.first + 1, "verify")
        try:
            n = chain.verify(args.first, last, backend=args.backend, sandbox=sandbox,
                             progress=lambda _: bar.step())
        finally:
            bar.close()
        print(f"verified {n} blocks ({args.first}..{last}) on {args.backend}: every header "
              f"matches ({time.perf_counter() - t0:.2f} s)")
        print(f"state_root 0x{chain.header(last).state_root.hex()}")
    return 0


def add_chain_parser(sub: Any) -> None:
    p = sub.add_parser("chain", help="a simulated chain of contract transactions",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    csub = p.add_subparsers(dest="chain_command", required=True)

    def common(q: argparse.ArgumentParser, backend: bool = True) -> None:
        q.add_argument("--db", required=True, help="the chain's SQLite file")
        if backend:
            q.add_argument("--backend", default="jit", choices=BACKENDS)
            q.add_argument("--sandbox", default="auto", choices=["auto", "linux", "none"])

    q = csub.add_parser("init", help="create a chain with the workload's accounts")
    common(q, backend=False)
    q.add_argument("--users", type=int, default=16)
    q.add_argument("--force", action="store_true", help="replace an existing file")
    q.set_defaults(func=_guarded(cmd_init))

    q = csub.add_parser("run", help="run the seeded sample workload for N blocks")
    common(q)
    q.add_argument("--blocks", type=int, required=True)
    q.add_argument("--seed", type=int, default=0)
    q.add_argument("--users", type=int, default=16)
    q.add_argument("--txs-per-block", type=int, default=24)
    q.add_argument("--quiet", action="store_true", help="no line per block")
    q.add_argument("--no-check", action="store_true", help="skip the token-model check")
    q.set_defaults(func=_guarded(cmd_run))

    q = csub.add_parser("status", help="head, state root, accounts")
    common(q, backend=False)
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=_guarded(cmd_status))

    q = csub.add_parser("verify", help="re-execute blocks and check their headers")
    common(q)
    q.add_argument("--from", dest="first", type=int, default=1)
    q.add_argument("--to", type=int, default=None)
    q.add_argument("--replay", action="store_true",
                   help="replay from genesis in memory instead")
    q.set_defaults(func=_guarded(cmd_verify))


def _guarded(fn: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """``fn`` with chain errors turned into one line on stderr and exit status 1.

    A database that is corrupt (SQLite reports a malformed page, or a stored block,
    receipt or code blob no longer decodes) or is not a chain database is reported
    the same way, naming the file -- never as a traceback."""
    def run(args: argparse.Namespace) -> int:
        import sqlite3

        from chain_sim.chain import ChainError
        from chain_sim.codec import CodecError
        from chain_sim.db import DBError
        from chain_sim.extrinsic import InvalidTransaction
        from chain_sim.scale import ScaleError
        from chain_sim.workload import WorkloadError
        from executor.errors import PvmError

        try:
            return fn(args)
        except (ChainError, DBError, WorkloadError) as exc:
            print(f"pvm-exec chain: error: {exc}", file=sys.stderr)
        except sqlite3.DatabaseError as exc:
            print(f"pvm-exec chain: error: {args.db}: the database is corrupt or not a chain "
                  f"database (sqlite: {exc})", file=sys.stderr)
        except (ScaleError, CodecError, InvalidTransaction) as exc:
            print(f"pvm-exec chain: error: {args.db}: stored data does not decode (a corrupt "
                  f"database?): {exc}", file=sys.stderr)
        except PvmError as exc:
            print(f"pvm-exec chain: error: {exc}", file=sys.stderr)
        except OSError as exc:
            print(f"pvm-exec chain: error: {exc}", file=sys.stderr)
        return 1
    return run
