"""`pvm-exec doom`: the closing `gas` and `checksum` lines are identical on every
backend (a short run with a key script), and PNG frames are written."""

from __future__ import annotations

from pathlib import Path

import pytest

from executor.backends import available_backends
from executor.errors import PvmError
from executor.tools.cli import main
from executor.tools.doom import parse_key_script
from tests.conftest import WAD

pytestmark = pytest.mark.skipif(not WAD.exists(), reason="freedoom1.wad is installed by make")

KEYS = "5 enter down\n7 enter up\n20 enter down\n22 enter up\n30 enter down\n32 enter up\n"


def run(capsys: pytest.CaptureFixture[str], *args: str) -> list[str]:
    assert main(["doom", "--quiet", *args]) == 0
    return capsys.readouterr().out.strip().splitlines()


@pytest.mark.slow
def test_same_gas_and_checksum_on_every_backend(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    keys = tmp_path / "keys.txt"
    keys.write_text(KEYS)
    results = {}
    variants = [(b, None) for b in available_backends()]
    from executor.sandbox import sandbox_unavailable_reason

    if "jit" in available_backends() and sandbox_unavailable_reason() is None:
        variants.append(("jit", "linux"))
    for backend, sandbox in variants:
        extra = ["--sandbox", sandbox] if sandbox else []
        lines = run(capsys, "--frames", "45", "--backend", backend, "--keys", str(keys), *extra)
        assert lines[-2].startswith("gas ") and lines[-1].startswith("checksum 0x")
        assert len(lines[-1]) == len("checksum 0x") + 16
        results[(backend, sandbox)] = lines[-2:]
    assert len({tuple(v) for v in results.values()}) == 1, results
    assert int(results[("interpreter", None)][0].split()[1]) > 217_000_000


def test_png_frames(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    backend = "jit" if "jit" in available_backends() else "interpreter"
    lines = run(capsys, "--frames", "5", "--backend", backend, "--out", str(tmp_path),
                "--every", "2")
    pngs = sorted(p.name for p in tmp_path.glob("*.png"))
    assert pngs == ["frame_00000.png", "frame_00002.png", "frame_00004.png"]
    from PIL import Image

    with Image.open(tmp_path / "frame_00004.png") as im:
        assert im.size == (640, 400)
        assert len(set(im.getdata())) > 16  # a picture, not a blank frame
    assert any(line.startswith("wrote 3 PNG frames") for line in lines)


def test_key_script_errors() -> None:
    assert parse_key_script("# x\n10 enter down\n11 0x20 up\n12 a down\n") == {
        10: [(13, True)], 11: [(32, False)], 12: [(ord("a"), True)]}
    with pytest.raises(PvmError, match="line 1"):
        parse_key_script("10 enter sideways\n")
    with pytest.raises(PvmError, match="unknown key"):
        parse_key_script("10 nosuchkey down\n")
