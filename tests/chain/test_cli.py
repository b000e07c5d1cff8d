"""``pvm-exec chain``."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from executor.tools.cli import main


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_run_status_verify(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "c.db"
    args = ["chain", "run", "--db", str(db), "--blocks", "4", "--seed", "3", "--users", "4",
            "--txs-per-block", "6", "--backend", "interpreter"]
    code, out, _ = _run(capsys, *args)
    assert code == 0
    lines = out.strip().splitlines()
    assert re.fullmatch(r"state_root 0x[0-9a-f]{64}", lines[-1])
    assert sum(1 for ln in lines if ln.startswith("block ")) == 4
    assert any("match the plain-Python model" in ln for ln in lines)
    root = lines[-1]

    code, out, _ = _run(capsys, "chain", "status", "--db", str(db), "--json")
    info = json.loads(out)
    assert code == 0 and info["head"] == 4 and "state_root " + info["state_root"] == root

    code, out, _ = _run(capsys, "chain", "verify", "--db", str(db), "--backend", "jit",
                        "--sandbox", "none")
    assert code == 0 and out.strip().splitlines()[-1] == root
    code, out, _ = _run(capsys, "chain", "verify", "--db", str(db), "--replay",
                        "--backend", "interpreter")
    assert code == 0 and out.strip().splitlines()[-1] == root

    # the same seed on a new chain: the same root; resuming continues the chain
    db2 = tmp_path / "d.db"
    code, out, _ = _run(capsys, *[str(db2) if a == str(db) else a for a in args])
    assert code == 0 and out.strip().splitlines()[-1] == root
    code, out, _ = _run(capsys, *args[:4], "--blocks", "1", *args[6:])
    assert code == 0 and out.strip().splitlines()[-1] != root


def test_init_and_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "c.db"
    code, out, _ = _run(capsys, "chain", "init", "--db", str(db), "--users", "2")
    assert code == 0 and out.strip().splitlines()[-1].startswith("state_root 0x")
    code, _, err = _run(capsys, "chain", "init", "--db", str(db))
    assert code == 2 and "exists" in err
    code, _, _ = _run(capsys, "chain", "init", "--db", str(db), "--force", "--users", "2")
    assert code == 0
    code, _, err = _run(capsys, "chain", "status", "--db", str(tmp_path / "nope.db"))
    assert code == 1 and "no chain database" in err
    code, _, err = _run(capsys, "chain", "verify", "--db", str(db), "--from", "3")
    assert code == 1 and "cannot verify" in err
