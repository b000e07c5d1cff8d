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
    price = int(call(node, "eth_gasPrice"), 16)
    k = 5
    errors: list[str] = []
    hashes: list[str] = []

    def client(i: int) -> None:
        a = dev[i]
        for n in range(k):
            tx = {"type": 2, "chainId": chain_id, "nonce": start[i] + n,
                  "to": dev[1 - i].checksum, "value": 1000 + n, "gas": 1_000_000,
                  "maxFeePerGas": price, "maxPriorityFeePerGas": 0}
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


def test_binds_to_localhost_by_default(node: NodeProcess) -> None:
    """Without --host the node listens on 127.0.0.1 only (the fixture passes none)."""
    import argparse

    from chain_sim.node.cli import add_node_parser

    assert node.host == "127.0.0.1"
    parser = argparse.ArgumentParser()
    add_node_parser(parser.add_subparsers())
    assert parser.parse_args(["node"]).host == "127.0.0.1"


def test_subscriptions_per_connection_are_limited(node: NodeProcess) -> None:
    from chain_sim.node.jsonrpc import MAX_SUBSCRIPTIONS

    ws = websocket.create_connection(node.ws, timeout=120)
    try:
        def batch(first: int, n: int) -> list[Any]:
            ws.send(json.dumps([{"jsonrpc": "2.0", "id": first + i,
                                 "method": "chain_subscribeNewHeads", "params": []}
                                for i in range(n)]))
            while True:        # skip the notifications (each subscription's first head)
                msg = json.loads(ws.recv())
                if isinstance(msg, list):
                    return msg

        answers = batch(0, 1000) + batch(1000, MAX_SUBSCRIPTIONS + 1 - 1000)
        ok = [a for a in answers if "result" in a]
        refused = [a for a in answers if "error" in a]
        assert len(ok) == MAX_SUBSCRIPTIONS and len(refused) == 1
        assert "too many subscriptions" in refused[0]["error"]["message"]
        # one ended: room for one more
        ws.send(json.dumps({"jsonrpc": "2.0", "id": "u", "method": "chain_unsubscribeNewHeads",
                            "params": [ok[0]["result"]]}))
        while True:
            msg = json.loads(ws.recv())
            if msg.get("id") == "u":
                assert msg["result"] is True
                break
        assert "result" in batch(5000, 1)[0]
    finally:
        ws.close()
    # another connection is not affected
    assert call(node, "eth_chainId") == hex(420420420)


def test_websocket_requests_in_flight_are_bounded() -> None:
    """The server reads a connection's next message only while fewer than
    MAX_IN_FLIGHT of its requests are being answered (in-process, a dispatcher whose
    answers wait)."""
    import trio

    from chain_sim.node.jsonrpc import MAX_IN_FLIGHT, Dispatcher, Session
    from chain_sim.node.server import RpcServer

    total = MAX_IN_FLIGHT * 3
    seen = {"running": 0, "peak": 0, "read": 0, "answered": 0}

    class Slow(Dispatcher):
        async def handle(self, text: str | bytes, session: Session) -> str | None:
            seen["running"] += 1
            seen["peak"] = max(seen["peak"], seen["running"])
            await release.wait()
            seen["running"] -= 1
            return "{}"

    async def main() -> None:
        nonlocal release
        release = trio.Event()

        async def receive() -> str | bytes | None:
            if seen["read"] < total:
                seen["read"] += 1
                return "{}"
            await trio.sleep_forever()
            raise AssertionError

        async def send(text: str) -> None:
            seen["answered"] += 1

        async with trio.open_nursery() as nursery:
            nursery.start_soon(RpcServer(Slow()).serve_messages, receive, send)
            await trio.testing.wait_all_tasks_blocked()
            # 64 being answered, the 65th read and waiting for room, no 66th read
            assert seen["running"] == MAX_IN_FLIGHT and seen["read"] == MAX_IN_FLIGHT + 1
            release.set()
            while seen["answered"] < total:
                await trio.sleep(0.01)
            nursery.cancel_scope.cancel()

    release: Any = None
    import trio.testing  # noqa: F401 - wait_all_tasks_blocked

    trio.run(main)
    assert seen["peak"] == MAX_IN_FLIGHT and seen["answered"] == total


