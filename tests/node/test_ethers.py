"""ethers v6 (Node.js) against the dev node: tests/node/js/ethers_test.mjs.  Skipped,
with the reason, where node or the npm install of tests/node/js (``make test`` does
it) is missing."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from contracts.build import compiled
from tests.node.conftest import NodeProcess

JS = Path(__file__).parent / "js"


def test_ethers(node: NodeProcess, tmp_path: Path) -> None:
    node_bin = shutil.which("node")
    if node_bin is None:
        pytest.skip("node (Node.js) is not installed")
    if not (JS / "node_modules" / "ethers").is_dir():
        pytest.skip("ethers is not installed (make test runs npm install in tests/node/js)")
    token = compiled("Token")["Token"]
    blob, abi = tmp_path / "Token.polkavm", tmp_path / "Token.abi"
    blob.write_bytes(token.blob)
    abi.write_text(token.abi if isinstance(token.abi, str) else json.dumps(token.abi))
    r = subprocess.run([node_bin, str(JS / "ethers_test.mjs"), node.http, node.ws, str(blob),
                        str(abi)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    result = json.loads(r.stdout.strip().splitlines()[-1])
    assert result["ok"] is True and result["token"].startswith("0x")
