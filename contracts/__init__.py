"""The Solidity side: :mod:`contracts.harness` (``TestChain``), an in-memory test chain
for pallet-revive contracts with Ethereum-ABI encoding through ``eth-abi``."""
