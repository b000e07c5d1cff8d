"""chain_sim.aio.ChainExecutor: blocks built with top-level frames on the trio
executor equal the sequential blocks (receipts, gas, state roots) on every backend,
with no thread per frame, and a cancelled block commits nothing."""

from __future__ import annotations

import threading

import pytest
import trio

from chain_sim import Chain
from chain_sim.aio import ChainExecutor
from chain_sim.workload import Contracts, Workload
from executor.aio import Executor
from executor.backends import available_backends
from executor.sandbox import sandbox_unavailable_reason

CONFIGS = [("interpreter", None)]
if "jit" in available_backends():
    CONFIGS.append(("jit", None))
    if sandbox_unavailable_reason() is None:
        CONFIGS.append(("jit", "linux"))


@pytest.fixture(scope="module")
def reference(contracts: Contracts) -> Chain:
    """Five sample-workload blocks (deploy, grants, random token traffic with
    invalid transactions) built sequentially on the interpreter."""
    chain = Chain.create(Workload.genesis(8), None, backend="interpreter")
    Workload(chain, users=8, contracts=contracts).run(5, seed=7)
    return chain


@pytest.mark.parametrize(("backend", "sandbox"), CONFIGS)
def test_blocks_through_the_executor_equal_sequential(reference: Chain, backend: str,
                                                      sandbox: str | None) -> None:
    chain = Chain.create(Workload.genesis(8), None, backend=backend, sandbox=sandbox)
    threads: list[int] = []

    async def main() -> int:
        async with Executor(ChainExecutor.engine_for(chain), workers=2) as ex:
            ce = ChainExecutor(chain, ex)
            for n in range(1, reference.head_number + 1):
                want = reference.block(n)
                threads.append(threading.active_count())
                got = await ce.build_block(want.extrinsics, timestamp=want.header.timestamp,
                                           author=want.header.author)
                assert got.block.header == want.header
                assert got.block.receipts == want.receipts
            return ce.frames

    frames = trio.run(main)
    assert frames >= reference.head_number   # every block ran contract frames
    assert chain.state_root == reference.state_root
    assert len(set(threads)) == 1            # no thread started per block or frame


def test_independent_chains_share_one_executor(reference: Chain) -> None:
    chains = [Chain.create(Workload.genesis(8), None, backend="interpreter") for _ in range(3)]

    async def build(ex: Executor, chain: Chain) -> None:
        ce = ChainExecutor(chain, ex)
        for n in range(1, reference.head_number + 1):
            want = reference.block(n)
            await ce.build_block(want.extrinsics, timestamp=want.header.timestamp,
                                 author=want.header.author)

    async def main() -> None:
        async with Executor(ChainExecutor.engine_for(chains[0]), workers=2) as ex:
            async with trio.open_nursery() as nursery:
                for c in chains:
                    nursery.start_soon(build, ex, c)

    trio.run(main)
    assert all(c.state_root == reference.state_root for c in chains)


class CancellingChainExecutor(ChainExecutor):
    """Cancels ``scope`` as its first frame starts (a deterministic mid-block cancel)."""

    scope: trio.CancelScope | None = None

    async def _run_frame(self, request):  # type: ignore[no-untyped-def]
        if self.scope is not None:
            self.scope.cancel()
        return await super()._run_frame(request)


def test_a_cancelled_block_commits_nothing(reference: Chain) -> None:
    chain = Chain.create(Workload.genesis(8), None, backend="interpreter")

    async def main() -> None:
        async with Executor(ChainExecutor.engine_for(chain), workers=1) as ex:
            ce = CancellingChainExecutor(chain, ex)
            for n in (1, 2):
                want = reference.block(n)
                await ce.build_block(want.extrinsics, timestamp=want.header.timestamp,
                                     author=want.header.author)
            root = chain.state_root
            want = reference.block(3)
            with trio.CancelScope() as scope:
                ce.scope = scope
                await ce.build_block(want.extrinsics, timestamp=want.header.timestamp,
                                     author=want.header.author)
            assert scope.cancelled_caught
            assert chain.head_number == 2 and chain.state_root == root
            ce.scope = None
            got = await ce.build_block(want.extrinsics, timestamp=want.header.timestamp,
                                       author=want.header.author)   # the block still builds
            assert got.block.header == want.header
            await ex.settle()
            assert ex.stats().free == 1

    trio.run(main)
