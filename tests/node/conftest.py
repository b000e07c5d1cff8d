"""Fixtures: a dev node started as a subprocess on a free port (``--port 0``; the
fixture waits for its 'listening on' line) and stopped, with everything it opened,
at the end; a web3.py client of it and the helpers the web3 tests share."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from web3 import Web3

from chain_sim.workload import Contracts

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class NodeProcess:
    proc: subprocess.Popen[str]
    host: str = ""
    port: int = 0
    lines: list[str] = field(default_factory=list)
    reader: threading.Thread | None = None

    @property
    def http(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://{self.host}:{self.port}"

    def output(self) -> str:
        return "".join(self.lines)


def start_node(*args: str) -> NodeProcess:
    """Starts ``pvm-exec node --port 0 ARGS`` and returns once it listens."""
    cmd = [sys.executable, "-c", "from executor.tools.cli import main; raise SystemExit(main())",
           "node", "--port", "0", *args]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            cwd=ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    node = NodeProcess(proc)
    ready = threading.Event()
    assert proc.stdout is not None
    stdout = proc.stdout

    def drain() -> None:      # reads every line (a full pipe would stall the node)
        for line in stdout:
            node.lines.append(line)
            m = re.match(r"listening on ws://([\d.]+):(\d+) \(http on the same port\)", line)
            if m:
                node.host, node.port = m.group(1), int(m.group(2))
                ready.set()
        ready.set()

    node.reader = threading.Thread(target=drain, daemon=True)
    node.reader.start()
    ready.wait(300)           # progress-bounded: set by the line or by the node exiting
    if not node.port:
        stop_node(node)
        raise RuntimeError("the node did not start:\n" + node.output())
    return node


def stop_node(node: NodeProcess) -> int:
    proc = node.proc
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if node.reader is not None:
        node.reader.join(60)     # the pipe is at its end: the reader finishes
    if proc.stdout is not None:
        proc.stdout.close()
    return proc.returncode


@pytest.fixture(scope="module")
def node() -> Iterator[NodeProcess]:
    n = start_node()
    try:
        yield n
    finally:
        code = stop_node(n)
        assert code == 0, n.output()


@pytest.fixture(scope="session")
def contracts() -> Contracts:
    return Contracts.build()


@pytest.fixture(scope="module")
def w3(node: NodeProcess) -> Web3:
    w3 = Web3(Web3.HTTPProvider(node.http, request_kwargs={"timeout": 120}))
    assert w3.is_connected()
    return w3


def send(w3: Web3, key: bytes, tx: dict[str, Any]) -> Any:
    """Signs ``tx`` (EIP-1559; the next nonce and an estimated gas unless given) with
    ``key``, sends it raw and returns its receipt."""
    from eth_account import Account as EthAccount

    acct = EthAccount.from_key(key)
    tx = {"chainId": w3.eth.chain_id, "nonce": w3.eth.get_transaction_count(acct.address),
          "type": 2, "maxPriorityFeePerGas": 0,
          "maxFeePerGas": 2 * w3.eth.get_block("latest")["baseFeePerGas"], **tx}
    if "gas" not in tx:
        tx["gas"] = w3.eth.estimate_gas({k: v for k, v in tx.items()
                                         if k in ("to", "data", "value")}
                                        | {"from": acct.address})
    signed = acct.sign_transaction(tx)
    h = w3.eth.send_raw_transaction(signed.raw_transaction)
    return w3.eth.wait_for_transaction_receipt(h, timeout=120, poll_latency=0.05)


def rpc(w3: Web3, method: str, *params: Any) -> Any:
    """The result of ``method`` (which must not fail)."""
    answer = w3.provider.make_request(method, list(params))  # type: ignore[arg-type]
    assert "error" not in answer, answer
    return answer["result"]


def rpc_error(w3: Web3, method: str, *params: Any) -> Any:
    """The error object ``method`` answers (it must fail)."""
    answer = w3.provider.make_request(method, list(params))  # type: ignore[arg-type]
    assert "error" in answer, answer
    return answer["error"]


def abi(name: str, contract: str | None = None) -> Any:
    """The ABI of ``contract`` (default: ``name``) of ``contracts/<name>.sol``."""
    import json

    from contracts.build import compiled

    out = compiled(name)[contract or name].abi
    return json.loads(out) if isinstance(out, str) else out
