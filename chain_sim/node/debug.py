"""``debug_traceCall`` / ``debug_traceTransaction`` with geth's ``callTracer`` output,
and console.log lines printed by the node, as ``hardhat node`` prints them.

Both traces record with :class:`executor.revive.trace.CallTracer` (a host-call layer;
nothing here re-implements the frame bookkeeping):

* ``debug_traceCall``: a dry run (:meth:`Chain.dry_run <chain_sim.chain.Chain.dry_run>`)
  with the tracer installed, on the state of the block asked for (the head's, or a
  scratch copy of a past block's, as ``eth_call``).
* ``debug_traceTransaction``: the state before the transaction's block is rebuilt in a
  scratch chain (:meth:`Chain.before_block`, the undo records walked back as
  ``Chain.verify`` does), the block's earlier extrinsics re-executed and this one
  executed with the tracer (:meth:`Chain.rerun_block`).  Nothing of the node's chain
  changes.  The hash is an Ethereum transaction's (``eth_sendRawTransaction``'s
  answer, or the extrinsic hash of an impersonated account's transaction) or the
  blake2-256 hash of a Substrate-signed extrinsic (``author_submitExtrinsic``'s
  answer): a ``Revive.call``, ``instantiate``, ``instantiate_with_code`` or a
  ``Balances`` transfer (a ``CALL`` frame without code).
* ``debug_traceBlockByNumber`` / ``debug_traceBlockByHash``: every such transaction of
  the block, in order, re-executed once on the state before the block, as geth
  answers: a list of ``{"txHash": ..., "result": frame}``.  Extrinsics that start no
  call (``upload_code``, the Dev pallet's setters) are left out.

The result is geth's ``callTracer`` frame: ``type`` (``CALL``, ``STATICCALL``,
``DELEGATECALL``, ``CREATE``, ``CREATE2``), ``from``, ``to``, ``value`` (left out for
``STATICCALL``, as geth does), ``gas`` (the gas the frame was given), ``gasUsed``,
``input``, ``output`` (left out when empty), ``error`` (``"execution reverted"`` for a
revert, else the pallet-revive error name, e.g. ``OutOfGas``, ``ContractTrapped``),
``revertReason`` (the decoded ``Error(string)`` or panic of reverted output) and
``calls``.  ``tracerConfig``: ``onlyTopCall`` and ``withLog`` (logs of frames that
failed are left out, as geth does).  Gas is the chain's gas (PolkaVM gas as metered),
not EVM gas.  Only the ``callTracer`` is served (not geth's default opcode logger:
there are no EVM opcodes to log).

console.log: :class:`contracts.console.ConsoleLogger` (the decoder of the console.sol
signatures) is installed on the node's runtime as a layer over the ``call`` host
function; each decoded line is printed by the node as ``console.log: <line>``, for
mined transactions and ``eth_call``; gas estimation and traces run quiet
(:func:`quiet`), so one transaction does not print twice.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from chain_sim.block import Outcome, Receipt
from chain_sim.chain import ChainError
from chain_sim.extrinsic import (
    ContractCall,
    Extrinsic,
    Instantiate,
    InstantiateWithCode,
    InvalidTransaction,
    Transfer,
    decode_extrinsic,
)
from chain_sim.keys import to_address
from chain_sim.node import params as P
from chain_sim.node.eth import SERVER_ERROR, EthApi, h, q, revert_message
from chain_sim.node.jsonrpc import Dispatcher, RpcError, Session
from chain_sim.node.service import Node, TxRef
from chain_sim.storage_keys import blake2_256
from executor.revive.constants import ReturnFlags
from executor.revive.runtime import ExecResult
from executor.revive.state import Event
from executor.revive.trace import CallTracer, TraceFrame

CALL_TYPES = {"call": "CALL", "staticcall": "STATICCALL", "delegatecall": "DELEGATECALL",
              "create": "CREATE", "create2": "CREATE2"}
REVERTED = "execution reverted"


def revert_reason(output: bytes) -> str | None:
    """The reason in reverted ``output`` (``Error(string)`` or a panic), if any."""
    message = revert_message(output)
    prefix = REVERTED + ": "
    return message[len(prefix):] if message.startswith(prefix) else None


def call_frame(frame: TraceFrame, *, only_top: bool = False,
               with_log: bool = False) -> dict[str, Any]:
    """``frame`` (and the frames below it) in geth's ``callTracer`` shape."""
    out: dict[str, Any] = {"type": CALL_TYPES[frame.kind], "from": h(frame.caller),
                           "to": h(frame.address)}
    if frame.kind != "staticcall":
        out["value"] = q(frame.value)
    out["gas"] = q(frame.gas_limit)
    out["gasUsed"] = q(frame.gas_used)
    out["input"] = h(frame.input)
    if frame.output:
        out["output"] = h(frame.output)
    if frame.reverted:
        out["error"] = REVERTED
        reason = revert_reason(frame.output)
        if reason is not None:
            out["revertReason"] = reason
    elif frame.error is not None:
        out["error"] = frame.error
    if with_log and frame.success:
        logs = []
        calls_before = 0
        for item in frame.items:
            if isinstance(item, Event):
                logs.append({"address": h(item.contract), "topics": [h(t) for t in item.topics],
                             "data": h(item.data), "position": q(calls_before)})
            else:
                calls_before += 1
        if logs:
            out["logs"] = logs
    if not only_top:
        calls = [call_frame(c, with_log=with_log) for c in frame.children]
        if calls:
            out["calls"] = calls
    return out