def test_websocket_quick_methods_are_answered_in_the_reading_task() -> None:
    """A call of one of the dispatcher's quick methods, while it is ready, is answered
    in the connection's reading task; any other call, or a quick one while the
    dispatcher is not ready, in a task of its own, so a slow call does not hold up a
    quick one sent after it (in-process)."""
    import trio

    from chain_sim.node.jsonrpc import Dispatcher, Session
    from chain_sim.node.server import RpcServer

    ran_in: dict[str, list[object]] = {"quick": [], "slow": []}
    answered: list[int] = []
    state = {"ready": True}

    async def quick(s: Session, p: Any) -> Any:
        ran_in["quick"].append(trio.lowlevel.current_task())
        return "fast"

    async def slow(s: Session, p: Any) -> Any:
        ran_in["slow"].append(trio.lowlevel.current_task())
        await release.wait()
        return "slow"

    d = Dispatcher()
    d.add("quick", quick)
    d.add("slow", slow)
    d.quick = frozenset({"quick"})
    d.ready = lambda: state["ready"]
    messages = [{"jsonrpc": "2.0", "id": 1, "method": "slow"},
                {"jsonrpc": "2.0", "id": 2, "method": "quick"},
                {"jsonrpc": "2.0", "id": 3, "method": "quick"},
                "not json", [{"jsonrpc": "2.0", "id": 5, "method": "quick"}]]

    async def main() -> None:
        nonlocal release
        release = trio.Event()
        reader: list[object] = []

        async def receive() -> str | bytes | None:
            reader.append(trio.lowlevel.current_task())
            if messages:
                m = messages.pop(0)
                state["ready"] = m != messages_3          # the 3rd: not ready
                return m if isinstance(m, str) else json.dumps(m)
            await trio.sleep_forever()
            raise AssertionError

        async def send(text: str) -> None:
            answer = json.loads(text)
            answered.append(answer[0]["id"] if isinstance(answer, list)
                            else answer["id"] if answer["id"] is not None else 4)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(RpcServer(d).serve_messages, receive, send)
            await trio.testing.wait_all_tasks_blocked()
            # 2 inline, before the others; 1 (slow) still running
            assert answered[0] == 2 and sorted(answered) == [2, 3, 4, 5]
            release.set()
            while len(answered) < 5:
                await trio.sleep(0.01)
            nursery.cancel_scope.cancel()
        task = reader[0]
        assert ran_in["quick"][0] is task                       # id 2: inline
        assert ran_in["quick"][1] is not task                   # id 3: not ready
        assert ran_in["quick"][2] is not task                   # id 5: a batch
        assert ran_in["slow"][0] is not task
        assert answered[-1] == 1

    release: Any = None
    messages_3 = messages[2]
    import trio.testing  # noqa: F401 - wait_all_tasks_blocked

    trio.run(main)


def test_oversized_websocket_message(node: NodeProcess) -> None:
    """A WebSocket message over MAX_REQUEST_BYTES is not read (the connection is
    closed, no answer); the node serves the next client."""
    ws = websocket.create_connection(node.ws, timeout=120)
    try:
        ws.send(" " * (MAX_REQUEST_BYTES + 1))
        try:
            got = ws.recv()        # '' once the server closes; a read answer would be JSON
        except (websocket.WebSocketException, OSError):
            got = ""
        assert got == ""
    finally:
        ws.close()
    assert call(node, "eth_chainId") == hex(420420420)


def test_oversized_http_head(node: NodeProcess) -> None:
    """An HTTP request head of 200 KiB is refused (431: h11 refuses a head still
    incomplete with more than 64 KiB buffered; the server reads 64 KiB at a time, so
    the bound is about 128 KiB); the node goes on."""
    import http.client

    body = b'{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}'

    def post_with_filler(kib: int) -> int:
        conn = http.client.HTTPConnection(node.host, node.port, timeout=120)
        try:
            try:
                conn.putrequest("POST", "/")
                conn.putheader("X-Filler", "a" * (kib * 1024))
                conn.putheader("Content-Type", "application/json")
                conn.putheader("Content-Length", str(len(body)))
                conn.endheaders(body)
                return conn.getresponse().status
            except (http.client.HTTPException, OSError):
                return 0          # closed without an answer (perhaps while we sent)
        finally:
            conn.close()

    assert post_with_filler(200) in (0, 431)
    assert post_with_filler(32) == 200
    assert call(node, "eth_chainId") == hex(420420420)


