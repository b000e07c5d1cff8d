"""Fixtures: every test that takes ``chain`` runs on each available backend
(the same fixtures contract developers get from ``contracts.pytest_plugin``)."""

from contracts.pytest_plugin import alice, bob, chain, solidity

__all__ = ["alice", "bob", "chain", "solidity"]