def end_with_receipt(tracer: CallTracer, receipt: Receipt) -> TraceFrame:
    """Closes ``tracer``'s top-level frame with a transaction's receipt."""
    reverted = receipt.outcome is Outcome.REVERTED
    error = None
    if receipt.outcome is Outcome.FAILED:
        error = receipt.error or "Failed"
    return tracer.end(ExecResult(ReturnFlags.REVERT if reverted else 0, receipt.output,
                                 error, receipt.gas_used, receipt.contract))


class NodeConsole:
    """Prints the console.log lines of the node's contracts through ``node.log``
    (nothing while ``node.console_muted`` is set: :func:`quiet`)."""

    def __init__(self, node: Node) -> None:
        from contracts.console import ConsoleLogger

        self.node = node
        self.layer = ConsoleLogger(sink=self._line)

    def _line(self, line: str) -> None:
        self.layer.lines.clear()      # a node runs for long: the lines are not kept
        if not self.node.console_muted:
            self.node.log(f"console.log: {line}")

    def install(self) -> None:
        """Installs the layer on the node's runtime, over every frame from now on."""
        runtime = self.node.chain.runtime
        runtime.layers = (*runtime.layers, self.layer)


@contextmanager
def quiet(node: Node) -> Iterator[None]:
    """console.log prints nothing inside (gas estimates, traces); call under the
    node's lock, as all chain work."""
    saved = node.console_muted
    node.console_muted = True
    try:
        yield
    finally:
        node.console_muted = saved


def _tracer_config(opts: Any, name: str) -> tuple[bool, bool]:
    """(onlyTopCall, withLog) from the tracer options; only the callTracer is served."""
    if opts is None:
        opts = {}
    if not isinstance(opts, dict):
        raise P.bad(name, "expected an object")
    tracer = opts.get("tracer")
    if tracer != "callTracer":
        raise P.bad(name + ".tracer", f"only 'callTracer' is supported, got {tracer!r:.40}")
    cfg = opts.get("tracerConfig") or {}
    if not isinstance(cfg, dict):
        raise P.bad(name + ".tracerConfig", "expected an object")
    return bool(cfg.get("onlyTopCall", False)), bool(cfg.get("withLog", False))


@dataclass(frozen=True)
class TopCall:
    """What a transaction's top-level frame is (``to``: ``None`` for a create);
    ``value`` in wei."""

    hash: bytes
    caller: bytes
    to: bytes | None
    value: int
    input: bytes
    gas: int


def top_call(raw: bytes, eth: EthApi) -> TopCall | None:
    """The top-level call of extrinsic ``raw``, ``None`` if it starts none."""
    tx = eth.view(raw)
    if tx is not None:
        return TopCall(tx.hash, tx.sender, tx.to, tx.value, tx.data, tx.gas)
    try:
        xt = decode_extrinsic(raw)
    except InvalidTransaction:
        return None
    if not isinstance(xt, Extrinsic):
        return None
    call, ratio, caller = xt.call, eth.ratio, to_address(xt.signer)
    if isinstance(call, ContractCall):
        return TopCall(blake2_256(raw), caller, call.dest, call.value * ratio, call.data,
                       call.gas_limit)
    if isinstance(call, InstantiateWithCode):
        return TopCall(blake2_256(raw), caller, None, call.value * ratio,
                       call.code + call.data, call.gas_limit)
    if isinstance(call, Instantiate):
        return TopCall(blake2_256(raw), caller, None, call.value * ratio, call.data,
                       call.gas_limit)
    if isinstance(call, Transfer):
        return TopCall(blake2_256(raw), caller, to_address(call.dest), call.value * ratio,
                       b"", eth.chain.fees.transfer_gas)
    return None