def test_work_per_request_is_bounded(monkeypatch: Any) -> None:
    """The caps on what one request can ask for, in-process through the node's
    dispatcher (the chain pretends to be 20,000 blocks long for eth_getLogs: the range
    is refused before any block is read)."""
    import trio

    from chain_sim.chain import Chain
    from chain_sim.node.app import build_dispatcher, dev_genesis
    from chain_sim.node.jsonrpc import Session
    from chain_sim.node.service import Node

    chain = Chain.create(dev_genesis(), None, backend="interpreter", sandbox=None)
    dispatcher = build_dispatcher(Node(chain, log=lambda line: None))

    async def ask(method: str, *params: Any) -> Any:
        text = await dispatcher.handle(json.dumps({"jsonrpc": "2.0", "id": 1,
                                                   "method": method,
                                                   "params": list(params)}), Session(None))
        assert text is not None
        return json.loads(text)

    async def main() -> None:
        r = await ask("hardhat_mine", hex(10_001))
        assert r["error"]["code"] == -32602 and "blocks" in r["error"]["message"]
        r = await ask("state_getKeysPaged", "0x", 1001)
        assert r["error"]["code"] == -32602 and "count" in r["error"]["message"]
        with monkeypatch.context() as m:
            m.setattr(Chain, "head_number", property(lambda self: 20_000))
            r = await ask("eth_getLogs", {"fromBlock": "0x0", "toBlock": hex(10_001)})
            assert r["error"]["code"] == -32000 and "range too large" in r["error"]["message"]
        assert chain.head_number == 0

    try:
        trio.run(main)
    finally:
        chain.close()


def _http_exchange(node: NodeProcess, raw: bytes,
                   answers: int) -> list[tuple[str, dict[str, str], bytes]]:
    """Sends ``raw`` on one connection and reads ``answers`` responses (status line,
    headers, body by Content-Length)."""
    import socket

    out = []
    with socket.create_connection((node.host, node.port), timeout=120) as s:
        s.sendall(raw)
        buf = b""
        while len(out) < answers:
            while b"\r\n\r\n" not in buf:
                chunk = s.recv(65536)
                assert chunk, (out, buf)
                buf += chunk
            head, buf = buf.split(b"\r\n\r\n", 1)
            status, *lines = head.decode().split("\r\n")
            headers = {k.lower(): v.strip() for k, v in (x.split(":", 1) for x in lines)}
            n = int(headers.get("content-length", "0"))
            while len(buf) < n:
                chunk = s.recv(65536)
                assert chunk
                buf += chunk
            out.append((status, headers, buf[:n]))
            buf = buf[n:]
    return out


