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

When a test that used ``chain`` fails, the report shows the call trace of the chain's
last failed transaction (section "pvm trace").  Options:

* ``--pvm-trace``: trace every transaction and print the trees (shown with ``-s``, or
  under a failing test's captured output);
* ``--gas-report``: at the end, per contract and function, calls / min / mean /
  median / max of the Ethereum gas a client of pallet-revive would see (the receipt's
  ``gasUsed``), with the PolkaVM gas and the storage deposit beside it (see
  contracts/README.md for the units);
* ``--pvm-backend SETUP``: run ``chain`` tests only on that setup (repeatable).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from executor.backends import available_backends

if TYPE_CHECKING:
    from contracts.harness import Account, Receipt, TestChain

# The harness (and through it the crypto libraries) is imported when a fixture or hook
# needs it, not when the plugin loads: the plugin is registered for every pytest run
# of the project, including the sanitizer run, where pycryptodome cannot load.


def chain_setups(*, probe_sandbox: bool = True) -> dict[str, tuple[str, str | None]]:
    """The execution setups available here: id -> (backend, sandbox).  Without
    ``probe_sandbox`` the sandbox is assumed to work (probing starts a worker
    process, which plugin import must not do)."""
    setups: dict[str, tuple[str, str | None]] = {"interpreter": ("interpreter", None)}
    if "jit" in available_backends():
        sandbox_ok = True
        if probe_sandbox:
            from executor.sandbox import sandbox_unavailable_reason

            sandbox_ok = sandbox_unavailable_reason() is None
        if sandbox_ok:
            setups["jit-sandbox"] = ("jit", "linux")
        setups["jit-inprocess"] = ("jit", None)
    return setups


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("pvm", "PolkaVM contract testing")
    group.addoption("--pvm-backend", action="append", default=[], metavar="SETUP",
                    help="run the chain fixture only on this setup (interpreter, "
                    "jit-sandbox, jit-inprocess); repeatable")
    group.addoption("--pvm-trace", action="store_true", default=False,
                    help="trace every contract transaction and print the call trees")
    group.addoption("--gas-report", action="store_true", default=False,
                    help="print gas used per contract function at the end")


GasRow = tuple[int, int, int]
"""One successful transaction: (Ethereum gas, PolkaVM gas, storage deposit)."""
_GAS = pytest.StashKey[dict[tuple[str, str], list[GasRow]]]()


def _gas_table(config: pytest.Config) -> dict[tuple[str, str], list[GasRow]]:
    return config.stash.setdefault(_GAS, {})


def watch(chain: TestChain, config: pytest.Config) -> TestChain:
    """Connects ``chain`` to the ``--pvm-trace`` and ``--gas-report`` options (the
    ``chain`` fixture does it; call it for chains a test makes itself)."""
    if config.getoption("--pvm-trace", default=False):
        chain.tracing = True
        chain.on_trace.append(lambda r: print(f"\n{r.trace_text}"))
    if config.getoption("--gas-report", default=False):
        table = _gas_table(config)

        def record(r: Receipt) -> None:
            if r.success and r.function is not None:
                table.setdefault((r.contract or "?", r.function), []).append(
                    (r.eth_gas or 0, r.gas_used, r.storage_deposit))

        chain.on_receipt.append(record)
    return chain


GAS_REPORT_TITLE = ("gas report (Ethereum gas as pallet-revive's eth-rpc reports a receipt's "
                    "gasUsed; PolkaVM gas as metered here; deposit in native units: "
                    "see contracts/README.md)")


def gas_report(table: dict[tuple[str, str], list[GasRow]]) -> str:
    """The ``--gas-report`` table: per contract and function, over its successful
    transactions, calls and min / mean / median / max of the Ethereum gas an
    Ethereum client would see (the receipt's ``gasUsed``), then the median PolkaVM gas
    metered here and the median storage deposit (native units, not in the gas)."""
    rows = [("contract", "function", "calls", "min", "mean", "median", "max",
             "PolkaVM gas (median)", "deposit (median)")]
    for (contract, function), entries in sorted(table.items()):
        gas = [e[0] for e in entries]
        rows.append((contract, function, str(len(gas)), str(min(gas)),
                     str(round(statistics.fmean(gas))), str(round(statistics.median(gas))),
                     str(max(gas)), str(round(statistics.median(e[1] for e in entries))),
                     str(round(statistics.median(e[2] for e in entries)))))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for n, r in enumerate(rows):
        lines.append(" | ".join(c.ljust(w) if i < 2 else c.rjust(w)
                                for i, (c, w) in enumerate(zip(r, widths, strict=True))))
        if n == 0:
            lines.append("-+-".join("-" * w for w in widths))
    return "\n".join(lines)


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int,
                            config: pytest.Config) -> None:
    if config.getoption("--gas-report", default=False):
        table = _gas_table(config)
        terminalreporter.section(GAS_REPORT_TITLE)
        terminalreporter.write_line(gas_report(table) if table else "no transactions")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    outcome = yield
    report = outcome.get_result()
    if report.when != "call" or not report.failed:
        return
    chain = getattr(item, "funcargs", {}).get("chain")
    failure = getattr(chain, "last_failure", None)
    if failure is not None and getattr(failure, "trace_text", None):
        head = f"{failure.contract or '?'}.{failure.function or '?'}"
        report.sections.append((f"pvm trace of the last failed transaction ({head})",
                                failure.trace_text))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """``--pvm-backend``: deselects the ``chain`` setups not asked for."""
    wanted = config.getoption("--pvm-backend", default=None) or []
    if not wanted:
        return
    known = chain_setups(probe_sandbox=False)
    unknown = [w for w in wanted if w not in known]
    if unknown:
        raise pytest.UsageError(f"--pvm-backend {unknown[0]!r}: not one of "
                                f"{sorted(known)} (those available here)")
    keep: list[pytest.Item] = []
    drop: list[pytest.Item] = []
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        setup = params.get("chain")
        (drop if isinstance(setup, str) and setup not in wanted else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture(params=list(chain_setups(probe_sandbox=False)))
def chain(request: pytest.FixtureRequest) -> Iterator[TestChain]:
    setup = str(request.param)
    wanted = request.config.getoption("--pvm-backend", default=None) or []
    if wanted and setup not in wanted:
        pytest.skip(f"--pvm-backend {' '.join(wanted)}")
    setups = chain_setups()
    if setup not in setups:
        from executor.sandbox import sandbox_unavailable_reason

        pytest.skip(f"no Linux sandbox here: {sandbox_unavailable_reason()}")
    backend, sandbox = setups[setup]
    from contracts.harness import TestChain

    test_chain = watch(TestChain(backend=backend, sandbox=sandbox), request.config)
    yield test_chain
    test_chain.check_expectations()  # an expect_emit no transaction came to check


@pytest.fixture
def alice(chain: TestChain) -> Account:
    return chain.new_account(balance=10**21, label="alice")


@pytest.fixture
def bob(chain: TestChain) -> Account:
    return chain.new_account(balance=10**21, label="bob")


@pytest.fixture
def solidity() -> Callable[[str | Path, str], tuple[bytes, list[dict[str, Any]]]]:
    def build(path: str | Path, contract: str) -> tuple[bytes, list[dict[str, Any]]]:
        from contracts.build import compiled

        art = compiled(Path(path))[contract]
        return art.blob, art.abi

    return build
