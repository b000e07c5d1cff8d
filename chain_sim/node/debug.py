"""``debug_traceCall`` / ``debug_traceTransaction`` with geth's ``callTracer`` output,
and console.log lines printed by the node, as ``hardhat node`` prints them.

Both traces record with :class:`executor.revive.trace.CallTracer` (a host-call layer;
nothing here re-implements the frame bookkeeping):

* ``debug_traceCall``: a dry run (:meth:`Chain.dry_run <chain_sim.chain.Chain.dry_run>`)
  on the head's state with the tracer installed.
* ``debug_traceTransaction``: the state before the transaction's block is rebuilt in a
  scratch chain (:meth:`Chain.before_block`, the undo records walked back as
  ``Chain.verify`` does), the block's earlier extrinsics re-executed and this one
  executed with the tracer (:meth:`Chain.rerun`).  Nothing of the node's chain changes.

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
from typing import Any

from chain_sim.block import Outcome, Receipt
from chain_sim.chain import ChainError
from chain_sim.ethtx import EthTxError
from chain_sim.node import params as P
from chain_sim.node.eth import SERVER_ERROR, EthApi, h, q, revert_message
from chain_sim.node.ethview import eth_view
from chain_sim.node.jsonrpc import Dispatcher, RpcError, Session
from chain_sim.node.service import Node
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


class DebugApi:
    def __init__(self, node: Node, eth: EthApi) -> None:
        self.node = node
        self.eth = eth
        self.chain = node.chain

    async def trace_call(self, params: Any) -> dict[str, Any]:
        tx, block, opts = P.positional(params, ["transaction", "block", "options"], 1)
        only_top, with_log = _tracer_config(opts, "options")
        origin, to, data, value, gas = self.eth._call_args(tx, "transaction")
        chain = self.chain
        async with self.node.lock:
            number = self.eth._block_number(block)
        if number != chain.head_number:
            raise RpcError(SERVER_ERROR, "traces of calls on past blocks are not supported "
                                         "(only 'latest')")

        def run() -> TraceFrame:
            tracer = CallTracer()
            gas_limit = gas or chain.genesis.block_gas_limit
            tracer.begin("call" if to is not None else "create", origin, to or bytes(20),
                         value, data, gas_limit)
            try:
                with quiet(self.node):
                    result = chain.dry_run(origin, to, data, value=value, gas_limit=gas_limit,
                                           layers=(tracer,))
            except EthTxError as exc:
                raise RpcError(SERVER_ERROR, f"invalid deployment: {exc}") from None
            return tracer.end(result)
        root = await self.node.run(run)
        return call_frame(root, only_top=only_top, with_log=with_log)

    async def trace_transaction(self, params: Any) -> dict[str, Any]:
        tx_hash, opts = P.positional(params, ["transactionHash", "options"], 1)
        only_top, with_log = _tracer_config(opts, "options")
        key = P.hash32(tx_hash, "transactionHash")
        node, chain = self.node, self.chain

        def run() -> TraceFrame:
            ref = node.eth_index.get(key)
            if ref is None:
                raise RpcError(SERVER_ERROR, f"transaction 0x{key.hex()} not found")
            block = chain.block(ref.number)
            tx = eth_view(block.extrinsics[ref.index])
            assert tx is not None
            scratch = chain.before_block(ref.number,
                                         sandbox=chain.runtime.engine.config.sandbox)
            try:
                tracer = CallTracer()
                tracer.begin("call" if tx.to is not None else "create", tx.sender,
                             tx.to or bytes(20), tx.value, tx.data, tx.gas)
                receipt = scratch.rerun(block, ref.index + 1, layers=(tracer,))
            except ChainError as exc:
                raise RpcError(SERVER_ERROR, f"cannot trace: {exc}") from None
            finally:
                scratch.close()
            if receipt != block.receipts[ref.index]:
                raise RpcError(SERVER_ERROR, "the transaction did not re-execute to its "
                                             "recorded receipt")
            return end_with_receipt(tracer, receipt)
        root = await node.run(run)
        return call_frame(root, only_top=only_top, with_log=with_log)

    def register(self, d: Dispatcher) -> None:
        async def trace_call(s: Session, p: Any) -> Any:
            return await self.trace_call(p)

        async def trace_transaction(s: Session, p: Any) -> Any:
            return await self.trace_transaction(p)

        d.add("debug_traceCall", trace_call)
        d.add("debug_traceTransaction", trace_transaction)
