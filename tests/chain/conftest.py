"""Shared fixtures for the chain_sim tests."""

from __future__ import annotations

import pytest

from chain_sim import Account, Chain, GenesisConfig
from chain_sim.workload import Contracts


@pytest.fixture(scope="session")
def contracts() -> Contracts:
    return Contracts.build()


@pytest.fixture(scope="session")
def alice() -> Account:
    return Account.dev("alice")


@pytest.fixture(scope="session")
def bob() -> Account:
    return Account.dev("bob")


@pytest.fixture(scope="session")
def charlie() -> Account:
    return Account.dev("charlie")


@pytest.fixture
def genesis(alice: Account, bob: Account) -> GenesisConfig:
    return GenesisConfig(endowed=((alice.account_id, 10**24), (bob.account_id, 10**20)))


@pytest.fixture
def chain(genesis: GenesisConfig) -> Chain:
    return Chain.create(genesis, None, backend="interpreter")
