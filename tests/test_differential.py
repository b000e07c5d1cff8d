"""A bounded slice of the differential campaign: random programs must behave
identically (every interrupt, pc, register, gas, memory) on the interpreter
and the JIT.  The long campaign is tools/difffuzz.py."""

from __future__ import annotations

import pytest

from executor.backends import available_backends
from executor.tools.difftest import compare, random_case, run_case

pytestmark = [pytest.mark.skipif("jit" not in available_backends(), reason="no JIT here"),
              pytest.mark.asan]  # also run on the ASan/UBSan build (make test-asan)


@pytest.mark.parametrize("block", range(8))
def test_random_programs_agree(block: int) -> None:
    for seed in range(block * 500, (block + 1) * 500):
        case = random_case(seed)
        a = run_case(case, "interpreter")
        b = run_case(case, "jit")
        diff = compare(a, b)
        assert diff is None, f"seed {seed}: {diff}"


@pytest.mark.slow
def test_generator_reaches_every_outcome() -> None:
    kinds = set()
    for seed in range(3000):
        kinds.add(run_case(random_case(seed), "interpreter")[0].kind)
    assert {"TRAP", "NOT_ENOUGH_GAS", "SEGFAULT", "ECALLI", "FINISHED"} <= kinds


@pytest.mark.slow
def test_jit_without_bmi2_agrees() -> None:
    """The plain (non-BMI2) shift sequences, forced with PVM_JIT_NO_BMI2."""
    import subprocess
    import sys

    code = (
        "from executor.tools.difftest import compare, random_case, run_case\n"
        "bad = [s for s in range(1500) if compare(run_case(random_case(s), 'interpreter'),"
        " run_case(random_case(s), 'jit'))]\n"
        "print('divergent', bad)\n"
    )
    import os

    env = dict(os.environ, PVM_JIT_NO_BMI2="1")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    assert "divergent []" in r.stdout
