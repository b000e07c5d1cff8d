"""All JAM v0.4 conformance vectors, one test each (JAM v0.4 profile)."""

from __future__ import annotations

from pathlib import Path

import pytest

from executor.vectors import run_json_vector
from tests.conftest import JAM_VECTORS

VECTORS = sorted(JAM_VECTORS.glob("*.json"))


def test_vector_count() -> None:
    assert len(VECTORS) == 201


@pytest.mark.parametrize("path", VECTORS, ids=[p.stem for p in VECTORS])
def test_jam_vector(path: Path) -> None:
    result = run_json_vector(path)
    assert result.ok, result.line()


def test_cli_vectors_summary(capsys: pytest.CaptureFixture[str]) -> None:
    from executor.cli import main

    assert main(["vectors", str(JAM_VECTORS)]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert out[-1] == "201 passed, 0 failed"