class DebugApi:
    def __init__(self, node: Node, eth: EthApi) -> None:
        self.node = node
        self.eth = eth
        self.chain = node.chain

    async def trace_call(self, params: Any) -> dict[str, Any]:
        tx, block, opts = P.positional(params, ["transaction", "block", "options"], 1)
        only_top, with_log = _tracer_config(opts, "options")
        origin, to, data, value, gas = self.eth._call_args(tx, "transaction")
        gas_limit = gas or self.chain.genesis.block_gas_limit
        tracer = CallTracer()
        tracer.begin("call" if to is not None else "create", origin, to or bytes(20),
                     value, data, gas_limit)
        result = await self.eth.dry_run(tx, block, quiet=True, layers=(tracer,),
                                        gas_default=gas_limit)
        return call_frame(tracer.end(result), only_top=only_top, with_log=with_log)

    def _retrace(self, number: int, indexes: list[int]) -> list[tuple[TopCall, TraceFrame]]:
        """Re-executes block ``number`` up to its last extrinsic in ``indexes`` on a
        scratch chain, tracing those (chain work: call under the lock)."""
        chain = self.chain
        block = chain.block(number)
        tops = [top_call(block.extrinsics[i], self.eth) for i in indexes]
        tracers: dict[int, tuple[TopCall, CallTracer]] = {}
        for i, top in zip(indexes, tops, strict=True):
            if top is None:
                raise RpcError(SERVER_ERROR, f"extrinsic {i} of block {number} starts no "
                                             f"call to trace")
            tracer = CallTracer()
            tracer.begin("call" if top.to is not None else "create", top.caller,
                         top.to or bytes(20), top.value, top.input, top.gas)
            tracers[i] = (top, tracer)
        if not tracers:
            return []
        scratch = chain.before_block(number, sandbox=chain.runtime.engine.config.sandbox)
        try:
            with quiet(self.node):
                receipts = scratch.rerun_block(
                    block, max(tracers) + 1,
                    lambda i: (tracers[i][1],) if i in tracers else ())
        except ChainError as exc:
            raise RpcError(SERVER_ERROR, f"cannot trace: {exc}") from None
        finally:
            scratch.close()
        out = []
        for i, (top, tracer) in sorted(tracers.items()):
            if receipts[i] != block.receipts[i]:
                raise RpcError(SERVER_ERROR, f"extrinsic {i} of block {number} did not "
                                             f"re-execute to its recorded receipt")
            out.append((top, end_with_receipt(tracer, receipts[i])))
        return out

    def _find(self, key: bytes) -> TxRef:
        ref = self.node.eth_index.get(key) or self.node.xt_index.get(key)
        if ref is None:
            raise RpcError(SERVER_ERROR, f"transaction 0x{key.hex()} not found")
        return ref

    async def trace_transaction(self, params: Any) -> dict[str, Any]:
        tx_hash, opts = P.positional(params, ["transactionHash", "options"], 1)
        only_top, with_log = _tracer_config(opts, "options")
        key = P.hash32(tx_hash, "transactionHash")

        def run() -> TraceFrame:
            ref = self._find(key)
            ((_, root),) = self._retrace(ref.number, [ref.index])
            return root
        root = await self.node.run(run)
        return call_frame(root, only_top=only_top, with_log=with_log)

    async def trace_block(self, block: Any, opts: Any, name: str) -> list[dict[str, Any]]:
        only_top, with_log = _tracer_config(opts, "options")

        def run() -> list[tuple[TopCall, TraceFrame]]:
            number = self.eth._block_number(block, name)
            if number == 0:
                return []
            b = self.chain.block(number)
            indexes = [i for i, raw in enumerate(b.extrinsics)
                       if top_call(raw, self.eth) is not None]
            return self._retrace(number, indexes)
        traced = await self.node.run(run)
        return [{"txHash": h(top.hash),
                 "result": call_frame(root, only_top=only_top, with_log=with_log)}
                for top, root in traced]

    def register(self, d: Dispatcher) -> None:
        async def trace_call(s: Session, p: Any) -> Any:
            return await self.trace_call(p)

        async def trace_transaction(s: Session, p: Any) -> Any:
            return await self.trace_transaction(p)

        async def trace_block_by_number(s: Session, p: Any) -> Any:
            block, opts = P.positional(p, ["block", "options"], 1)
            return await self.trace_block(block, opts, "block")

        async def trace_block_by_hash(s: Session, p: Any) -> Any:
            bh, opts = P.positional(p, ["hash", "options"], 1)
            P.hash32(bh, "hash")
            return await self.trace_block({"blockHash": bh}, opts, "hash")

        d.add("debug_traceCall", trace_call)
        d.add("debug_traceTransaction", trace_transaction)
        d.add("debug_traceBlockByNumber", trace_block_by_number)
        d.add("debug_traceBlockByHash", trace_block_by_hash)
