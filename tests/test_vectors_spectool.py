"""The PolkaVM 0.35 spectool sources (230 inst_*, 23 gas_*, 4 multistep_*),
assembled on the fly and run under PolkaVM rules on every backend.  Their
`post: gas` lines assume the full (pipeline) cost model with the L2-hit cache
variant, as the reference's spectool runs them: they are checked under that
model and not under the (default) naive one.  The gas of the sources without
`post: gas` lines is checked in tests/test_gas_full.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from executor.backends import available_backends
from executor.gas import FullCostModel
from executor.tools.spectool import load_test
from executor.tools.vectors import run_source
from tests.conftest import SPECTOOL

pytestmark = pytest.mark.asan  # also run on the ASan/UBSan build (make test-asan)

SOURCES = sorted(SPECTOOL.glob("*.txt"))


def test_source_counts() -> None:
    names = [p.stem for p in SOURCES]
    assert len(names) == 257
    assert sum(n.startswith("inst_") for n in names) == 230
    assert sum(n.startswith("gas_") for n in names) == 23
    assert sum(n.startswith("multistep_") for n in names) == 4


@pytest.mark.parametrize("backend", available_backends())
@pytest.mark.parametrize("path", SOURCES, ids=[p.stem for p in SOURCES])
def test_spectool_source(path: Path, backend: str) -> None:
    result = run_source(path, backend=backend)
    assert result.ok, result.line()


WITH_POST_GAS = [p for p in SOURCES if load_test(p).post_gas is not None]


def test_post_gas_counts() -> None:
    assert len(WITH_POST_GAS) == 229


@pytest.mark.parametrize("backend", available_backends())
@pytest.mark.parametrize("path", SOURCES, ids=[p.stem for p in SOURCES])
def test_spectool_source_full_gas(path: Path, backend: str) -> None:
    result = run_source(path, backend=backend, check_gas=True, cost_model=FullCostModel())
    assert result.ok, result.line()
