"""``pvm-exec node``: a JSON-RPC dev node over :mod:`chain_sim` -- what anvil and
``hardhat node`` are for the EVM, for PolkaVM contracts.

* :mod:`chain_sim.node.jsonrpc` -- the dispatcher (batches, notifications, errors)
* :mod:`chain_sim.node.server` -- HTTP POST and WebSocket on one port (h11 and wsproto on trio)
* :mod:`chain_sim.node.service` -- the chain, its lock, mining, indexes, snapshots
* :mod:`chain_sim.node.eth` -- Ethereum RPC and the Hardhat/anvil dev methods
* :mod:`chain_sim.node.substrate`, :mod:`chain_sim.node.metadata` -- Substrate RPC and
  the V14 runtime metadata
* :mod:`chain_sim.node.accounts` -- the dev accounts
* :mod:`chain_sim.node.debug` -- ``debug_traceTransaction`` / ``debug_traceCall`` (geth's
  ``callTracer`` output, recorded with :class:`executor.revive.trace.CallTracer`) and
  console.log lines printed by the node (:class:`contracts.console.ConsoleLogger`)
"""