def test_http_details(node: NodeProcess) -> None:
    """What the server's own HTTP/1.1 path promises: CORS preflight, 405 for other
    methods, keep-alive with pipelined requests answered in order, a chunked body,
    'Expect: 100-continue'."""
    req = b'{"jsonrpc":"2.0","id":%d,"method":"eth_chainId"}'
    status, headers, body = _http_exchange(
        node, b"OPTIONS / HTTP/1.1\r\nHost: x\r\nOrigin: http://a\r\n\r\n", 1)[0]
    assert status.startswith("HTTP/1.1 204") and headers["access-control-allow-origin"] == "*"
    status, _, body = _http_exchange(node, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", 1)[0]
    assert status.startswith("HTTP/1.1 405") and b"POST" in body
    pipelined = b"".join(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         b"Content-Length: %d\r\n\r\n%s" % (len(req % i), req % i)
                         for i in range(3))
    answers = _http_exchange(node, pipelined, 3)
    assert [json.loads(b)["id"] for _, _, b in answers] == [0, 1, 2]
    assert all(s.startswith("HTTP/1.1 200") for s, _, _ in answers)
    assert answers[0][1]["content-type"] == "application/json"
    body = req % 9
    chunked = (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
               + b"%x\r\n%s\r\n" % (10, body[:10]) + b"%x\r\n%s\r\n" % (len(body) - 10, body[10:])
               + b"0\r\n\r\n")
    status, _, answer = _http_exchange(node, chunked, 1)[0]
    assert json.loads(answer) == {"jsonrpc": "2.0", "id": 9, "result": hex(420420420)}
    import socket

    with socket.create_connection((node.host, node.port), timeout=120) as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                     b"Content-Length: %d\r\n\r\n" % len(body))
        buf = b""
        while b"\r\n\r\n" not in buf:      # the 100 comes before the body is sent
            buf += sock.recv(65536)
        assert buf.startswith(b"HTTP/1.1 100")
        sock.sendall(body)
        buf = buf.split(b"\r\n\r\n", 1)[1]
        while not buf.endswith(b"}"):
            buf += sock.recv(65536)
        assert buf.startswith(b"HTTP/1.1 200") and b'"id": 9' in buf


def test_websocket_details(node: NodeProcess) -> None:
    """Pings are answered, a message in fragments is answered once whole, a binary
    message is answered like a text one, a close is answered."""
    ws = websocket.create_connection(node.ws, timeout=120)
    try:
        ws.ping(b"hi")
        frame = ws.recv_data_frame(control_frame=True)[1]
        assert frame.opcode == websocket.ABNF.OPCODE_PONG and frame.data == b"hi"
        msg = b'{"jsonrpc":"2.0","id":3,"method":"eth_chainId"}'
        ws.send_frame(websocket.ABNF.create_frame(msg[:7], websocket.ABNF.OPCODE_TEXT, fin=0))
        ws.send_frame(websocket.ABNF.create_frame(msg[7:20], websocket.ABNF.OPCODE_CONT,
                                                  fin=0))
        ws.send_frame(websocket.ABNF.create_frame(msg[20:], websocket.ABNF.OPCODE_CONT, fin=1))
        assert json.loads(ws.recv())["id"] == 3
        ws.send_binary(msg.replace(b"3", b"4"))
        assert json.loads(ws.recv())["id"] == 4
        ws.send_close()
        frame = ws.recv_data_frame(control_frame=True)[1]
        assert frame.opcode == websocket.ABNF.OPCODE_CLOSE
    finally:
        ws.close()
    ws = websocket.create_connection(node.ws, timeout=120)
    try:        # a text message that is not UTF-8: closed with 1007, nothing answered
        ws.send_frame(websocket.ABNF.create_frame(b"\xff\xfe", websocket.ABNF.OPCODE_TEXT))
        frame = ws.recv_data_frame(control_frame=True)[1]
        assert frame.opcode == websocket.ABNF.OPCODE_CLOSE
        assert int.from_bytes(frame.data[:2], "big") == 1007
    finally:
        ws.close()
    assert call(node, "eth_chainId") == hex(420420420)


