"""Fixtures: every test that takes ``chain`` runs on each available backend
(the same fixtures contract developers get from ``contracts.pytest_plugin``), and the
contracts of contracts/src that several test files deploy, each on a fresh ``chain``
(a test file may define its own fixture of the same name to deploy differently)."""

from typing import Any

import pytest

from contracts.build import compiled
from contracts.harness import Account, Contract, TestChain
from contracts.pytest_plugin import alice, bob, chain, solidity
from executor.backends import available_backends

BACKENDS = available_backends()


def deploy_built(chain: TestChain, name: str, *ctor_args: Any, sender: Account) -> Contract:
    """Deploys contract ``name`` of contracts/src/``name``.sol (built by contracts.build)."""
    art = compiled(name)[name]
    return chain.deploy(art.blob, art.abi, *ctor_args, sender=sender)


@pytest.fixture
def cheats(chain: TestChain, alice: Account) -> Contract:
    return deploy_built(chain, "Cheats", sender=alice)


@pytest.fixture
def reverts(chain: TestChain, alice: Account) -> Contract:
    return deploy_built(chain, "Reverts", sender=alice)


@pytest.fixture
def token(chain: TestChain, alice: Account) -> Contract:
    """Token.sol: name "Tok", symbol "TK", 1000 minted to ``alice``."""
    return deploy_built(chain, "Token", "Tok", "TK", 1000, sender=alice)


@pytest.fixture
def factory(chain: TestChain, alice: Account) -> Contract:
    return deploy_built(chain, "Factory", sender=alice)


__all__ = ["BACKENDS", "alice", "bob", "chain", "cheats", "deploy_built", "factory",
           "reverts", "solidity", "token"]
