"""Vectors, spectool sources (dynamic paging included) and differential runs
on the sandboxed JIT."""

from __future__ import annotations

import pytest

from executor.tools.difftest import compare, random_case, run_case
from executor.tools.vectors import collect
from tests.conftest import JAM_VECTORS, SPECTOOL

pytestmark = pytest.mark.asan  # also run on the ASan/UBSan build (make test-asan)


@pytest.fixture(autouse=True)
def sandboxed(monkeypatch: pytest.MonkeyPatch) -> None:
    from executor.tools import vectors

    monkeypatch.setattr(vectors, "SANDBOX", "linux")


def test_jam_vectors_sandboxed() -> None:
    from executor.tools.vectors import run_path

    results = [run_path(p, backend="jit") for p in collect([JAM_VECTORS])]
    failures = [r.line() for r in results if not r.ok]
    assert failures == []


def test_spectool_sources_sandboxed() -> None:
    from executor.tools.vectors import run_path

    results = [run_path(p, backend="jit") for p in collect([SPECTOOL])]
    failures = [r.line() for r in results if not r.ok]
    assert failures == []


def test_cli(capsys: pytest.CaptureFixture[str]) -> None:
    from executor.tools.cli import main

    assert main(["vectors", str(JAM_VECTORS), "--backend", "jit", "--sandbox", "linux"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == "201 passed, 0 failed"


@pytest.mark.parametrize("block", range(3))
def test_differential_sandboxed(block: int) -> None:
    for seed in range(50_000 + block * 400, 50_000 + (block + 1) * 400):
        case = random_case(seed)
        diff = compare(run_case(case, "interpreter"), run_case(case, "jit", sandbox="linux"))
        assert diff is None, f"seed {seed}: {diff}"


def test_doom_in_the_sandbox_matches_the_reference() -> None:
    import json

    from executor.tools.doom import Doom
    from tests.conftest import BLOBS, WAD

    if not WAD.exists():
        pytest.skip("freedoom1.wad is installed by `make test`")
    ref = json.loads((BLOBS / "doom-reference-100.json").read_text())
    d = Doom(BLOBS / "doom.polkavm", WAD.read_bytes(), backend="jit", sandbox="linux")
    assert d.initialize() == ref["ext_initialize_gas"]
    for k in range(6):
        f = d.tick()
        r = ref["frames"][k]
        assert (f.gas, f"{f.crc32:08x}", f.audio_samples) == (r["gas"], r["crc32"],
                                                             r["audio_samples"])
