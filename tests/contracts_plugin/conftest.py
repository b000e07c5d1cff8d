"""The plugin's fixtures, imported (``pytest_plugins`` is only honoured in the
rootdir conftest, which a user's project would use instead)."""

from contracts.pytest_plugin import alice, bob, chain, solidity

__all__ = ["alice", "bob", "chain", "solidity"]
