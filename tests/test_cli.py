"""`pvm-exec info` and `disasm` on every real blob, every vector program and
every spectool source; the JSON keys of `info --json`; facts checked against
the blobs' documentation (blobs/README.md, c-guests/README.md, IMPORTS.md)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from executor.tools.cli import main
from tests.conftest import BLOBS, JAM_VECTORS, SAMPLES, SPECTOOL

REAL = sorted(BLOBS.glob("*.polkavm")) + sorted((BLOBS / "c-guests").glob("*.polkavm")) + sorted(
    SAMPLES.glob("*.polkavm"))
VECTORS = sorted(JAM_VECTORS.glob("*.json"))
SOURCES = sorted(SPECTOOL.glob("*.txt"))
KEYS = {"isa", "is_64_bit", "ro_data_size", "rw_data_size", "stack_size", "code_size",
        "instructions", "basic_blocks", "jump_table_entries", "imports", "exports"}


def info(path: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    assert main(["info", str(path), "--json"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1
    data = json.loads(out[0])
    assert KEYS <= set(data)
    return dict(data)


BIG = ("doom.polkavm", "quake.polkavm")  # seconds each: marked slow


@pytest.mark.parametrize("path", [pytest.param(p, marks=pytest.mark.slow, id=p.name)
                                  if p.name in BIG else pytest.param(p, id=p.name)
                                  for p in REAL + VECTORS[:40] + SOURCES[:40]])
def test_info_and_disasm(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = info(path, capsys)
    assert data["isa"] in ("revive_v1", "latest32", "latest64", "jam_v1")
    assert main(["disasm", str(path)]) == 0
    text = capsys.readouterr().out
    lines = [ln for ln in text.splitlines()
             if ln.strip() and not ln.lstrip().startswith(("%", "//"))]
    assert lines
    if data["exports"]:
        assert all(f"@{e['name']}" in text for e in data["exports"])  # type: ignore[union-attr, index]


@pytest.mark.slow
def test_every_vector_program_disassembles(capsys: pytest.CaptureFixture[str]) -> None:
    for path in VECTORS + SOURCES:
        assert main(["disasm", str(path)]) == 0, path
        capsys.readouterr()


def test_doom_facts(capsys: pytest.CaptureFixture[str]) -> None:
    d = info(BLOBS / "doom.polkavm", capsys)
    assert d["isa"] == "latest32" and d["is_64_bit"] is False
    assert (d["ro_data_size"], d["rw_data_size"], d["stack_size"]) == (387468, 17091900, 8192)
    assert sorted(d["imports"]) == sorted(  # type: ignore[arg-type]
        ["ext_output_video", "ext_output_audio", "ext_rom_size", "ext_rom_read", "ext_stdout"])
    assert {e["name"] for e in d["exports"]} == {  # type: ignore[union-attr, index]
        "ext_initialize", "ext_tick", "ext_on_keychange"}


def test_hello_world_facts(capsys: pytest.CaptureFixture[str]) -> None:
    d = info(BLOBS / "example-hello-world.polkavm", capsys)
    # blob-format.md section 4: 10 instructions, one block ending in `ret`
    assert d["instructions"] == 10 and d["basic_blocks"] == 1
    assert d["imports"] == ["get_third_number"]
    assert d["exports"] == [{"name": "add_numbers", "pc": 0}]
    assert (d["code_size"], d["jump_table_entries"], d["stack_size"]) == (25, 0, 8192)


def test_bench_facts(capsys: pytest.CaptureFixture[str]) -> None:
    d = info(BLOBS / "c-guests" / "bench.polkavm", capsys)
    assert d["isa"] == "latest64" and d["code_size"] == 660
    assert (d["ro_data_size"], d["rw_data_size"]) == (352, 1000001)
    assert d["exports"] == [{"name": "prime_sieve", "pc": 0}, {"name": "sha256_loop", "pc": 148},
                            {"name": "noop", "pc": 655}]


def test_counter_facts(capsys: pytest.CaptureFixture[str]) -> None:
    d = info(SAMPLES / "Counter_sol_Counter.polkavm", capsys)
    assert d["isa"] == "revive_v1"
    assert d["exports"] == [{"name": "call", "pc": 2609}, {"name": "deploy", "pc": 2616}]
    assert d["jump_table_entries"] == 25 and d["code_size"] == 2668
    assert d["imports"] == ["call_data_copy", "call_data_load", "call_data_size", "deposit_event",
                            "get_storage", "seal_return", "set_immutable_data", "set_storage",
                            "value_transferred"]


def test_bad_blob_is_a_clean_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.polkavm"
    bad.write_bytes(b"PVM\0\x07" + bytes(8))
    assert main(["info", str(bad)]) == 2
    assert "unsupported version: 7" in capsys.readouterr().err
    assert main(["info", str(tmp_path / "missing.polkavm")]) == 2
