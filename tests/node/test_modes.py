"""Node modes: --db (the chain survives a restart and verifies), --block-time (a pool
mined on an interval), subscriptions of clients that go away."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import websocket

from chain_sim.node.accounts import eth_accounts
from tests.node.conftest import NodeProcess, start_node, stop_node
from tests.node.test_rpc import call


def _transfer(node: NodeProcess, to: str, value: int) -> str:
    a = eth_accounts(1)[0]
    return str(call(node, "eth_sendTransaction", {"from": a.checksum, "to": to,
                                                   "value": hex(value)}))


def _wait_receipt(node: NodeProcess, tx: str) -> Any:
    deadline = time.monotonic() + 120           # a safety net; normally a block time
    while time.monotonic() < deadline:
        r = call(node, "eth_getTransactionReceipt", tx)
        if r is not None:
            return r
        time.sleep(0.05)
    raise AssertionError("never mined")


def test_db_survives_restart_and_verifies(tmp_path: Path) -> None:
    db = tmp_path / "dev.db"
    to = "0x" + "42" * 20
    node = start_node("--db", str(db), "--workers", "0")
    try:
        tx = _transfer(node, to, 777)
        receipt = call(node, "eth_getTransactionReceipt", tx)
        assert receipt["status"] == "0x1"
        head = call(node, "eth_blockNumber")
    finally:
        assert stop_node(node) == 0
    node = start_node("--db", str(db), "--workers", "0")
    try:
        assert call(node, "eth_blockNumber") == head
        assert int(call(node, "eth_getBalance", to, "latest"), 16) == 777
        assert call(node, "eth_getTransactionReceipt", tx)["blockNumber"] == receipt[
            "blockNumber"]
    finally:
        assert stop_node(node) == 0
    r = subprocess.run([sys.executable, "-c", "from executor.tools.cli import main; "
                        "raise SystemExit(main())", "chain", "verify", "--db", str(db),
                        "--backend", "interpreter"], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr


def test_block_time_pool() -> None:
    node = start_node("--block-time", "0.3", "--workers", "0")
    try:
        to = "0x" + "43" * 20
        a = eth_accounts(1)[0]
        n0 = int(call(node, "eth_getTransactionCount", a.checksum, "latest"), 16)
        txs = [_transfer(node, to, 1), _transfer(node, to, 2)]   # pending nonces counted
        # pending counts the pool; mined or not, both are the account's
        assert int(call(node, "eth_getTransactionCount", a.checksum, "pending"), 16) == n0 + 2
        receipts = [_wait_receipt(node, t) for t in txs]
        assert all(r["status"] == "0x1" for r in receipts)
        assert int(call(node, "eth_getBalance", to, "latest"), 16) == 3
    finally:
        assert stop_node(node) == 0


def test_subscriber_that_disconnects(node: NodeProcess) -> None:
    for _ in range(3):
        ws = websocket.create_connection(node.ws, timeout=120)
        ws.send(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "chain_subscribeNewHeads",
                            "params": []}))
        answer = json.loads(ws.recv())
        assert isinstance(answer["result"], str)
        first = json.loads(ws.recv())
        assert first["method"] == "chain_newHead"
        ws.close()                                 # gone mid-subscription
        call(node, "evm_mine")                     # a block to notify nobody about
    # HTTP has no subscriptions
    _, = [call(node, "eth_chainId")]
    from tests.node.test_rpc import post
    _, answer = post(node, '{"jsonrpc":"2.0","id":1,"method":"chain_subscribeNewHeads"}')
    assert answer["error"]["code"] == -32601 and "WebSocket" in answer["error"]["message"]
    assert call(node, "eth_chainId") == hex(420420420)
