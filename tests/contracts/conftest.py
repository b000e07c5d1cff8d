"""Fixtures: every test that takes ``chain`` runs on each available backend
(the same fixtures contract developers get from ``contracts.pytest_plugin``)."""

from contracts.pytest_plugin import alice, bob, chain, solidity
from executor.backends import available_backends

BACKENDS = available_backends()

__all__ = ["BACKENDS", "alice", "bob", "chain", "solidity"]
