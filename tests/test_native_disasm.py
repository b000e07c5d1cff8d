"""``pvm-exec disasm --native``: each guest instruction with the JIT's x86-64."""

from __future__ import annotations

import re
import shutil

import pytest

from executor.backends import available_backends
from executor.blob import ProgramBlob
from executor.tools.cli import main
from tests.conftest import BLOBS

pytestmark = [pytest.mark.skipif("jit" not in available_backends(), reason="no JIT here"),
              pytest.mark.skipif(shutil.which("objdump") is None, reason="no objdump")]


@pytest.mark.parametrize("gas", ["sync", "none"])
def test_every_instruction_is_shown_with_its_machine_code(
        gas: str, capsys: pytest.CaptureFixture[str]) -> None:
    path = BLOBS / "example-hello-world.polkavm"
    assert main(["disasm", "--native", "--gas-metering", gas, str(path)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    heads = [i for i, line in enumerate(lines) if re.match(r"^\s+\d+: ", line)]
    pcs = [int(lines[i].split(":")[0]) for i in heads]
    blob = ProgramBlob.load(path)
    assert pcs == [insn.pc for insn in blob.instructions(listing=False)]
    for i in heads:  # each is followed by at least one x86 line (offset, text)
        assert re.match(r"^\s+[0-9a-f]+  \S", lines[i + 1]), lines[i:i + 2]
    assert "gs:[" in out                 # guest memory through the GS segment
    assert ("sub QWORD PTR [rsp+0x8]" in out) == (gas == "sync")  # the gas charge
    assert "; block, gas" in out if gas == "sync" else "; block" in out
