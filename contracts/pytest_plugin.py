"""pytest fixtures for contract tests.  Enable with ``pytest -p contracts.pytest_plugin``
or ``pytest_plugins = ["contracts.pytest_plugin"]`` in a conftest::

    def test_counter(chain, alice, solidity):
        counter = chain.deploy(*solidity("contracts/src/Counter.sol", "Counter"), sender=alice)
        assert counter.transact("inc").success
        assert counter.call("count") == 1

``chain`` is a fresh in-memory :class:`~contracts.harness.TestChain` on each available
execution setup (the test runs once per setup, ids ``interpreter``, ``jit-sandbox``
-- the JIT in Linux sandbox workers -- and ``jit-inprocess``; pick some with
``pytest --pvm-backend jit-inprocess`` (repeatable) or ``-k``);
``alice`` and ``bob`` are funded accounts;
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


def chain_setups() -> dict[str, tuple[str, str | None]]:
    """The execution setups available here: id -> (backend, sandbox)."""
    setups: dict[str, tuple[str, str | None]] = {"interpreter": ("interpreter", None)}
    if "jit" in available_backends():
        from executor.sandbox import sandbox_unavailable_reason

        if sandbox_unavailable_reason() is None:
            setups["jit-sandbox"] = ("jit", "linux")
        setups["jit-inprocess"] = ("jit", None)
    return setups


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("pvm", "PolkaVM contract testing")
    group.addoption("--pvm-backend", action="append", default=[], metavar="SETUP",
                    help="run the chain fixture only on this setup (interpreter, "
                    "jit-sandbox, jit-inprocess); repeatable")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """``--pvm-backend``: deselects the ``chain`` setups not asked for."""
    wanted = config.getoption("--pvm-backend", default=None) or []
    if not wanted:
        return
    unknown = [w for w in wanted if w not in chain_setups()]
    if unknown:
        raise pytest.UsageError(f"--pvm-backend {unknown[0]!r}: not one of "
                                f"{sorted(chain_setups())} (those available here)")
    keep: list[pytest.Item] = []
    drop: list[pytest.Item] = []
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        setup = params.get("chain")
        (drop if isinstance(setup, str) and setup not in wanted else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture(params=list(chain_setups()))
def chain(request: pytest.FixtureRequest) -> TestChain:
    setup = str(request.param)
    wanted = request.config.getoption("--pvm-backend", default=None) or []
    if wanted and setup not in wanted:
        pytest.skip(f"--pvm-backend {' '.join(wanted)}")
    backend, sandbox = chain_setups()[setup]
    return TestChain(backend=backend, sandbox=sandbox)


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
