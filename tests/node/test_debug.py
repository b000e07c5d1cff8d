"""debug_traceTransaction / debug_traceCall (geth's callTracer shape) and console.log
lines printed by the node, driven with web3.py against the node subprocess.

Expectations are computed here, independently of the node: call inputs and outputs
ABI-encoded with eth_abi, selectors hashed with web3, addresses from receipts, the
console.log lines from console.sol's formatting rules (Hardhat's)."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from eth_abi import encode as abi_encode
from eth_account import Account as EthAccount
from web3 import Web3

from chain_sim.node.accounts import eth_accounts
from chain_sim.workload import Contracts
from tests.node.conftest import NodeProcess, abi, rpc, send

CONSOLE = "0x000000000000000000636f6e736f6c652e6c6f67"
GAS = 50_000_000_000 // 100
TRACER = {"tracer": "callTracer"}


def _sel(signature: str) -> bytes:
    return bytes(Web3.keccak(text=signature)[:4])


def _hex(b: bytes) -> str:
    return "0x" + b.hex()


def _error_string(reason: str) -> bytes:
    return _sel("Error(string)") + abi_encode(["string"], [reason])


@pytest.fixture(scope="module")
def deployed(w3: Web3, contracts: Contracts) -> dict[str, str]:
    """A Child (its code then is on chain for the Factory's ``new Child``) and a
    Factory."""
    key = eth_accounts(1)[0].private_key
    child = send(w3, key, {"data": contracts.child_blob + abi_encode(["uint256"], [1]),
                            "gas": GAS})
    assert child["status"] == 1
    factory = send(w3, key, {"data": contracts.factory_blob, "gas": GAS})
    assert factory["status"] == 1
    return {"child": child["contractAddress"], "factory": factory["contractAddress"]}


def _trace_tx(w3: Web3, receipt: Any, config: dict[str, Any] | None = None) -> Any:
    opts: dict[str, Any] = dict(TRACER)
    if config is not None:
        opts["tracerConfig"] = config
    return rpc(w3, "debug_traceTransaction", _hex(bytes(receipt["transactionHash"])), opts)


def _check_gas(frame: Any) -> None:
    """gasUsed never exceeds the gas a frame got, nor a child's the parent's."""
    assert 0 < int(frame["gasUsed"], 16) <= int(frame["gas"], 16), frame
    for c in frame.get("calls", []):
        assert int(c["gasUsed"], 16) <= int(frame["gasUsed"], 16)
        _check_gas(c)


def test_nested_call_and_delegatecall(w3: Web3, deployed: dict[str, str]) -> None:
    a = eth_accounts(1)[0]
    factory, child = deployed["factory"].lower(), deployed["child"].lower()
    head = w3.eth.block_number
    data = _sel("callAdd(address,uint256)") + abi_encode(["address", "uint256"], [child, 3])
    receipt = send(w3, a.private_key, {"to": deployed["factory"], "data": data, "value": 0})
    assert receipt["status"] == 1
    t = _trace_tx(w3, receipt)
    assert (t["type"], t["from"], t["to"], t["input"]) == (
        "CALL", "0x" + a.address.hex(), factory, _hex(data))
    sent = w3.eth.get_transaction(receipt["transactionHash"])
    assert t["value"] == "0x0" and t["gas"] == hex(sent["gas"])
    assert int(t["gasUsed"], 16) == receipt["gasUsed"]
    assert t["output"] == _hex(abi_encode(["uint256"], [1 + 3]))   # Child(1).add(3)
    assert "error" not in t and "revertReason" not in t
    (inner,) = t["calls"]
    assert (inner["type"], inner["from"], inner["to"], inner["value"]) == (
        "CALL", factory, child, "0x0")
    assert inner["input"] == _hex(_sel("add(uint256)") + abi_encode(["uint256"], [3]))
    assert inner["output"] == _hex(abi_encode(["uint256"], [4]))
    assert "calls" not in inner
    _check_gas(t)

    # a delegatecall: Child's code on the Factory's storage (slot 0 is 0 there)
    data = _sel("delegateAdd(address,uint256)") + abi_encode(["address", "uint256"], [child, 9])
    receipt = send(w3, a.private_key, {"to": deployed["factory"], "data": data})
    t = _trace_tx(w3, receipt)
    (inner,) = t["calls"]
    assert (inner["type"], inner["from"], inner["to"]) == ("DELEGATECALL", factory, child)
    assert inner["input"] == _hex(_sel("add(uint256)") + abi_encode(["uint256"], [9]))
    assert inner["output"] == _hex(abi_encode(["uint256"], [9]))
    assert t["output"] == _hex(abi_encode(["uint256"], [9]))
    # tracing changed nothing: no block mined, the state as it was
    assert w3.eth.block_number == head + 2
    view = _sel("get()")
    assert w3.eth.call({"to": deployed["child"], "data": view}) == abi_encode(["uint256"], [4])


def test_create_with_logs_and_only_top_call(w3: Web3, deployed: dict[str, str]) -> None:
    a = eth_accounts(1)[0]
    factory = deployed["factory"].lower()
    data = _sel("make(uint256)") + abi_encode(["uint256"], [42])
    receipt = send(w3, a.private_key, {"to": deployed["factory"], "data": data, "value": 7})
    assert receipt["status"] == 1
    made = w3.eth.call({"to": deployed["factory"], "data": _sel("lastChild()")})
    new_child = "0x" + made[-20:].hex()
    t = _trace_tx(w3, receipt, {"withLog": True})
    assert t["value"] == "0x7"
    (create,) = t["calls"]
    assert (create["type"], create["from"], create["to"], create["value"]) == (
        "CREATE", factory, new_child, "0x7")
    assert create["input"] == _hex(abi_encode(["uint256"], [42]))    # constructor input
    # Child's constructor emits Created(creator indexed, value); the Factory Deployed
    (created,) = create["logs"]
    assert created["address"] == new_child
    assert created["topics"] == [_hex(bytes(Web3.keccak(text="Created(address,uint256)"))),
                                 _hex(bytes(12) + bytes.fromhex(factory[2:]))]
    assert created["data"] == _hex(abi_encode(["uint256"], [42]))
    (deployed_log,) = t["logs"]
    assert deployed_log["address"] == factory and deployed_log["position"] == "0x1"
    assert deployed_log["data"] == _hex(abi_encode(["address", "bool"], [new_child, False]))
    _check_gas(t)
    top = _trace_tx(w3, receipt, {"onlyTopCall": True})
    assert "calls" not in top and top["gasUsed"] == t["gasUsed"] and "logs" not in top


def test_revert_reasons(w3: Web3, deployed: dict[str, str]) -> None:
    a = eth_accounts(1)[0]
    factory, child = deployed["factory"].lower(), deployed["child"].lower()
    fail = _sel("fail()")
    # caught inside: the top frame succeeds, the nested one reverted with its reason
    data = _sel("tryFail(address)") + abi_encode(["address"], [child])
    receipt = send(w3, a.private_key, {"to": deployed["factory"], "data": data})
    assert receipt["status"] == 1
    t = _trace_tx(w3, receipt)
    assert "error" not in t
    assert t["output"] == _hex(abi_encode(["bool", "string"], [False, "child failed"]))
    (inner,) = t["calls"]
    # Child.fail is pure: Solidity calls it with STATICCALL
    assert (inner["type"], inner["from"], inner["to"], inner["input"]) == (
        "STATICCALL", factory, child, _hex(fail))
    assert inner["error"] == "execution reverted"
    assert inner["revertReason"] == "child failed"
    assert inner["output"] == _hex(_error_string("child failed"))
    # a reverted transaction (status 0): the top frame carries the reason
    receipt = send(w3, a.private_key, {"to": deployed["child"], "data": fail, "gas": GAS})
    assert receipt["status"] == 0
    t = _trace_tx(w3, receipt)
    assert t["error"] == "execution reverted" and t["revertReason"] == "child failed"
    assert t["output"] == _hex(_error_string("child failed"))
    assert int(t["gasUsed"], 16) == receipt["gasUsed"]
    # the same as a traced call, without a transaction; a staticcall inside
    head = w3.eth.block_number
    call = rpc(w3, "debug_traceCall", {"from": a.checksum, "to": deployed["child"],
                                        "data": _hex(fail)}, "latest", TRACER)
    assert call["error"] == "execution reverted" and call["revertReason"] == "child failed"
    data = _sel("callGet(address)") + abi_encode(["address"], [child])
    call = rpc(w3, "debug_traceCall", {"from": a.checksum, "to": deployed["factory"],
                                        "data": _hex(data)}, "latest", TRACER)
    (inner,) = call["calls"]
    assert (inner["type"], inner["to"], inner["input"]) == ("STATICCALL", child, _hex(_sel(
        "get()")))
    assert "value" not in inner and inner["output"] == call["output"]
    assert w3.eth.block_number == head


def test_bad_trace_requests(w3: Web3, deployed: dict[str, str]) -> None:
    r = w3.provider.make_request("debug_traceTransaction",  # type: ignore[arg-type]
                                 ["0x" + "ab" * 32, TRACER])
    assert "not found" in r["error"]["message"]
    r = w3.provider.make_request("debug_traceTransaction",  # type: ignore[arg-type]
                                 ["0x" + "ab" * 32, {"tracer": "prestateTracer"}])
    assert r["error"]["code"] == -32602 and "options.tracer" in r["error"]["message"]
    r = w3.provider.make_request("debug_traceCall",  # type: ignore[arg-type]
                                 [{"to": "0x12"}, "latest", TRACER])
    assert r["error"]["code"] == -32602 and "transaction.to" in r["error"]["message"]


def _wait_for(node: NodeProcess, line: str) -> None:
    """Until the node printed ``line`` (or exited); bounded by progress, not time."""
    done = threading.Event()
    for _ in range(600):
        if line + "\n" in node.lines or node.proc.poll() is not None:
            return
        done.wait(0.05)


def test_console_log_printed(w3: Web3, node: NodeProcess) -> None:
    a = eth_accounts(1)[0]
    key = a.private_key
    from contracts.build import compiled

    cheats = send(w3, key, {"data": compiled("Cheats")["Cheats"].blob, "gas": GAS})
    assert cheats["status"] == 1
    address = cheats["contractAddress"]
    # a deployment traces as a top-level CREATE of the blob to the new address
    t = _trace_tx(w3, cheats)
    assert (t["type"], t["from"], t["to"]) == ("CREATE", "0x" + a.address.hex(),
                                               address.lower())
    assert t["input"] == _hex(compiled("Cheats")["Cheats"].blob)
    assert int(t["gasUsed"], 16) == cheats["gasUsed"] and "error" not in t
    contract = w3.eth.contract(address=address, abi=abi("Cheats", "Cheats"))
    receipt = send(w3, key, {"to": address, "data": contract.encode_abi("hello", [5])})
    assert receipt["status"] == 1
    # Hardhat's formatting: "%s"/"%d" filled in, bools as true/false, bytes32 as hex
    want = ["hello 5", f"sender 0x{a.address.hex()} gave 5", "true", "-5",
            "0x" + "00" * 30 + "abcd", "5"]
    _wait_for(node, "console.log: 5")
    printed = [ln[len("console.log: "):].rstrip("\n") for ln in node.lines
               if ln.startswith("console.log: ")]
    # once: the gas estimate before the transaction prints nothing
    assert printed == want, node.output()[-2000:]
    # an eth_call prints too; the trace shows the console calls as staticcalls
    assert contract.functions.hello(8).call({"from": a.checksum}) == 9
    _wait_for(node, "console.log: 8")
    assert "console.log: hello 8\n" in node.lines
    t = _trace_tx(w3, receipt)
    consoles = [c for c in t["calls"] if c["to"] == CONSOLE]
    assert [c["type"] for c in consoles] == ["STATICCALL"] * 6
    assert consoles[0]["input"] == _hex(_sel("log(string,uint256)")
                                        + abi_encode(["string", "uint256"], ["hello", 5]))
    # tracing replays the transaction without printing it again
    assert sum(ln == "console.log: hello 5\n" for ln in node.lines) == 1


def test_trace_replays_the_earlier_transactions_of_its_block(contracts: Contracts) -> None:
    """Two transactions in one block (a pool mined by evm_mine): tracing the second
    re-executes the first, on whose state its output depends."""
    from tests.node.conftest import start_node, stop_node

    node = start_node("--block-time", "3600", "--workers", "0")
    try:
        w3 = Web3(Web3.HTTPProvider(node.http, request_kwargs={"timeout": 120}))
        a, b = eth_accounts(2)
        fee = 2 * w3.eth.get_block("latest")["baseFeePerGas"]

        def send(key: bytes, tx: dict[str, Any]) -> bytes:
            acct = EthAccount.from_key(key)
            tx = {"chainId": w3.eth.chain_id, "type": 2, "maxPriorityFeePerGas": 0,
                  "maxFeePerGas": fee, "gas": GAS,
                  "nonce": w3.eth.get_transaction_count(acct.address, "pending"), **tx}
            return bytes(w3.eth.send_raw_transaction(acct.sign_transaction(tx).raw_transaction))

        def mine(*hashes: bytes) -> list[Any]:
            rpc(w3, "evm_mine")
            return [w3.eth.get_transaction_receipt(h) for h in hashes]

        (child,) = mine(send(a.private_key, {
            "data": contracts.child_blob + abi_encode(["uint256"], [1])}))
        (factory,) = mine(send(a.private_key, {"data": contracts.factory_blob}))
        c, f = child["contractAddress"], factory["contractAddress"]
        add = _sel("add(uint256)") + abi_encode(["uint256"], [10])
        call_add = (_sel("callAdd(address,uint256)")
                    + abi_encode(["address", "uint256"], [c, 5]))
        first, second = mine(send(a.private_key, {"to": c, "data": add}),
                             send(b.private_key, {"to": f, "data": call_add}))
        assert first["blockNumber"] == second["blockNumber"]
        assert (first["transactionIndex"], second["transactionIndex"]) == (0, 1)
        assert first["status"] == second["status"] == 1
        t1, t2 = _trace_tx(w3, first), _trace_tx(w3, second)
        assert t1["output"] == _hex(abi_encode(["uint256"], [1 + 10]))
        assert t2["output"] == _hex(abi_encode(["uint256"], [1 + 10 + 5]))
        (inner,) = t2["calls"]
        assert (inner["type"], inner["to"], inner["output"]) == (
            "CALL", c.lower(), _hex(abi_encode(["uint256"], [16])))
        assert int(t2["gasUsed"], 16) == second["gasUsed"]
    finally:
        assert stop_node(node) == 0


def test_trace_substrate_signed_impersonated_and_blocks(w3: Web3,
                                                         deployed: dict[str, str]) -> None:
    """debug_traceTransaction of a Substrate-signed extrinsic (by its blake2 hash) and
    of an impersonated account's transaction; debug_traceBlockByNumber/ByHash list
    the same frames as {txHash, result}."""
    from chain_sim.extrinsic import ContractCall, sign
    from chain_sim.keys import Account, to_address

    factory, child = deployed["factory"].lower(), deployed["child"].lower()
    data = _sel("callAdd(address,uint256)") + abi_encode(["address", "uint256"], [child, 2])
    alice = Account.from_uri("//Alice")
    genesis = bytes.fromhex(rpc(w3, "chain_getBlockHash", 0)[2:])
    nonce = rpc(w3, "system_accountNextIndex", alice.ss58)
    xt = sign(alice, ContractCall(bytes.fromhex(factory[2:]), data, 0, GAS), nonce,
              genesis_hash=genesis)
    xt_hash = rpc(w3, "author_submitExtrinsic", _hex(xt.encode()))
    t = rpc(w3, "debug_traceTransaction", xt_hash, TRACER)
    assert (t["type"], t["from"], t["to"], t["input"], t["value"], t["gas"]) == (
        "CALL", _hex(to_address(alice.account_id)), factory, _hex(data), "0x0", hex(GAS))
    (inner,) = t["calls"]
    assert (inner["type"], inner["from"], inner["to"]) == ("CALL", factory, child)
    assert inner["input"] == _hex(_sel("add(uint256)") + abi_encode(["uint256"], [2]))
    assert "error" not in t and t["output"] == inner["output"]
    _check_gas(t)
    number = w3.eth.block_number
    block_hash = _hex(bytes(w3.eth.get_block(number)["hash"]))
    assert rpc(w3, "debug_traceBlockByNumber", hex(number), TRACER) == [
        {"txHash": xt_hash, "result": t}]
    assert rpc(w3, "debug_traceBlockByHash", block_hash, TRACER) == [
        {"txHash": xt_hash, "result": t}]

    # impersonated, with a value that is no whole number of native units (dust)
    fresh = EthAccount.create()
    rpc(w3, "hardhat_setBalance", fresh.address, hex(10**20))
    rpc(w3, "hardhat_impersonateAccount", fresh.address)
    make = _sel("make(uint256)") + abi_encode(["uint256"], [3])
    h = rpc(w3, "eth_sendTransaction", {"from": fresh.address, "to": deployed["factory"],
                                        "data": _hex(make), "value": hex(5)})
    receipt = w3.eth.get_transaction_receipt(h)
    assert receipt["status"] == 1
    t = rpc(w3, "debug_traceTransaction", h, TRACER)
    assert (t["type"], t["from"], t["to"], t["value"], t["input"]) == (
        "CALL", fresh.address.lower(), factory, "0x5", _hex(make))
    (create,) = t["calls"]
    assert (create["type"], create["value"]) == ("CREATE", "0x5")
    assert w3.eth.get_balance(w3.to_checksum_address(create["to"])) == 5    # dust arrived
    assert int(t["gasUsed"], 16) == receipt["gasUsed"]
    assert rpc(w3, "debug_traceBlockByNumber", hex(receipt["blockNumber"]), TRACER) == [
        {"txHash": h, "result": t}]
    only_top = rpc(w3, "debug_traceBlockByNumber", "latest",
                   {"tracer": "callTracer", "tracerConfig": {"onlyTopCall": True}})
    assert only_top == [{"txHash": h, "result": {k: v for k, v in t.items()
                                                 if k != "calls"}}]
    # blocks without calls: the genesis, a Dev setter's block
    assert rpc(w3, "debug_traceBlockByNumber", "0x0", TRACER) == []
    rpc(w3, "hardhat_setBalance", fresh.address, hex(10**20))
    assert rpc(w3, "debug_traceBlockByNumber", "latest", TRACER) == []
    err = w3.provider.make_request("debug_traceBlockByNumber",  # type: ignore[arg-type]
                                   [hex(w3.eth.block_number + 5), TRACER])["error"]
    assert (err["code"], err["message"]) == (-32000, "header not found")
    err = w3.provider.make_request("debug_traceBlockByHash",  # type: ignore[arg-type]
                                   ["0x" + "55" * 32, TRACER])["error"]
    assert (err["code"], err["message"]) == (-32000, "header for hash not found")
