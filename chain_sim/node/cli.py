"""``pvm-exec node``: a JSON-RPC dev node over the simulated chain (see
:mod:`chain_sim.node`).

::

    pvm-exec node [--db PATH] [--host 127.0.0.1] [--port 9944] [--block-time SECONDS]
                  [--backend jit|interpreter] [--sandbox auto|linux|none] [--workers N]
                  [--native-to-eth-ratio N]

Without ``--db`` the chain lives in memory; with it, in that SQLite file (created with
the dev accounts when missing, reopened otherwise).  Prints the dev accounts, then
``listening on ws://HOST:PORT (http on the same port)`` when it accepts connections.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def add_node_parser(sub: Any) -> None:
    p = sub.add_parser("node", help="a JSON-RPC dev node (Substrate and Ethereum RPC)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--db", help="the chain's SQLite file (default: in memory)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=9944, help="0: any free port")
    p.add_argument("--block-time", type=float, default=None,
                   help="mine every SECONDS instead of one block per transaction")
    p.add_argument("--backend", default="jit", choices=["interpreter", "jit"])
    p.add_argument("--sandbox", default="auto", choices=["auto", "linux", "none"])
    p.add_argument("--workers", type=int, default=2,
                   help="trio executor workers running the blocks' contract frames "
                        "(0: run blocks in a plain worker thread)")
    p.add_argument("--native-to-eth-ratio", type=int, default=None, metavar="N",
                   help="wei per native unit of a new chain (pallet-revive's "
                        "NativeToEthRatio; default 1000000: native 12 decimals)")
    p.set_defaults(func=cmd_node)


def cmd_node(args: argparse.Namespace) -> int:
    from chain_sim.node.app import run_node

    if args.block_time is not None and args.block_time <= 0:
        print("pvm-exec node: --block-time must be > 0", file=sys.stderr)
        return 2
    if not 0 <= args.port <= 65535:
        print("pvm-exec node: --port must be 0..65535", file=sys.stderr)
        return 2
    ratio = args.native_to_eth_ratio
    if ratio is not None and not 1 <= ratio <= 0xFFFF_FFFF:
        print("pvm-exec node: --native-to-eth-ratio must be 1..4294967295", file=sys.stderr)
        return 2
    return run_node(db=Path(args.db) if args.db else None, host=args.host, port=args.port,
                    block_time=args.block_time, backend=args.backend,
                    sandbox=None if args.sandbox == "none" else args.sandbox,
                    workers=args.workers,
                    **({} if ratio is None else {"ratio": ratio}))
