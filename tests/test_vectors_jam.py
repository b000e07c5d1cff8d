"""All JAM v0.4 conformance vectors, one test each (JAM v0.4 profile)."""

from __future__ import annotations

from pathlib import Path

import pytest

from executor.backends import available_backends
from executor.tools.vectors import run_json_vector
from tests.conftest import JAM_VECTORS

pytestmark = pytest.mark.asan  # also run on the ASan/UBSan build (make test-asan)

VECTORS = sorted(JAM_VECTORS.glob("*.json"))
BACKENDS = available_backends()


def test_vector_count() -> None:
    assert len(VECTORS) == 201


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("path", VECTORS, ids=[p.stem for p in VECTORS])
def test_jam_vector(path: Path, backend: str) -> None:
    result = run_json_vector(path, backend=backend)
    assert result.ok, result.line()


@pytest.mark.parametrize("backend", BACKENDS)
def test_cli_vectors_summary(capsys: pytest.CaptureFixture[str], backend: str) -> None:
    from executor.tools.cli import main

    assert main(["vectors", str(JAM_VECTORS), "--backend", backend]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert out[-1] == "201 passed, 0 failed"
