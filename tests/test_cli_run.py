"""``pvm-exec run`` (executor.tools.cli_run)."""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import pytest

from executor.backends import available_backends
from executor.errors import PvmError
from executor.tools.cli_run import add_run_parser, cmd_run, main
from tests.conftest import BLOBS
from tests.guests import trampolines

HELLO = str(BLOBS / "example-hello-world.polkavm")
BENCH = str(BLOBS / "c-guests" / "bench.polkavm")


def run(*argv: str) -> tuple[int, str, str]:
    ap = argparse.ArgumentParser()
    add_run_parser(ap.add_subparsers(dest="command"))
    args = ap.parse_args(["run", *argv])
    out, err = io.StringIO(), io.StringIO()
    return cmd_run(args, out, err), out.getvalue(), err.getvalue()


@pytest.mark.parametrize("backend", available_backends())
def test_run_hello_world(backend: str) -> None:
    rc, out, _ = run(HELLO, "--export", "add_numbers", "1", "10", "--host",
                     "get_third_number=100", "--backend", backend)
    assert rc == 0
    assert out.splitlines() == ["result 111", "gas used 10, left 4611686018427387894"]


def test_run_arguments_before_export_and_hex() -> None:
    rc, out, _ = run(BENCH, "0x1", "--export", "sha256_loop", "--gas", "5000")
    assert (rc, out.splitlines()) == (0, ["result 4237927135", "gas used 4069, left 931"])
    with pytest.raises(PvmError, match="either"):
        run(BENCH, "1", "--export", "sha256_loop", "1")


def test_run_out_of_gas_and_trap() -> None:
    rc, out, _ = run(BENCH, "--export", "sha256_loop", "1000", "--gas", "100")
    assert rc == 1 and out.startswith("out of gas")
    rc, out, _ = run(HELLO, "--export", "add_numbers", "1", "2")
    assert rc == 1 and "get_third_number" in out and out.startswith("trap")


def test_run_without_gas_and_trace() -> None:
    rc, out, err = run(HELLO, "-e", "add_numbers", "1", "2", "--host", "get_third_number=3",
                       "--no-gas", "--trace")
    assert (rc, out) == (0, "result 6\n")
    lines = err.splitlines()
    assert len(lines) == 10 and lines[0].split(":")[0].strip() == "0"
    assert "ecalli 0" in lines[4]


def test_debug_host_functions(tmp_path: Path) -> None:
    imports = ("print", "ext_stdout", "print_int", "print_i64")
    blob = tmp_path / "t.polkavm"
    blob.write_bytes(trampolines("latest64", imports).to_bytes())
    # the RW region starts empty, so print bytes of the read-only data (0x10000: 01 02 ..)
    rc, out, _ = run(str(blob), "-e", "h2", "12345")
    assert (rc, out.splitlines()[0]) == (0, "12345")
    rc, out, _ = run(str(blob), "-e", "h3", str((1 << 64) - 7))
    assert out.splitlines()[0] == "-7"
    rc, out, _ = run(str(blob), "-e", "h1", "0x10000", "3")
    assert out.splitlines()[0] == "\x01\x02\x03result 3"
    rc, out, _ = run(str(blob), "-e", "h0", "0x10000", "2")
    assert out.splitlines()[0] == "\x01\x02result 65536"
    with pytest.raises(PvmError, match="already defined"):
        run(str(blob), "-e", "h0", "--host", "print=1")


def test_main_reports_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", BENCH, "-e", "nope"]) == 2
    assert "no export named 'nope'" in capsys.readouterr().err
    assert main(["run", BENCH, "-e", "noop"]) == 0
    assert capsys.readouterr().out.startswith("result 42")
