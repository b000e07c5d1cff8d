"""chain_sim: a simulated Substrate-style chain executing blocks of pallet-revive
contract transactions on the PolkaVM executor.

* :mod:`chain_sim.keys` -- sr25519 accounts, SS58, account id <-> address mapping
* :mod:`chain_sim.codec` -- the chain's SCALE type registry
* :mod:`chain_sim.extrinsic` -- calls and signed extrinsics
* :mod:`chain_sim.storage_keys`, :mod:`chain_sim.merkle` -- storage keys, state root
* :mod:`chain_sim.db` -- SQLite / in-memory databases, atomic per block
* :mod:`chain_sim.state` -- the contract-visible state over the database
* :mod:`chain_sim.block`, :mod:`chain_sim.chain` -- blocks, receipts, the chain
* :mod:`chain_sim.workload` -- the seeded sample workload (ERC-20, factory)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# Names resolve on first use (PEP 562), so importing chain_sim.cli -- which pvm-exec
# does to build its parser -- does not load the crypto and codec libraries.
_EXPORTS = {
    "Block": "chain_sim.block", "Header": "chain_sim.block", "Outcome": "chain_sim.block",
    "Receipt": "chain_sim.block",
    "BlockError": "chain_sim.chain", "BuildResult": "chain_sim.chain",
    "Chain": "chain_sim.chain", "ChainError": "chain_sim.chain", "Fees": "chain_sim.chain",
    "GenesisConfig": "chain_sim.chain", "replay": "chain_sim.chain",
    "ContractCall": "chain_sim.extrinsic", "Extrinsic": "chain_sim.extrinsic",
    "Instantiate": "chain_sim.extrinsic", "InstantiateWithCode": "chain_sim.extrinsic",
    "InvalidTransaction": "chain_sim.extrinsic", "Transfer": "chain_sim.extrinsic",
    "UploadCode": "chain_sim.extrinsic", "sign": "chain_sim.extrinsic",
    "Account": "chain_sim.keys", "to_address": "chain_sim.keys",
}

if TYPE_CHECKING:
    from chain_sim.block import Block, Header, Outcome, Receipt
    from chain_sim.chain import (
        BlockError,
        BuildResult,
        Chain,
        ChainError,
        Fees,
        GenesisConfig,
        replay,
    )
    from chain_sim.extrinsic import (
        ContractCall,
        Extrinsic,
        Instantiate,
        InstantiateWithCode,
        InvalidTransaction,
        Transfer,
        UploadCode,
        sign,
    )
    from chain_sim.keys import Account, to_address


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'chain_sim' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "Account",
    "Block",
    "BlockError",
    "BuildResult",
    "Chain",
    "ChainError",
    "ContractCall",
    "Extrinsic",
    "Fees",
    "GenesisConfig",
    "Header",
    "Instantiate",
    "InstantiateWithCode",
    "InvalidTransaction",
    "Outcome",
    "Receipt",
    "Transfer",
    "UploadCode",
    "replay",
    "sign",
    "to_address",
]
