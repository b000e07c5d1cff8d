"""The dev node's cost over the Python API: ``eth_call`` latency and
``eth_sendRawTransaction`` -> receipt throughput of ERC-20 transfers over HTTP and
WebSocket with several concurrent clients, against the same work through the Python
API in the same run.

The node (``pvm-exec node``, automine: one block per transaction) runs as a
subprocess; the baseline is an in-process :class:`chain_sim.Chain` with the node's dev
genesis building the same kind of blocks (one pre-signed ``Revive.eth_transact``
transfer each) with :meth:`~chain_sim.Chain.build_block`, and
:meth:`~chain_sim.Chain.dry_run` for the call.  Transactions are signed before the
clock starts; every receipt is checked (status 1).

    .venv/bin/python benches/bench_node.py [--quick] [--write] [--workers N] [--sandbox S]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import socket
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from eth_abi import encode as abi_encode  # noqa: E402
from eth_account import Account as EthAccount  # noqa: E402
from eth_utils.address import to_checksum_address  # noqa: E402

from benches.results import machine_info, write_section  # noqa: E402
from chain_sim.chain import Chain  # noqa: E402
from chain_sim.extrinsic import EthTransact, Unsigned  # noqa: E402
from chain_sim.node.accounts import EthDevAccount, eth_accounts  # noqa: E402
from chain_sim.node.app import dev_genesis  # noqa: E402
from chain_sim.workload import Contracts  # noqa: E402
from tests.node.conftest import NodeProcess, start_node, stop_node  # noqa: E402

CHAIN_ID = 420420420
GAS = 50_000_000
_GENESIS = dev_genesis()
GAS_PRICE = _GENESIS.fees.gas_price * _GENESIS.native_to_eth_ratio     # wei per gas


def sign_transfer(contracts: Contracts, key: bytes, nonce: int, token: bytes, to: bytes,
                  value: int) -> bytes:
    data = contracts.token_abi.function("transfer").encode_call([to, value])
    tx = {"type": 2, "chainId": CHAIN_ID, "nonce": nonce, "to": to_checksum_address(token),
          "gas": GAS, "maxFeePerGas": GAS_PRICE, "maxPriorityFeePerGas": 0, "value": 0,
          "data": data}
    return bytes(EthAccount.sign_transaction(tx, key).raw_transaction)


def sign_deploy(contracts: Contracts, key: bytes, nonce: int) -> bytes:
    ctor = abi_encode(["string", "string", "uint256"], ["Bench", "BN", 10**30])
    tx = {"type": 2, "chainId": CHAIN_ID, "nonce": nonce, "gas": 5_000_000_000,
          "maxFeePerGas": GAS_PRICE, "maxPriorityFeePerGas": 0, "value": 0,
          "data": contracts.token_blob + ctor}
    return bytes(EthAccount.sign_transaction(tx, key).raw_transaction)


class HttpClient:
    """A lean JSON-RPC client over one keep-alive HTTP/1.1 connection (a raw socket:
    the bench's clients share the machine with the node, so they must cost little;
    http.client costs ~0.4 ms of CPU per request here, more than the node's server)."""

    def __init__(self, node: NodeProcess) -> None:
        self.sock = socket.create_connection((node.host, node.port), timeout=300)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.head = (f"POST / HTTP/1.1\r\nHost: {node.host}:{node.port}\r\n"
                     "Content-Type: application/json\r\nContent-Length: ").encode()
        self.buf = b""
        self.n = 0

    def _read_answer(self) -> bytes:
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end >= 0:
                break
            self._fill()
        head = self.buf[:end].lower().split(b"\r\n")
        if not head[0].startswith(b"http/1.1 200"):
            raise RuntimeError(f"HTTP answer {head[0]!r}")
        size = next(int(line[15:]) for line in head if line.startswith(b"content-length:"))
        while len(self.buf) < end + 4 + size:
            self._fill()
        body, self.buf = self.buf[end + 4:end + 4 + size], self.buf[end + 4 + size:]
        return body

    def _fill(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise RuntimeError("the node closed the connection")
        self.buf += data

    def call(self, method: str, *params: Any) -> Any:
        self.n += 1
        body = json.dumps({"jsonrpc": "2.0", "id": self.n, "method": method,
                           "params": list(params)}).encode()
        self.sock.sendall(self.head + b"%d\r\n\r\n" % len(body) + body)
        answer = json.loads(self._read_answer())
        if "error" in answer:
            raise RuntimeError(f"{method}: {answer['error']}")
        return answer["result"]

    def close(self) -> None:
        self.sock.close()


class WsClient:
    """A lean JSON-RPC client over one WebSocket (a raw socket, RFC 6455 framing:
    masked text frames out, unmasked frames in)."""

    def __init__(self, node: NodeProcess) -> None:
        self.sock = socket.create_connection((node.host, node.port), timeout=300)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET / HTTP/1.1\r\nHost: {node.host}:{node.port}\r\n"
                           "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                           f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
                           ).encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        if not head.startswith(b"HTTP/1.1 101"):
            raise RuntimeError(f"no WebSocket: {head[:60]!r}")
        self.n = 0

    def _fill(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise RuntimeError("the node closed the connection")
        self.buf += data

    def _take(self, n: int) -> bytes:
        while len(self.buf) < n:
            self._fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def send(self, text: str) -> None:
        data = text.encode()
        n = len(data)
        if n < 126:
            head = bytes([0x81, 0x80 | n])
        elif n < 65536:
            head = bytes([0x81, 0xFE]) + n.to_bytes(2, "big")
        else:
            head = bytes([0x81, 0xFF]) + n.to_bytes(8, "big")
        mask = os.urandom(4)
        pad = (mask * (n // 4 + 1))[:n]
        masked = (int.from_bytes(data, "big") ^ int.from_bytes(pad, "big")).to_bytes(n, "big")
        self.sock.sendall(head + mask + masked)

    def recv(self) -> bytes:
        b0, b1 = self._take(2)
        n = b1 & 0x7F
        if n == 126:
            n = int.from_bytes(self._take(2), "big")
        elif n == 127:
            n = int.from_bytes(self._take(8), "big")
        payload = self._take(n)
        if b0 & 0x0F != 1 or not b0 & 0x80:
            raise RuntimeError(f"unexpected frame {b0:#x}")
        return payload

    def call(self, method: str, *params: Any) -> Any:
        self.n += 1
        self.send(json.dumps({"jsonrpc": "2.0", "id": self.n, "method": method,
                              "params": list(params)}))
        answer = json.loads(self.recv())
        if "error" in answer:
            raise RuntimeError(f"{method}: {answer['error']}")
        return answer["result"]

    def close(self) -> None:
        self.sock.close()


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far (/proc)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pin(pid: int, cpu: int) -> None:
    """Every thread of process ``pid`` (and the threads they start) on CPU ``cpu``."""
    for tid in os.listdir(f"/proc/{pid}/task"):
        os.sched_setaffinity(int(tid), {cpu})


def setup_node(node: NodeProcess, contracts: Contracts, senders: list[EthDevAccount]
               ) -> bytes:
    c = HttpClient(node)
    owner = eth_accounts(1)[0]
    nonce = int(c.call("eth_getTransactionCount", owner.checksum, "latest"), 16)
    h = c.call("eth_sendRawTransaction", "0x" + sign_deploy(contracts, owner.private_key,
                                                              nonce).hex())
    token = bytes.fromhex(c.call("eth_getTransactionReceipt", h)["contractAddress"][2:])
    for i, s in enumerate(senders):
        raw = sign_transfer(contracts, owner.private_key, nonce + 1 + i, token, s.address,
                            10**24)
        assert c.call("eth_getTransactionReceipt", c.call(
            "eth_sendRawTransaction", "0x" + raw.hex()))["status"] == "0x1"
    c.close()
    return token


def node_throughput(node: NodeProcess, contracts: Contracts, token: bytes,
                    senders: list[EthDevAccount], per_client: int, transport: str
                    ) -> tuple[float, float]:
    """(tx/s, the node's CPU seconds per tx) of ``len(senders)`` concurrent clients,
    each sending ``per_client`` transfers and fetching each receipt."""
    probe = HttpClient(node)
    signed = []
    for s in senders:
        n = int(probe.call("eth_getTransactionCount", s.checksum, "latest"), 16)
        signed.append(["0x" + sign_transfer(contracts, s.private_key, n + k, token,
                                            bytes(20), 1).hex() for k in range(per_client)])
    probe.close()
    clients = [(HttpClient(node) if transport == "http" else WsClient(node))
               for _ in senders]
    errors: list[str] = []
    start = threading.Barrier(len(senders) + 1)

    def run(i: int) -> None:
        c = clients[i]
        start.wait()
        for raw in signed[i]:
            r = c.call("eth_getTransactionReceipt", c.call("eth_sendRawTransaction", raw))
            if r is None or r["status"] != "0x1":
                errors.append(str(r))

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(senders))]
    for t in threads:
        t.start()
    start.wait()
    cpu0 = process_cpu(node.proc.pid)
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    dt = time.perf_counter() - t0
    cpu = process_cpu(node.proc.pid) - cpu0
    for c in clients:
        c.close()
    if errors:
        raise RuntimeError(f"{len(errors)} transfers failed: {errors[:2]}")
    n = len(senders) * per_client
    return n / dt, cpu / n


def node_call_latency(node: NodeProcess, contracts: Contracts, token: bytes, n: int,
                      transport: str) -> list[float]:
    c = HttpClient(node) if transport == "http" else WsClient(node)
    data = "0x" + contracts.token_abi.function("balanceOf").encode_call([bytes(20)]).hex()
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        c.call("eth_call", {"to": "0x" + token.hex(), "data": data}, "latest")
        out.append(time.perf_counter() - t0)
    c.close()
    return out


def server_cost(node: NodeProcess, transport: str, n: int) -> tuple[float, float]:
    """(the node's CPU seconds, wall seconds) per ``eth_chainId`` round trip on one
    connection: what the server and dispatcher cost on their own (no chain work)."""
    c = HttpClient(node) if transport == "http" else WsClient(node)
    for _ in range(50):
        c.call("eth_chainId")
    cpu0 = process_cpu(node.proc.pid)
    t0 = time.perf_counter()
    for _ in range(n):
        c.call("eth_chainId")
    wall = time.perf_counter() - t0
    cpu = process_cpu(node.proc.pid) - cpu0
    c.close()
    return cpu / n, wall / n


def api_baseline(contracts: Contracts, senders: list[EthDevAccount], total: int,
                 backend: str, sandbox: str | None, calls: int, value: int = 1
                 ) -> tuple[float, float, list[float]]:
    """(tx/s building one-transfer blocks, CPU seconds per tx, eth_call-equivalent
    dry-run latencies).  ``value``: the amount each transfer moves -- a different one
    per round, so no round finds its transactions already decoded and their senders
    recovered (the decode cache) by an earlier one: the node's never are."""
    chain = Chain.create(dev_genesis(), None, backend=backend, sandbox=sandbox)
    owner = eth_accounts(1)[0]
    ts = chain.head.timestamp

    def mine(raw: bytes) -> Any:
        nonlocal ts
        ts += 1
        r = chain.build_block([Unsigned(EthTransact(raw))], timestamp=ts, strict=True)
        return r.block.receipts[0]

    token = mine(sign_deploy(contracts, owner.private_key, 0)).contract
    for i, s in enumerate(senders):
        assert mine(sign_transfer(contracts, owner.private_key, 1 + i, token, s.address,
                                  10**24)).success
    per = total // len(senders)
    signed = [sign_transfer(contracts, s.private_key, k, token, bytes(20), value)
              for k in range(per) for s in senders]
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    for raw in signed:
        if not mine(raw).success:
            raise RuntimeError("a baseline transfer failed")
    rate = len(signed) / (time.perf_counter() - t0)
    cpu = (time.process_time() - cpu0) / len(signed)
    data = contracts.token_abi.function("balanceOf").encode_call([bytes(20)])
    lat = []
    for _ in range(calls):
        t1 = time.perf_counter()
        r = chain.dry_run(bytes(20), token, data)
        lat.append(time.perf_counter() - t1)
        assert r.success
    chain.close()
    return rate, cpu, lat


def dispatcher_latency(contracts: Contracts, backend: str, sandbox: str | None,
                       calls: int) -> tuple[list[float], float]:
    """``eth_call`` through the node's own dispatcher in this process (JSON in and
    out, the chain lock, the worker-thread hop; no socket, no HTTP/WebSocket server),
    and the tx/s of eth_sendRawTransaction + receipt the same way (one client)."""
    import trio

    from chain_sim.node.app import build_dispatcher
    from chain_sim.node.jsonrpc import Session
    from chain_sim.node.service import Node

    chain = Chain.create(dev_genesis(), None, backend=backend, sandbox=sandbox)
    node = Node(chain)
    d = build_dispatcher(node)
    owner, sender = eth_accounts(2)
    out: list[float] = []
    rate = 0.0

    async def rpc(method: str, *params: Any) -> Any:
        answer = json.loads(await d.handle(json.dumps({
            "jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}),
            Session(None)) or "null")
        if "error" in answer:
            raise RuntimeError(answer["error"])
        return answer["result"]

    async def main() -> None:
        nonlocal rate
        h = await rpc("eth_sendRawTransaction",
                      "0x" + sign_deploy(contracts, owner.private_key, 0).hex())
        token = bytes.fromhex((await rpc("eth_getTransactionReceipt", h))
                              ["contractAddress"][2:])
        await rpc("eth_sendRawTransaction", "0x" + sign_transfer(
            contracts, owner.private_key, 1, token, sender.address, 10**24).hex())
        data = "0x" + contracts.token_abi.function("balanceOf").encode_call(
            [bytes(20)]).hex()
        for _ in range(calls):
            t0 = time.perf_counter()
            await rpc("eth_call", {"to": "0x" + token.hex(), "data": data}, "latest")
            out.append(time.perf_counter() - t0)
        signed = ["0x" + sign_transfer(contracts, sender.private_key, k, token, bytes(20),
                                       2).hex() for k in range(100)]   # (none decoded yet)
        t1 = time.perf_counter()
        for raw in signed:
            r = await rpc("eth_getTransactionReceipt", await rpc("eth_sendRawTransaction",
                                                                 raw))
            assert r["status"] == "0x1"
        rate = len(signed) / (time.perf_counter() - t1)

    trio.run(main)
    chain.close()
    return out, rate


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--write", action="store_true")
    ap.add_argument("--workers", type=int, default=0,
                    help="the node's --workers (0: blocks in a plain thread, as the baseline)")
    ap.add_argument("--sandbox", default="none", choices=["auto", "linux", "none"])
    ap.add_argument("--backend", default="jit", choices=["interpreter", "jit"])
    ap.add_argument("--pin", action="store_true",
                    help="the node on CPU 0, this process (baseline and clients) on CPU 1 "
                         "(what a process that hands the CPU to its client at every "
                         "request costs: compare with and without)")
    args = ap.parse_args()
    per_client, calls, repeats = (20, 100, 1) if args.quick else (60, 300, 3)
    contracts = Contracts.build()
    senders = eth_accounts(9)[1:]              # up to 8 concurrent clients
    load_before = os.getloadavg()
    sandbox = None if args.sandbox == "none" else args.sandbox
    node = start_node("--workers", str(args.workers), "--sandbox", args.sandbox,
                      "--backend", args.backend)
    if args.pin:
        pin(node.proc.pid, 0)
        pin(os.getpid(), 1)
    rows: list[tuple[str, float, float, float, float]] = []   # label, node/api tx/s, CPU
    lat_rows: list[tuple[str, list[float]]] = []
    cost_rows: list[tuple[str, tuple[float, float]]] = []
    results: dict[tuple[str, int], list[tuple[float, float]]] = {}
    api_rates: list[float] = []
    api_cpus: list[float] = []
    api_lat: list[float] = []
    try:
        token = setup_node(node, contracts, senders)
        for transport in ("http", "ws"):
            lat_rows.append((transport, node_call_latency(node, contracts, token, calls,
                                                          transport)))
            cost_rows.append((transport, server_cost(node, transport, 10 * calls)))
        for _ in range(repeats):      # node and baseline interleaved: the same load
            for transport in ("http", "ws"):
                for clients in (1, 4, 8):
                    print(f"{transport} x{clients} ...", file=sys.stderr, flush=True)
                    results.setdefault((transport, clients), []).append(node_throughput(
                        node, contracts, token, senders[:clients], per_client, transport))
            print("baseline ...", file=sys.stderr, flush=True)
            rate, cpu, lat = api_baseline(contracts, senders[:4], 4 * per_client,
                                          args.backend, sandbox, calls,
                                          value=1000 + len(api_rates))
            api_rates.append(rate)
            api_cpus.append(cpu)
            api_lat += lat
    finally:
        stop_node(node)
    api = statistics.median(api_rates)
    api_cpu = statistics.median(api_cpus)
    load_after = os.getloadavg()
    for (transport, clients), runs in results.items():
        rows.append((f"{transport.upper()}, {clients} client{'s' if clients > 1 else ''}",
                     statistics.median(x[0] for x in runs), api,
                     statistics.median(x[1] for x in runs), api_cpu))
    api_call = statistics.median(api_lat)
    print("in-process dispatcher ...", file=sys.stderr, flush=True)
    disp_lat, disp_rate = dispatcher_latency(contracts, args.backend, sandbox, calls)
    lines = [
        f"Machine: {machine_info()}",
        f"Load average (1/5/15 min) before: {load_before[0]:.2f} / {load_before[1]:.2f} / "
        f"{load_before[2]:.2f}, after: {load_after[0]:.2f} / {load_after[1]:.2f} / "
        f"{load_after[2]:.2f} (2 cores, other agents working: the absolute figures are "
        "noisy, the ratios less so).",
        "",
        f"`.venv/bin/python benches/bench_node.py{' --quick' if args.quick else ''} "
        f"--workers {args.workers} --sandbox {args.sandbox} --backend {args.backend}"
        + (" --pin` (the node on CPU 0, clients and baseline on CPU 1)" if args.pin else "`")
        + ": the "
        f"node as a subprocess (automine); each client sends {per_client} pre-signed "
        "`Token.transfer` transactions (eth_sendRawTransaction, then "
        "eth_getTransactionReceipt, status checked), clients concurrent; baseline: the "
        "same transfers as one-transaction blocks through `Chain.build_block` in this "
        f"process, same backend, run between the node's rounds. Medians of {repeats} "
        "repeat(s). The clients are lean raw-socket JSON-RPC clients (keep-alive HTTP/1.1, "
        "WebSocket), threads of the bench process. CPU: the node process's user+system "
        "time (/proc) per transaction against the baseline's process time per "
        "transaction -- less sensitive to the machine's load than the rates.",
        "",
        "| transport, clients | node tx/s | Python API tx/s | node / API | node CPU ms/tx "
        "| API CPU ms/tx | API CPU / node CPU |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for label, rate, base, cpu, base_cpu in rows:
        lines.append(f"| {label} | {rate:,.0f} | {base:,.0f} | {rate / base:.2f} | "
                     f"{cpu * 1e3:.2f} | {base_cpu * 1e3:.2f} | {base_cpu / cpu:.2f} |")
    lines.append(f"| the node's dispatcher in-process (no socket), 1 client | "
                 f"{disp_rate:,.0f} | {api:,.0f} | {disp_rate / api:.2f} | | | |")
    lines += ["", f"`eth_call` (`balanceOf`) latency, {calls} sequential calls on one "
              "connection, against `Chain.dry_run` of the same call in-process:", "",
              "| transport | median ms | p90 ms | node / API (median) |", "|---|---:|---:|---:|"]
    for transport, xs in lat_rows:
        xs = sorted(xs)
        med, p90 = statistics.median(xs), xs[int(len(xs) * 0.9)]
        lines.append(f"| {transport.upper()} | {med * 1e3:.2f} | {p90 * 1e3:.2f} | "
                     f"{med / api_call:.2f} |")
    disp_lat.sort()
    lines.append(f"| the node's dispatcher in-process (no socket) | "
                 f"{statistics.median(disp_lat) * 1e3:.2f} | "
                 f"{disp_lat[int(len(disp_lat) * 0.9)] * 1e3:.2f} | "
                 f"{statistics.median(disp_lat) / api_call:.2f} |")
    lines.append(f"| Python API (`Chain.dry_run`) | {api_call * 1e3:.2f} | "
                 f"{sorted(api_lat)[int(len(api_lat) * 0.9)] * 1e3:.2f} | 1.00 |")
    lines += ["", f"The server and dispatcher alone: `eth_chainId`, {10 * calls} sequential "
              "requests on one connection, the node's CPU (/proc) and the wall time per "
              "round trip:", "", "| transport | node CPU us/request | wall us/request |",
              "|---|---:|---:|"]
    for transport, (cpu, wall) in cost_rows:
        lines.append(f"| {transport.upper()} | {cpu * 1e6:.0f} | {wall * 1e6:.0f} |")
    body = "\n".join(lines) + "\n"
    print(body)
    if args.write:
        title = (f"Dev node (pvm-exec node): RPC over the Python API, --workers "
                 f"{args.workers} --sandbox {args.sandbox}")
        write_section(title, body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
