"""pytest fixtures for contract tests.  Enable with ``pytest -p contracts.pytest_plugin``
or ``pytest_plugins = ["contracts.pytest_plugin"]`` in a conftest::

    def test_counter(chain, alice, solidity):
        counter = chain.deploy(*solidity("contracts/src/Counter.sol", "Counter"), sender=alice)
        assert counter.transact("inc").success
        assert counter.call("count") == 1

``chain`` is a fresh in-memory :class:`~contracts.harness.TestChain` on each available
backend (the test runs once per backend); ``alice`` and ``bob`` are funded accounts;
``solidity(path, contract)`` compiles a Solidity file with resolc (cached) and returns
``(blob, abi)``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from contracts.build import compiled
from contracts.harness import Account, TestChain
from executor.backends import available_backends


@pytest.fixture(params=available_backends())
def chain(request: pytest.FixtureRequest) -> TestChain:
    return TestChain(backend=str(request.param))


@pytest.fixture
def alice(chain: TestChain) -> Account:
    return chain.new_account(balance=10**21, label="alice")


@pytest.fixture
def bob(chain: TestChain) -> Account:
    return chain.new_account(balance=10**21, label="bob")


@pytest.fixture
def solidity() -> Callable[[str | Path, str], tuple[bytes, list[dict[str, Any]]]]:
    def build(path: str | Path, contract: str) -> tuple[bytes, list[dict[str, Any]]]:
        art = compiled(Path(path))[contract]
        return art.blob, art.abi

    return build
