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
