"""Chains driven by the trio executor.

::

    async with Executor(engine, workers=4) as ex:        # engine: ChainExecutor.engine_for
        async with trio.open_nursery() as nursery:
            for chain in chains:                          # independent chains at once
                nursery.start_soon(ChainExecutor(chain, ex).build_block, xts[chain])

A block is still executed in order, transaction after transaction (state depends on
it), but the top-level contract frame of every transaction runs on a worker of an
:class:`executor.aio.Executor` -- a sandbox process on the sandboxed JIT -- while its
host calls (the pallet-revive API, nested calls included) are served in the trio
thread.  The chain's own logic runs in a trio worker thread that waits for the
executor; so several chains (parachains, test networks, a node and its verifier) share
one bounded worker pool with structured concurrency, and cancellation of the
surrounding scope stops a block at the next frame boundary (nothing is committed).

Results are bit-identical to :meth:`Chain.build_block <chain_sim.chain.Chain.build_block>`
(same receipts, gas and state roots): the same runtime code runs, only the place where
the guest executes changes.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

import trio

from chain_sim.chain import BuildResult, Chain
from chain_sim.extrinsic import Extrinsic
from executor.aio import Executor
from executor.engine import Engine
from executor.errors import PvmError
from executor.linker import InstancePre
from executor.revive.frame import Frame


class ChainExecutor:
    """Runs ``chain``'s blocks with top-level frames on ``executor``'s workers.

    The executor must run modules of ``chain.runtime.engine`` (the same engine, or
    one with the same configuration)."""

    def __init__(self, chain: Chain, executor: Executor) -> None:
        self.chain = chain
        self.executor = executor
        self._token: trio.lowlevel.TrioToken | None = None
        self._lock = trio.Lock()

    @staticmethod
    def engine_for(chain: Chain) -> Engine:
        return chain.runtime.engine

    def _run_frame(self, pre: InstancePre, frame: Frame, gas: int) -> tuple[int, PvmError | None]:
        """Called in the chain's thread: runs the frame on the executor."""
        assert self._token is not None

        async def run() -> tuple[int, PvmError | None]:
            try:
                r = await self.executor.call_result(pre, frame.entry, gas=gas,
                                                    user_data=frame)
            except PvmError as exc:
                return (exc.gas_left if exc.gas_left is not None else 0), exc
            return r.gas_left, None

        return trio.from_thread.run(run, trio_token=self._token)

    async def build_block(self, extrinsics: Iterable[bytes | Extrinsic], *,
                          timestamp: int | None = None,
                          author: bytes | None = None) -> BuildResult:
        """:meth:`Chain.build_block` with top-level frames on the executor."""
        xts = list(extrinsics)
        async with self._lock:                    # one block at a time per chain
            self._token = trio.lowlevel.current_trio_token()
            runtime = self.chain.runtime
            runtime.frame_runner = self._run_frame
            try:
                return await trio.to_thread.run_sync(
                    lambda: self.chain.build_block(xts, timestamp=timestamp, author=author),
                    thread_name=f"chain-{threading.get_ident()}")
            finally:
                runtime.frame_runner = None
