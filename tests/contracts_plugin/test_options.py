"""The pytest plugin's options, run as a user would: pytest in a subprocess on a small
test file (--gas-report, --pvm-trace, the trace of a failing test, --pvm-backend)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from contracts.pytest_plugin import gas_report

TEST_FILE = textwrap.dedent('''
    from tests.contracts.abis import COUNTER_ABI, COUNTER_BLOB

    def test_counts(chain, alice):
        counter = chain.deploy(COUNTER_BLOB, COUNTER_ABI, sender=alice)
        counter.transact("inc", sender=alice)
        counter.transact("inc", sender=alice)
        assert counter.call("count") == 2

    def test_fails(chain, alice):
        counter = chain.deploy(COUNTER_BLOB, COUNTER_ABI, sender=alice)
        r = counter.transact("inc", sender=alice, value=1, check=False)
        assert r.success, "inc is not payable"
''')


def run(tmp_path: Path, *args: str) -> str:
    (tmp_path / "test_user.py").write_text(TEST_FILE)
    root = Path(__file__).resolve().parents[2]
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                        "--rootdir", str(tmp_path), str(tmp_path / "test_user.py"), *args],
                       capture_output=True, text=True, cwd=root, timeout=600)
    return r.stdout + r.stderr


def test_gas_report_and_failing_trace(tmp_path: Path) -> None:
    out = run(tmp_path, "--gas-report", "--pvm-backend", "interpreter")
    assert "1 failed, 1 passed" in out
    assert "gas report (Ethereum gas as pallet-revive's eth-rpc reports" in out
    rows = [line for line in out.splitlines() if line.startswith("0x") and "|" in line]
    # successful transactions only: two deployments, two inc (the failed inc is left out)
    assert any("| (deploy) |     2 |" in r for r in rows), out
    assert any("| inc      |     2 |" in r for r in rows), out
    # the failing test shows the trace of the chain's last failed transaction
    assert "pvm trace of the last failed transaction" in out
    assert "::inc{value: 1}()" in out and "└─ ← [Revert] (no data)" in out


def test_pvm_trace_prints_every_transaction(tmp_path: Path) -> None:
    out = run(tmp_path, "--pvm-trace", "-s", "-k", "counts", "--pvm-backend", "jit-inprocess")
    assert "1 passed" in out, out
    assert out.count("::inc()") == 2 and "::count()" in out


def test_gas_report_table() -> None:
    text = gas_report({("Token", "transfer"): [(30, 3, 0), (10, 1, 5), (20, 2, 5), (40, 4, 9)],
                       ("Token", "(deploy)"): [(5, 7, 100)]})
    lines = text.splitlines()
    assert lines[0].split("|")[0].strip() == "contract"
    assert [c.strip() for c in lines[2].split("|")] == ["Token", "(deploy)", "1", "5", "5",
                                                        "5", "5", "7", "100"]
    assert [c.strip() for c in lines[3].split("|")] == ["Token", "transfer", "4", "10", "25",
                                                        "25", "40", "2", "5"]
