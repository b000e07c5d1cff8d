"""Fixtures: every test that takes ``chain`` runs on each available backend."""

from __future__ import annotations

import pytest

from contracts.harness import Account, TestChain
from executor.backends import available_backends

BACKENDS = available_backends()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def chain(backend: str) -> TestChain:
    return TestChain(backend=backend)


@pytest.fixture
def alice(chain: TestChain) -> Account:
    return chain.new_account(balance=10**21, label="alice")


@pytest.fixture
def bob(chain: TestChain) -> Account:
    return chain.new_account(balance=10**21, label="bob")
