"""Assembling the dev node: the chain with its dev accounts, the RPC methods, the
server, and the mining loop, in one trio run."""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path

import trio

from chain_sim.chain import Chain, GenesisConfig
from chain_sim.node.accounts import DEV_BALANCE_WEI, DEV_RATIO, eth_accounts, substrate_accounts
from chain_sim.node.jsonrpc import Dispatcher, Session
from chain_sim.node.service import Node


def dev_genesis(ratio: int = DEV_RATIO) -> GenesisConfig:
    """The dev chain: every dev account holds 10,000 units (10^22 wei)."""
    native = DEV_BALANCE_WEI // ratio
    endowed = [(a.account_id, native) for a in substrate_accounts()]
    endowed += [(a.account_id, native) for a in eth_accounts()]
    return GenesisConfig(endowed=tuple(endowed), timestamp=int(time.time() * 1000), dev=True,
                         native_to_eth_ratio=ratio)


def open_chain(db: Path | None, backend: str, sandbox: str | None,
               ratio: int = DEV_RATIO) -> Chain:
    """The chain in ``db`` (a new dev chain with ``ratio`` if there is none)."""
    if db is not None and db.exists():
        return Chain.open(db, backend=backend, sandbox=sandbox)
    return Chain.create(dev_genesis(ratio), db, backend=backend, sandbox=sandbox)


def build_dispatcher(node: Node) -> Dispatcher:
    from chain_sim.node.debug import DebugApi, NodeConsole
    from chain_sim.node.eth import EthApi
    from chain_sim.node.substrate import SubstrateApi

    d = Dispatcher()
    eth = EthApi(node)
    eth.register(d)
    DebugApi(node, eth).register(d)
    NodeConsole(node).install()
    SubstrateApi(node).register(d)
    names = sorted(d.methods)

    async def rpc_methods(s: Session, p: object) -> object:
        return {"version": 1, "methods": names + ["rpc_methods"]}

    d.add("rpc_methods", rpc_methods)
    # without an executor chain work runs in the trio thread: these methods wait for
    # nothing but a free chain lock (WebSocket connections answer them in their
    # reading task)
    d.quick = frozenset(m for m in QUICK_METHODS if m in d.methods)
    d.ready = lambda: node.executor is None and not node.lock.locked()
    return d


QUICK_METHODS = (
    "eth_chainId", "net_version", "net_listening", "web3_clientVersion", "eth_accounts",
    "eth_blockNumber", "eth_getBalance", "eth_getTransactionCount", "eth_gasPrice",
    "eth_maxPriorityFeePerGas", "eth_feeHistory", "eth_call", "eth_estimateGas",
    "eth_sendRawTransaction", "eth_getTransactionReceipt", "eth_getTransactionByHash",
    "eth_getBlockByNumber", "eth_getBlockByHash", "eth_getCode", "eth_getStorageAt",
    "eth_getLogs", "eth_syncing")
"""Methods that wait for nothing but the chain lock when blocks run in the trio
thread (``--workers 0``): no thread, no pool, no subscription."""


def print_accounts(chain: Chain) -> None:
    ratio = chain.ratio
    print(f"Substrate dev accounts (sr25519), each funded with {DEV_BALANCE_WEI // ratio} "
          f"native units = {DEV_BALANCE_WEI // ratio * ratio} wei (native_to_eth_ratio "
          f"{ratio}):")
    for a in substrate_accounts():
        print(f"  {a.name:10} {a.ss58}  0x{a.account_id.hex()}")
    print("Ethereum dev accounts (mnemonic 'test test ... junk'), account id = "
          "address ++ 0xEE*12:")
    for i, e in enumerate(eth_accounts()):
        print(f"  ({i}) {e.checksum}  private key 0x{e.private_key.hex()}")


async def serve(node: Node, host: str, port: int) -> None:
    from chain_sim.node.server import RpcServer

    server = RpcServer(build_dispatcher(node))

    async with trio.open_nursery() as nursery:
        stop = trio.Event()

        async def signals() -> None:
            with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as sigs:
                async for _ in sigs:
                    stop.set()
                    return

        nursery.start_soon(signals)
        listeners = await nursery.start(partial(trio.serve_tcp, server.handle_connection,
                                                port, host=host))
        addr, bound_port = listeners[0].socket.getsockname()[:2]
        bound = f"[{addr}]:{bound_port}" if ":" in addr else f"{addr}:{bound_port}"
        if node.block_time is not None:
            nursery.start_soon(node.miner)
        print(f"listening on ws://{bound} (http on the same port)", flush=True)
        await stop.wait()
        nursery.cancel_scope.cancel()


def run_node(*, db: Path | None, host: str, port: int, block_time: float | None,
             backend: str, sandbox: str | None, workers: int, ratio: int = DEV_RATIO) -> int:
    chain = open_chain(db, backend, sandbox, ratio)
    print(f"chain: {'in memory' if db is None else db}, head {chain.head_number}, "
          f"chain id {chain.genesis.chain_id}, genesis 0x{chain.genesis_hash.hex()}, "
          f"native_to_eth_ratio {chain.ratio}"
          + ("" if chain.genesis.dev else " (not a dev chain: the dev methods are off)"))
    print_accounts(chain)
    sys.stdout.flush()

    async def main() -> None:
        from chain_sim.node.accounts import eth_accounts as eth

        if workers > 0:
            from chain_sim.aio import ChainExecutor
            from executor.aio import Executor

            async with Executor(ChainExecutor.engine_for(chain), workers=workers) as ex:
                node = Node(chain, executor=ChainExecutor(chain, ex), block_time=block_time)
                node.eth_keys = {a.address: a.private_key for a in eth()}
                await serve(node, host, port)
        else:
            node = Node(chain, block_time=block_time)
            node.eth_keys = {a.address: a.private_key for a in eth()}
            await serve(node, host, port)

    profile = os.environ.get("PVM_NODE_PROFILE")
    try:
        if profile:
            _profiled(main, profile)
        else:
            trio.run(main)
    finally:
        chain.close()
    return 0


def _profiled(main: Callable[[], Awaitable[None]], path: str) -> None:
    """Runs ``main`` under cProfile (CPU time) and writes the profile to ``path`` at
    exit (benches: ``PVM_NODE_PROFILE=PATH``); SIGUSR1 starts over (clears what was
    recorded so far), SIGUSR2 pauses."""
    import cProfile

    prof = cProfile.Profile(time.thread_time)

    def restart(*_: object) -> None:
        prof.disable()
        prof.clear()
        prof.enable()

    signal.signal(signal.SIGUSR1, restart)
    signal.signal(signal.SIGUSR2, lambda *_: prof.disable())
    prof.enable()
    try:
        trio.run(main)
    finally:
        prof.disable()
        prof.dump_stats(path)
