"""``pvm-exec node``: a JSON-RPC dev node over :mod:`chain_sim` -- what anvil and
``hardhat node`` are for the EVM, for PolkaVM contracts.

* :mod:`chain_sim.node.jsonrpc` -- the dispatcher (batches, notifications, errors)
* :mod:`chain_sim.node.server` -- HTTP POST and WebSocket on one port (hypercorn, trio)
* :mod:`chain_sim.node.service` -- the chain, its lock, mining, indexes, snapshots
* :mod:`chain_sim.node.eth` -- Ethereum RPC and the Hardhat/anvil dev methods
* :mod:`chain_sim.node.substrate`, :mod:`chain_sim.node.metadata` -- Substrate RPC and
  the V14 runtime metadata
* :mod:`chain_sim.node.accounts` -- the dev accounts

Not done yet -- ``debug_traceTransaction`` / ``debug_traceCall`` (geth ``callTracer``)
and console.log printing.  The plan, to reuse the host-call layer of branch
``contracts`` (``executor/revive/trace.py``: ``CallTracer``, ``TraceFrame``;
``ReviveRuntime.with_layers``) once it is on main rather than writing a second one:

* ``debug_traceCall``: like ``Chain.dry_run`` (``state.set_block`` ... ``state.reset``)
  with ``CallTracer().trace_call`` / ``trace_instantiate`` on ``chain.runtime``, under
  ``Node.run``; ``TraceFrame`` -> ``{type: CALL|STATICCALL|DELEGATECALL|CREATE|CREATE2,
  from, to, value, gas, gasUsed, input, output, error, revertReason, calls: [...]}``
  (``revertReason`` via ``eth.revert_message``).
* ``debug_traceTransaction``: rebuild the state before the transaction's block as
  ``Chain.verify`` does (``Chain._state_at(n - 1)`` into a scratch ``Chain``), apply the
  block's extrinsics before it (a ``Chain`` method running ``_apply`` without sealing),
  then apply it with the tracer installed around ``_dispatch`` (``begin``/``end`` on the
  top-level frame).
* console.log: a host layer on the node's runtime that sees ``call`` host calls to the
  Hardhat console address ``0x000000000000000000636f6e736f6c652e6c6f67``, decodes the
  ABI (the contracts helper's console.log decoder) and prints through ``Node.log``.
"""