def test_blocks_after_a_revert_are_the_new_ones() -> None:
    """The node keeps its newest blocks decoded: after evm_revert and a new block at
    the same height, the block and receipt queries answer the new block, and the
    reverted transaction has no receipt (in-process, through the dispatcher)."""
    import trio

    from chain_sim.chain import Chain
    from chain_sim.node.app import build_dispatcher, dev_genesis
    from chain_sim.node.jsonrpc import Session
    from chain_sim.node.service import Node

    chain = Chain.create(dev_genesis(), None, backend="interpreter", sandbox=None)
    dispatcher = build_dispatcher(Node(chain, log=lambda line: None))
    a, b = eth_accounts(2)

    async def ask(method: str, *params: Any) -> Any:
        text = await dispatcher.handle(json.dumps({"jsonrpc": "2.0", "id": 1,
                                                   "method": method,
                                                   "params": list(params)}), Session(None))
        assert text is not None
        answer = json.loads(text)
        assert "error" not in answer, answer
        return answer["result"]

    def transfer(value: int) -> str:
        tx = {"type": 2, "chainId": 420420420, "nonce": 0, "to": b.checksum, "value": value,
              "gas": 1_000_000, "maxFeePerGas": 10**15, "maxPriorityFeePerGas": 0}
        return "0x" + bytes(EthAccount.sign_transaction(tx, a.private_key).raw_transaction).hex()

    async def main() -> None:
        snap = await ask("evm_snapshot")
        first = await ask("eth_sendRawTransaction", transfer(1))
        old = await ask("eth_getBlockByNumber", "0x1", False)
        assert old["transactions"] == [first]
        assert (await ask("eth_getTransactionReceipt", first))["blockHash"] == old["hash"]
        assert await ask("evm_revert", snap) is True
        second = await ask("eth_sendRawTransaction", transfer(2))
        new = await ask("eth_getBlockByNumber", "0x1", False)
        assert new["transactions"] == [second] and new["hash"] != old["hash"]
        assert new["hash"] == "0x" + chain.header(1).hash.hex()
        assert (await ask("eth_getTransactionReceipt", second))["blockHash"] == new["hash"]
        assert await ask("eth_getTransactionReceipt", first) is None

    try:
        trio.run(main)
    finally:
        chain.close()


def test_only_plain_posts_take_the_fast_path() -> None:
    """The server answers plain JSON-RPC POSTs itself and hands every other request
    to h11 (which answers or refuses it): what counts as plain."""
    from chain_sim.node.server import _plain_post

    ok = b"POST / HTTP/1.1\r\nHost: a:1\r\nContent-Type: application/json\r\nContent-Length: 12"
    assert _plain_post(ok) == (12, False)
    assert _plain_post(ok + b"\r\nConnection: close") == (12, True)
    assert _plain_post(ok.replace(b"Content-Length", b"content-LENGTH")) == (12, False)
    for odd in [
        ok.replace(b"POST", b"GET"),
        ok.replace(b"HTTP/1.1", b"HTTP/1.0"),
        ok.replace(b"POST /", b"POST  /"),
        ok + b"\r\nContent-Length: 12",                    # two lengths
        ok.replace(b"Content-Length: 12", b"Content-Length: +12"),
        ok.replace(b"Content-Length: 12", b"Content-Length: 1 2"),
        ok.replace(b"Content-Length: 12", b"X: 1"),         # no length
        ok.replace(b"Host: a:1\r\n", b""),                  # no Host
        ok + b"\r\nHost: b",                                # two Hosts
        ok + b"\r\nTransfer-Encoding: chunked",
        ok + b"\r\nExpect: 100-continue",
        ok + b"\r\nUpgrade: h2c",
        ok + b"\r\n folded",                                # obs-fold
        ok + b"\r\nBad Name: x",
        ok + b"\r\nX: a\nContent-Length: 5",                # a bare LF
        ok + b"\r\nX: \x00",
        ok.replace(b"12", str(MAX_REQUEST_BYTES + 1).encode()),
    ]:
        assert _plain_post(odd) is None, odd


