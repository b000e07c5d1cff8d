"""The JSON-RPC layer: bad input never stops the node or changes state; batches,
notifications, WebSocket, concurrent clients."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from typing import Any

import websocket
from eth_account import Account as EthAccount

from chain_sim.node.accounts import eth_accounts
from chain_sim.node.jsonrpc import MAX_BATCH, MAX_REQUEST_BYTES
from tests.node.conftest import NodeProcess


def post(node: NodeProcess, body: bytes | str) -> tuple[int, Any]:
    data = body.encode() if isinstance(body, str) else body
    req = urllib.request.Request(node.http, data=data,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            raw = r.read()
            return r.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        return exc.code, json.loads(raw) if raw else None


def call(node: NodeProcess, method: str, *params: Any) -> Any:
    _, answer = post(node, json.dumps({"jsonrpc": "2.0", "id": 1, "method": method,
                                       "params": list(params)}))
    assert "error" not in answer, answer
    return answer["result"]


def test_bad_input_gets_errors_and_changes_nothing(node: NodeProcess) -> None:
    head = call(node, "eth_blockNumber")
    root = call(node, "eth_getBlockByNumber", "latest", False)["stateRoot"]
    cases: list[tuple[str, int, str]] = [
        ("{not json", -32700, "parse error"),
        ('"a string"', -32600, "not an object"),
        ('{"jsonrpc":"2.0","id":1}', -32600, "method"),
        ('{"jsonrpc":"1.0","id":1,"method":"eth_chainId"}', -32600, "2.0"),
        ('{"jsonrpc":"2.0","id":1,"method":"no_such"}', -32601, "no_such"),
        ('{"jsonrpc":"2.0","id":1,"method":"eth_getBalance","params":[]}', -32602, "address"),
        ('{"jsonrpc":"2.0","id":1,"method":"eth_getBalance","params":["0xzz"]}', -32602,
         "address"),
        ('{"jsonrpc":"2.0","id":1,"method":"eth_getBalance","params":7}', -32602, "params"),
        ('{"jsonrpc":"2.0","id":1,"method":"eth_sendRawTransaction","params":["0x1234"]}',
         -32000, "invalid transaction"),
        ('{"jsonrpc":"2.0","id":1,"method":"eth_call","params":[{"to":"0x12"}]}', -32602,
         "transaction.to"),
        ("[]", -32600, "empty batch"),
    ]
    for body, code, text in cases:
        _, answer = post(node, body)
        assert answer["error"]["code"] == code, (body, answer)
        assert text in answer["error"]["message"], (body, answer)
    status, answer = post(node, json.dumps([{"jsonrpc": "2.0", "id": i, "method": "eth_chainId"}
                                             for i in range(MAX_BATCH + 1)]))
    assert answer["error"]["code"] == -32600 and "batch too large" in answer["error"]["message"]
    status, answer = post(node, b" " * (MAX_REQUEST_BYTES + 1))
    assert status == 413 and answer["error"]["code"] == -32600
    assert call(node, "eth_blockNumber") == head
    assert call(node, "eth_getBlockByNumber", "latest", False)["stateRoot"] == root


def test_batches_and_notifications(node: NodeProcess) -> None:
    status, answer = post(node, json.dumps([
        {"jsonrpc": "2.0", "id": "a", "method": "eth_chainId"},
        {"jsonrpc": "2.0", "method": "eth_chainId"},                  # notification
        {"jsonrpc": "2.0", "id": 2, "method": "nope"},
        5,
    ]))
    assert [x.get("id") for x in answer] == ["a", 2, None]
    assert answer[0]["result"] == hex(420420420)
    assert answer[1]["error"]["code"] == -32601 and answer[2]["error"]["code"] == -32600
    status, answer = post(node, '{"jsonrpc":"2.0","method":"eth_chainId"}')
    assert status == 204 and answer is None


def test_websocket_and_disconnects(node: NodeProcess) -> None:
    ws = websocket.create_connection(node.ws, timeout=120)
    try:
        ws.send('{"jsonrpc":"2.0","id":7,"method":"eth_chainId"}')
        assert json.loads(ws.recv()) == {"jsonrpc": "2.0", "id": 7, "result": hex(420420420)}
        ws.send("{oops")
        assert json.loads(ws.recv())["error"]["code"] == -32700
    finally:
        ws.close()
    for _ in range(3):      # clients that vanish mid-request do not hurt the node
        ws = websocket.create_connection(node.ws, timeout=120)
        ws.send('{"jsonrpc":"2.0","id":1,"method":"eth_getBlockByNumber",'
                '"params":["latest",true]}')
        ws.close()
    assert call(node, "eth_chainId") == hex(420420420)


def test_concurrent_clients_both_land(node: NodeProcess) -> None:
    dev = eth_accounts(4)[2:]
    chain_id = 420420420
    start = [int(call(node, "eth_getTransactionCount", a.checksum, "latest"), 16) for a in dev]
    k = 5
    errors: list[str] = []
    hashes: list[str] = []

    def client(i: int) -> None:
        a = dev[i]
        for n in range(k):
            tx = {"type": 2, "chainId": chain_id, "nonce": start[i] + n,
                  "to": dev[1 - i].checksum, "value": 1000 + n, "gas": 1_000_000,
                  "maxFeePerGas": 10, "maxPriorityFeePerGas": 0}
            raw = EthAccount.sign_transaction(tx, a.private_key).raw_transaction
            try:
                hashes.append(call(node, "eth_sendRawTransaction", "0x" + bytes(raw).hex()))
            except AssertionError as exc:
                errors.append(str(exc))

    threads = [threading.Thread(target=client, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(hashes) == 2 * k
    blocks = set()
    for h in hashes:
        r = call(node, "eth_getTransactionReceipt", h)
        assert r["status"] == "0x1"
        blocks.add(r["blockNumber"])
    assert len(blocks) == 2 * k             # automine: a block each, in one order
    for i, a in enumerate(dev):
        assert int(call(node, "eth_getTransactionCount", a.checksum), 16) == start[i] + k
