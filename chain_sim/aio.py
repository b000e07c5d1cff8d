"""Chains driven by the trio executor.

::

    async with Executor(engine, workers=4) as ex:        # engine: ChainExecutor.engine_for
        async with trio.open_nursery() as nursery:
            for chain in chains:                          # independent chains at once
                nursery.start_soon(ChainExecutor(chain, ex).build_block, xts[chain])

A block is still executed in order, transaction after transaction (state depends on
it), but the top-level contract frame of every transaction runs on a worker of an
:class:`executor.aio.Executor` -- a sandbox process on the sandboxed JIT, the loop
thread itself for in-process backends -- while its host calls (the pallet-revive API,
nested calls included) are served in the calling trio task.  So several chains
(parachains, test networks, a node and its verifier) share one bounded worker pool
with structured concurrency, and cancellation of the surrounding scope stops a block
at the next frame boundary or gas slice (nothing is committed).

No thread is involved: the chain's own (synchronous) block logic runs in a greenlet
on the trio thread.  When it reaches a top-level frame it switches back to the trio
task that called :meth:`ChainExecutor.build_block`; that task awaits the executor and
switches back into the chain code with the frame's outcome (two greenlet switches per
frame, a fraction of a microsecond, instead of two thread hand-offs).

Results are bit-identical to :meth:`Chain.build_block <chain_sim.chain.Chain.build_block>`
(same receipts, gas and state roots): the same runtime code runs, only the place where
the guest executes changes.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterable
from typing import Any

import greenlet
import trio

from chain_sim.chain import BuildResult, Chain
from chain_sim.extrinsic import Extrinsic
from executor.aio import Executor
from executor.engine import Engine
from executor.errors import PvmError
from executor.linker import InstancePre
from executor.revive.frame import Frame

FrameOutcome = tuple[int, PvmError | None]


class _FrameRequest:
    """What the chain greenlet hands the trio task: one top-level frame to run."""

    __slots__ = ("pre", "frame", "gas")

    def __init__(self, pre: InstancePre, frame: Frame, gas: int):
        self.pre = pre
        self.frame = frame
        self.gas = gas


class _Finished:
    __slots__ = ("result",)

    def __init__(self, result: BuildResult):
        self.result = result


class ChainExecutor:
    """Runs ``chain``'s blocks with top-level frames on ``executor``'s workers.

    The executor must run modules of ``chain.runtime.engine`` (the same engine, or
    one with the same configuration)."""

    def __init__(self, chain: Chain, executor: Executor) -> None:
        self.chain = chain
        self.executor = executor
        self._lock = trio.Lock()
        self.frames = 0   # top-level frames run on the executor

    @staticmethod
    def engine_for(chain: Chain) -> Engine:
        return chain.runtime.engine

    async def _run_frame(self, request: _FrameRequest) -> FrameOutcome:
        self.frames += 1
        await trio.lowlevel.checkpoint_if_cancelled()   # a cancelled block stops at a frame
        try:
            r = await self.executor.call_result(request.pre, request.frame.entry,
                                                gas=request.gas, user_data=request.frame)
        except PvmError as exc:
            return (exc.gas_left if exc.gas_left is not None else 0), exc
        return r.gas_left, None

    async def build_block(self, extrinsics: Iterable[bytes | Extrinsic], *,
                          timestamp: int | None = None,
                          author: bytes | None = None) -> BuildResult:
        """:meth:`Chain.build_block` with top-level frames on the executor."""
        xts = list(extrinsics)
        async with self._lock:                    # one block at a time per chain
            task = greenlet.getcurrent()
            chain = self.chain

            def body() -> _Finished:
                return _Finished(chain.build_block(xts, timestamp=timestamp, author=author))

            def frame_runner(pre: InstancePre, frame: Frame, gas: int) -> FrameOutcome:
                # in the chain's greenlet: the trio task runs the frame and switches back
                outcome: FrameOutcome = task.switch(_FrameRequest(pre, frame, gas))
                return outcome

            child = greenlet.greenlet(body)
            child.gr_context = contextvars.copy_context()
            runtime = chain.runtime
            runtime.frame_runner = frame_runner
            try:
                message: Any = child.switch()
                while not isinstance(message, _Finished):
                    assert isinstance(message, _FrameRequest)
                    try:
                        outcome = await self._run_frame(message)
                    except BaseException as exc:  # cancelled: unwind the chain code with it
                        message = child.throw(exc)
                        continue
                    message = child.switch(outcome)
                return message.result
            finally:
                runtime.frame_runner = None
                if not child.dead:   # only when the task itself is torn down mid-frame
                    child.throw(greenlet.GreenletExit)
