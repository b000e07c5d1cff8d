"""pallet-revive contracts on the PolkaVM executor (shared/spec/revive-host-api.md).

* :class:`ReviveRuntime` -- upload code, deploy and call contracts, run the call stack.
* :class:`State` / :class:`InMemoryState` -- the pluggable chain state (nested snapshots).
* :mod:`executor.revive.hostfns` -- the host functions; :mod:`executor.revive.costs` --
  their gas; :mod:`executor.revive.validate` -- upload-time checks;
  :mod:`executor.revive.address` -- CREATE1/CREATE2 addresses.
* :mod:`executor.revive.precompiles` -- the Ethereum precompiles at 0x01..0x09.
* :mod:`executor.revive.trace` -- :class:`~executor.revive.trace.CallTracer`, a host-call
  layer recording call trees (``ReviveRuntime.with_layers`` installs layers over every
  frame of a transaction).
"""

from __future__ import annotations

from executor.revive.address import create1, create2
from executor.revive.constants import (
    SENTINEL,
    CallFlags,
    Limits,
    ReturnCode,
    ReturnFlags,
    StorageFlags,
)
from executor.revive.costs import DEFAULT_COSTS, CostTable
from executor.revive.errors import CodeRejected, ExecError, ReviveError
from executor.revive.hashing import keccak256
from executor.revive.hostfns import host_function_names
from executor.revive.runtime import ExecResult, ReviveRuntime
from executor.revive.state import (
    BlockContext,
    ContractInfo,
    Event,
    InMemoryState,
    State,
    StorageKey,
)

__all__ = [
    "DEFAULT_COSTS",
    "SENTINEL",
    "BlockContext",
    "CallFlags",
    "CodeRejected",
    "ContractInfo",
    "CostTable",
    "Event",
    "ExecError",
    "ExecResult",
    "InMemoryState",
    "Limits",
    "ReturnCode",
    "ReturnFlags",
    "ReviveError",
    "ReviveRuntime",
    "State",
    "StorageFlags",
    "StorageKey",
    "create1",
    "create2",
    "host_function_names",
    "keccak256",
]