def test_odd_http_requests_are_refused(node: NodeProcess) -> None:
    """Requests off the fast path are h11's: ambiguous lengths, no Host, obs-fold
    get 400 and the connection closes; HTTP/1.0 is answered; 'Connection: close' is
    honoured; the node goes on."""
    import socket

    body = b'{"jsonrpc":"2.0","id":5,"method":"eth_chainId"}'

    def exchange(raw: bytes) -> bytes:
        with socket.create_connection((node.host, node.port), timeout=120) as s:
            s.sendall(raw)
            out = b""
            while True:          # the server closes the connection after answering
                chunk = s.recv(65536)
                if not chunk:
                    return out
                out += chunk

    n = len(body)
    for raw in [b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\nContent-Length: %d\r\n"
                b"\r\n%s" % (n, n + 1, body),
                b"POST / HTTP/1.1\r\nContent-Length: %d\r\n\r\n%s" % (n, body),
                b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n folded\r\n\r\n%s"
                % (n, body)]:
        assert exchange(raw).startswith(b"HTTP/1.1 400"), raw
    answer = exchange(b"POST / HTTP/1.0\r\nContent-Length: %d\r\n\r\n%s" % (n, body))
    assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b'"result": "0x190f1b44"}')
    answer = exchange(b"POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                      b"Content-Length: %d\r\n\r\n%s" % (n, body))
    assert answer.startswith(b"HTTP/1.1 200") and b"connection: close" in answer.lower()
    assert call(node, "eth_chainId") == hex(420420420)


def test_idle_http_connections_are_closed(monkeypatch: Any) -> None:
    """A keep-alive connection with no request for KEEP_ALIVE_SECONDS is closed by
    the server (its watch task), one that keeps asking is served on; in-process, on
    real TCP sockets (the server's direct socket path)."""
    import trio

    from chain_sim.node import server as server_mod
    from chain_sim.node.jsonrpc import Dispatcher, Session

    monkeypatch.setattr(server_mod, "KEEP_ALIVE_SECONDS", 0.5)

    async def chain_id(s: Session, p: Any) -> Any:
        return "0x1"

    d = Dispatcher()
    d.add("eth_chainId", chain_id)
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"}).encode()
    request = (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body)
               + body)

    async def ask(stream: trio.SocketStream) -> bytes:
        await stream.send_all(request)
        data = b""
        while not data.endswith(b'"0x1"}'):
            more = await stream.receive_some(4096)
            assert more, "closed while a request was being answered"
            data += more
        return data

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            listeners = await nursery.start(trio.serve_tcp,
                                            server_mod.RpcServer(d).handle_connection, 0)
            port = listeners[0].socket.getsockname()[1]
            busy = await trio.open_tcp_stream("127.0.0.1", port)
            idle = await trio.open_tcp_stream("127.0.0.1", port)
            assert (await ask(idle)).startswith(b"HTTP/1.1 200")
            start = trio.current_time()
            with trio.fail_after(10):        # (a bound on a hang, not a speed test)
                while True:
                    assert (await ask(busy)).startswith(b"HTTP/1.1 200")
                    try:
                        with trio.move_on_after(0.1):
                            assert await idle.receive_some(4096) == b""   # closed
                            break
                    except trio.BrokenResourceError:         # (reset: closed too)
                        break
            assert trio.current_time() - start >= 0.5 * 0.9   # not before its time
            for _ in range(3):     # the busy one outlived several idle periods
                await trio.sleep(0.3)
                assert (await ask(busy)).startswith(b"HTTP/1.1 200")
            nursery.cancel_scope.cancel()

    trio.run(main)


def test_json_codec_is_the_json_modules() -> None:
    """The dispatcher's JSON in and out (:func:`loads`, :func:`dumps`: shortcuts past
    json.loads/json.dumps's per-call set-up) give json's results and errors."""
    from chain_sim.node.jsonrpc import dumps, loads

    texts: list[str | bytes] = [
        b'{"a":1}', b"[1,2]", b' {"a":1}', b'{"a":"\xed\xa0\x80"}', b'{"a":"\xff"}',
        b'\xef\xbb\xbf{"a":1}', '{"a":1}'.encode("utf-16"), '[1]'.encode("utf-32-le"),
        b'{"a":1} x', b"{", b"{\x00", b"", b"[", "\ufeff{}", "{}", "", "[1e400]",
        '{"a":NaN}', '{"é": "\\ud800"}']

    def outcome(f: Any, x: Any) -> tuple[str, Any]:
        try:
            return "ok", f(x)
        except Exception as exc:  # noqa: BLE001 - compared
            return type(exc).__name__, str(exc)

    for t in texts:
        a, b = outcome(json.loads, t), outcome(loads, t)
        assert a == b, (t, a, b)
    for obj in [{"jsonrpc": "2.0", "id": 1, "result": "0x1"}, "x", 1, None,
                [1, 2.5, float("inf"), -0.0, None, True, "é\u2028\x00", {"k": [{}]}],
                {1: 2, None: 3, False: 4, 1.5: 5}, 10**30]:
        assert dumps(obj) == json.dumps(obj)
    for bad in [{"a": object()}, {(1, 2): 3}, {"a": float("nan"), "b": b"x"}]:
        assert outcome(dumps, bad) == outcome(json.dumps, bad)
