"""The dev node's core: one chain, one lock, mining, indexes and block notifications.

Every access to the chain happens under :attr:`Node.lock` (blocks are built one at a
time; reads never see a block half built).  With an executor (``--workers N``, the
default) blocks run through :class:`chain_sim.aio.ChainExecutor` (the chain's thread
waits for contract frames on the executor's workers) and dry runs in a worker thread,
so the trio loop keeps serving other clients meanwhile; without one (``--workers 0``)
chain work runs in the trio thread itself, which is faster for short transactions
(no thread hop) but holds other clients' requests while it runs.

Automine (the default, like anvil): each submitted transaction is mined at once in a
block of its own, and an invalid one is answered with the reason and changes nothing.
With ``block_time`` set, transactions wait in a pool and a block is mined every
``block_time`` seconds with what is there.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import trio

from chain_sim.aio import ChainExecutor
from chain_sim.block import Block, Header, Receipt
from chain_sim.chain import BuildResult, Chain
from chain_sim.extrinsic import EthTransact, InvalidTransaction, Unsigned, decode_extrinsic
from chain_sim.node.ethview import eth_view
from chain_sim.storage_keys import blake2_256

T = TypeVar("T")

RECENT_BLOCKS = 64
"""Blocks the node keeps decoded (the newest it built)."""


class _ChainLock:
    """``async with``: :attr:`Node.lock`, taken at once when it is free (no round
    through the scheduler, as ``async with lock`` makes), else waited for."""

    __slots__ = ("lock",)

    def __init__(self, lock: trio.Lock) -> None:
        self.lock = lock

    async def __aenter__(self) -> None:
        try:
            self.lock.acquire_nowait()
        except trio.WouldBlock:
            await self.lock.acquire()

    async def __aexit__(self, *exc: object) -> None:
        self.lock.release()


@dataclass(frozen=True)
class TxRef:
    number: int
    index: int


@dataclass
class PendingTx:
    raw: bytes
    hash: bytes
    done: trio.Event
    result: tuple[int, int] | str | None = None   # (block, index) or the rejection


class Node:
    """A chain served to RPC clients."""

    def __init__(self, chain: Chain, *, executor: ChainExecutor | None = None,
                 block_time: float | None = None,
                 log: Callable[[str], None] = print) -> None:
        self.chain = chain
        self.executor = executor
        self.block_time = block_time
        self.log = log
        self.lock = trio.Lock()
        self.chain_lock = _ChainLock(self.lock)      # the lock, without a checkpoint
        self.eth_index: dict[bytes, TxRef] = {}     # keccak256(eth tx) -> where
        self.xt_index: dict[bytes, TxRef] = {}      # blake2_256(extrinsic) -> where
        self.pending: list[PendingTx] = []
        self.snapshots: dict[int, int] = {}         # snapshot id -> block number
        self._next_snapshot = 1
        self.time_offset_ms = 0
        self.next_timestamp_ms: int | None = None
        self._listeners: set[trio.MemorySendChannel[int]] = set()
        self.eth_keys: dict[bytes, bytes] = {}      # unlocked dev accounts
        self.impersonated: set[bytes] = set()       # hardhat_impersonateAccount
        self.console_muted = False                  # console.log lines not printed
        chain.strict_build = block_time is None      # automine: a rejection mines nothing
        self._recent: dict[int, Block] = {}          # the blocks this node built, newest
        self._index_blocks(1)

    # ---- indexes ----
    def _index_blocks(self, first: int) -> None:
        for n in range(first, self.chain.head_number + 1):
            self._index_block(self.chain.block(n))

    def _index_block(self, block: Block) -> None:
        for i, raw in enumerate(block.extrinsics):
            ref = TxRef(block.number, i)
            self.xt_index[blake2_256(raw)] = ref
            tx = eth_view(raw, self.chain.ratio)
            if tx is not None:
                self.eth_index[tx.hash] = ref

    def _unindex_after(self, number: int) -> None:
        for index in (self.eth_index, self.xt_index):
            for h in [h for h, r in index.items() if r.number > number]:
                del index[h]

    # ---- running chain work ----
    async def run(self, fn: Callable[[], T]) -> T:
        """``fn`` under the chain lock: in a worker thread when blocks go through the
        executor, else in the trio thread itself (chain work is serialised by the lock
        anyway, and a thread hop costs more than a dry run: bench_node.py)."""
        await self._acquire()
        try:
            if self.executor is None:
                return fn()
            return await trio.to_thread.run_sync(fn)
        finally:
            self.lock.release()

    async def _acquire(self) -> None:
        """Takes :attr:`lock`: at once when it is free (no round through the
        scheduler: most requests find it free), else waiting for it."""
        try:
            self.lock.acquire_nowait()
        except trio.WouldBlock:
            await self.lock.acquire()

    def _timestamp(self) -> int:
        head = self.chain.head_number
        parent = (self._recent[head].header if head in self._recent
                  else self.chain.head).timestamp
        if self.next_timestamp_ms is not None:
            ts = self.next_timestamp_ms
        else:
            ts = int(time.time() * 1000) + self.time_offset_ms
        return max(ts, parent + 1)

    async def mine(self, raws: list[bytes], *, timestamp: int | None = None) -> BuildResult:
        """Builds the next block from ``raws``: invalid ones are left out (automine:
        :class:`InvalidTransaction` is raised and nothing is mined)."""
        await self._acquire()
        try:
            result = await self._mine_locked(raws, timestamp)
        finally:
            self.lock.release()
        self._announce(result.block.number)
        return result

    async def _mine_locked(self, raws: list[bytes], timestamp: int | None) -> BuildResult:
        ts = self._timestamp() if timestamp is None else timestamp
        if self.executor is not None:
            result = await self.executor.build_block(raws, timestamp=ts)
        else:
            result = self.chain.build_block(raws, timestamp=ts)
        self.next_timestamp_ms = None
        self._index_block(result.block)
        self._remember(result.block)
        return result

    def _remember(self, block: Block) -> None:
        """Keeps the last :data:`RECENT_BLOCKS` blocks built (receipts and block queries
        of new transactions read them without decoding them from the database)."""
        self._recent[block.number] = block
        if len(self._recent) > RECENT_BLOCKS:
            del self._recent[min(self._recent)]

    async def submit(self, raw: bytes) -> bytes:
        """Submits an extrinsic; returns its hash.  Automine: mined at once, raising
        :class:`InvalidTransaction` (nothing changed) when it cannot be included."""
        xt_hash = blake2_256(raw)
        if self.block_time is None:
            await self.mine([raw])      # raises InvalidTransaction (strict build)
            return xt_hash
        decode_extrinsic(raw)      # obviously malformed ones are refused at once
        self.pending.append(PendingTx(raw, xt_hash, trio.Event()))
        return xt_hash

    async def mine_pending(self) -> BuildResult:
        async with self.lock:     # the pool and the chain change together
            batch = list(self.pending)
            try:
                result = await self._mine_locked([p.raw for p in batch], None)
            except BaseException:
                for p in batch:
                    p.result = "the block failed"
                    p.done.set()
                raise
            finally:
                self.pending = self.pending[len(batch):]
        self._announce(result.block.number)
        rejected = dict(result.rejected)
        for i, p in enumerate(batch):
            if i in rejected:
                p.result = rejected[i]
                self.log(f"dropped transaction 0x{p.hash.hex()}: {rejected[i]}")
            p.done.set()
        return result

    async def miner(self) -> None:
        """Mines a block every ``block_time`` seconds (``--block-time``)."""
        assert self.block_time is not None
        while True:
            await trio.sleep(self.block_time)
            await self.mine_pending()

    # ---- new blocks ----
    def _announce(self, number: int) -> None:
        for ch in list(self._listeners):
            try:
                ch.send_nowait(number)
            except (trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
                self._listeners.discard(ch)

    def listen(self) -> trio.MemoryReceiveChannel[int]:
        """A channel that receives the number of every new block."""
        send, recv = trio.open_memory_channel[int](math.inf)
        self._listeners.add(send)
        return recv

    def unlisten(self, recv: trio.MemoryReceiveChannel[int]) -> None:
        recv.close()

    # ---- snapshots ----
    async def snapshot(self) -> int:
        async with self.lock:
            sid = self._next_snapshot
            self._next_snapshot += 1
            self.snapshots[sid] = self.chain.head_number
            return sid

    async def revert(self, sid: int) -> bool:
        """Back to snapshot ``sid`` (which, and every later one, is used up)."""
        async with self.lock:
            number = self.snapshots.get(sid)
            if number is None:
                return False
            for k in [k for k in self.snapshots if k >= sid]:
                del self.snapshots[k]
            await trio.to_thread.run_sync(lambda: self.chain.rewind(number))
            self._unindex_after(number)
            self._recent.clear()
            return True

    # ---- reads (call under the lock) ----
    def header_of(self, number: int) -> Header:
        return self.chain.header(number)

    def block_of(self, number: int) -> Block:
        block = self._recent.get(number)
        return self.chain.block(number) if block is None else block

    def number_of_hash(self, block_hash: bytes) -> int | None:
        return self.chain.db.block_number(block_hash)

    def receipt_of(self, ref: TxRef) -> tuple[Block, bytes, Receipt]:
        block = self.block_of(ref.number)
        return block, block.extrinsics[ref.index], block.receipts[ref.index]


def eth_payload(raw: bytes) -> bytes | None:
    """The Ethereum transaction inside an unsigned ``Revive.eth_transact``."""
    if len(raw) < 3:
        return None
    try:
        xt = decode_extrinsic(raw)
    except InvalidTransaction:
        return None
    if isinstance(xt, Unsigned) and isinstance(xt.call, EthTransact):
        return xt.call.payload
    return None


def to_hex(b: bytes) -> str:
    return "0x" + b.hex()


def qty(n: int) -> str:
    return hex(n)


def jsonable(x: Any) -> Any:
    return x
