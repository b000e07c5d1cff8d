"""web3.py against the dev node: deploy Token.sol's blob with a signed EIP-1559
transaction, transfer, balanceOf through eth_call, Transfer logs, a revert reason as
web3 raises it, rejected transactions that change nothing, snapshots."""

from __future__ import annotations

from typing import Any

import pytest
from eth_abi import encode as abi_encode
from eth_account import Account as EthAccount
from web3 import Web3
from web3.exceptions import ContractLogicError, Web3RPCError

from chain_sim.node.accounts import eth_accounts
from chain_sim.workload import Contracts
from tests.node.conftest import abi, rpc, send

SUPPLY = 10**6


@pytest.fixture(scope="module")
def token(w3: Web3, contracts: Contracts) -> Any:
    dev = eth_accounts(2)
    ctor = abi_encode(["string", "string", "uint256"], ["Tok", "TK", SUPPLY])
    receipt = send(w3, dev[0].private_key, {"data": contracts.token_blob + ctor})
    assert receipt["status"] == 1 and receipt["contractAddress"]
    assert receipt["type"] == 2 and receipt["gasUsed"] > 0
    return w3.eth.contract(address=receipt["contractAddress"], abi=abi("Token"))


def test_accounts_chain_and_balances(w3: Web3) -> None:
    dev = eth_accounts()
    assert w3.eth.accounts[0] == "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
    assert w3.eth.accounts == [a.checksum for a in dev]
    assert w3.eth.chain_id == 420420420 and w3.net.version == "420420420"
    assert w3.eth.get_balance(dev[9].checksum) == 10**22


def test_deploy_transfer_call_logs(w3: Web3, token: Any) -> None:
    a, b = eth_accounts(2)
    assert w3.eth.get_code(token.address) != b""
    assert token.functions.balanceOf(a.checksum).call() == SUPPLY
    assert token.functions.name().call() == "Tok"
    before = w3.eth.get_balance(a.checksum)
    tx = token.functions.transfer(b.checksum, 1234).build_transaction(
        {"from": a.checksum, "nonce": w3.eth.get_transaction_count(a.checksum)})
    receipt = w3.eth.wait_for_transaction_receipt(
        w3.eth.send_raw_transaction(EthAccount.sign_transaction(tx, a.private_key)
                                    .raw_transaction), timeout=120, poll_latency=0.05)
    assert receipt["status"] == 1
    assert token.functions.balanceOf(b.checksum).call() == 1234
    assert token.functions.balanceOf(a.checksum).call() == SUPPLY - 1234
    (ev,) = token.events.Transfer().process_receipt(receipt)
    assert (ev["args"]["from"], ev["args"]["to"], ev["args"]["value"]) == (
        a.checksum, b.checksum, 1234)
    fee = before - w3.eth.get_balance(a.checksum)
    assert fee > 0 and fee >= receipt["gasUsed"] * receipt["effectiveGasPrice"]
    logs = token.events.Transfer().get_logs(from_block=0)
    assert [(x["args"]["from"], x["args"]["to"], x["args"]["value"]) for x in logs][-2:] == [
        ("0x" + "00" * 20, a.checksum, SUPPLY), (a.checksum, b.checksum, 1234)] or [
        (x["args"]["to"], x["args"]["value"]) for x in logs][-2:] == [
        (a.checksum, SUPPLY), (b.checksum, 1234)]
    only_to_b = w3.eth.get_logs({"fromBlock": 0, "address": token.address,
                                 "topics": [None, None, "0x" + "00" * 12 + b.address.hex()]})
    assert len(only_to_b) >= 1 and all(x["topics"][2][-20:] == b.address for x in only_to_b)
    tx_info = w3.eth.get_transaction(receipt["transactionHash"])
    assert tx_info["from"] == a.checksum and tx_info["to"] == token.address
    block = w3.eth.get_block(receipt["blockNumber"], full_transactions=False)
    assert receipt["transactionHash"] in block["transactions"]
    by_index = w3.eth.get_transaction_by_block(block["hash"], 0)
    assert by_index["hash"] == receipt["transactionHash"]
    assert w3.eth.get_transaction_by_block(receipt["blockNumber"], 0)["hash"] == by_index["hash"]


def test_revert_reason(w3: Web3, token: Any) -> None:
    a, b = eth_accounts(2)
    with pytest.raises(ContractLogicError, match="allowance too low"):
        token.functions.transferFrom(a.checksum, b.checksum, 1).call({"from": b.checksum})
    # a reverting transaction is included with status 0 and charges its fee
    n = w3.eth.get_transaction_count(b.checksum)
    receipt = send(w3, b.private_key, {
        "to": token.address, "gas": 50_000_000_000 // 100,
        "data": token.encode_abi("transferFrom", [a.checksum, b.checksum, 1])})
    assert receipt["status"] == 0
    assert w3.eth.get_transaction_count(b.checksum) == n + 1


@pytest.mark.parametrize("case", ["wrong chain id", "bad signature", "stale nonce",
                                  "insufficient funds"])
def test_rejected_transactions_change_nothing(w3: Web3, token: Any, case: str) -> None:
    a, b = eth_accounts(2)
    poor = EthAccount.create()
    head, bal = w3.eth.block_number, w3.eth.get_balance(a.checksum)
    tx = {"type": 2, "chainId": w3.eth.chain_id, "nonce": w3.eth.get_transaction_count(
        a.checksum), "to": b.checksum, "value": 1, "gas": 1_000_000,
        "maxFeePerGas": w3.eth.gas_price,
        "maxPriorityFeePerGas": 0}
    key: Any = a.private_key
    want = ""
    if case == "wrong chain id":
        tx["chainId"] = 1
        want = "invalid chain id"
    elif case == "stale nonce":
        tx["nonce"] = 0
        want = "nonce too low"
    elif case == "insufficient funds":
        key, tx["nonce"] = poor.key, 0
        want = "insufficient funds"
    raw = bytes(EthAccount.sign_transaction(tx, key).raw_transaction)
    if case == "bad signature":
        raw = raw[:-40] + bytes([raw[-40] ^ 1]) + raw[-39:]   # flip a bit of r/s
        want = "invalid signature|insufficient funds"   # another (empty) sender, or none
    with pytest.raises((Web3RPCError, ValueError), match=want):
        w3.eth.send_raw_transaction(raw)
    assert w3.eth.block_number == head and w3.eth.get_balance(a.checksum) == bal


def test_nested_snapshots(w3: Web3, token: Any) -> None:
    a, b = eth_accounts(2)

    def bal() -> int:
        return int(token.functions.balanceOf(b.checksum).call())

    def transfer(n: int) -> None:
        r = send(w3, a.private_key, {"to": token.address, "data": token.encode_abi(
            "transfer", [b.checksum, n])})
        assert r["status"] == 1

    start, head = bal(), w3.eth.block_number
    outer = w3.provider.make_request("evm_snapshot", [])["result"]
    transfer(5)
    inner = w3.provider.make_request("evm_snapshot", [])["result"]
    transfer(7)
    assert bal() == start + 12
    assert w3.provider.make_request("evm_revert", [inner])["result"] is True
    assert bal() == start + 5
    transfer(11)
    assert w3.provider.make_request("evm_revert", [outer])["result"] is True
    assert bal() == start and w3.eth.block_number == head
    # both are used up
    assert w3.provider.make_request("evm_revert", [inner])["result"] is False
    assert w3.provider.make_request("evm_revert", [outer])["result"] is False
    transfer(1)        # the chain goes on from the snapshot
    assert bal() == start + 1


def test_mine_and_time(w3: Web3) -> None:
    head = w3.eth.block_number
    w3.provider.make_request("hardhat_mine", ["0x3"])
    assert w3.eth.block_number == head + 3
    ts = w3.eth.get_block("latest")["timestamp"]
    w3.provider.make_request("evm_setNextBlockTimestamp", [ts + 1000])
    w3.provider.make_request("evm_mine", [])
    assert w3.eth.get_block("latest")["timestamp"] == ts + 1000


def test_dev_state_methods(w3: Web3, token: Any, contracts: Contracts) -> None:
    a, b = eth_accounts(2)
    fresh = EthAccount.create()
    assert rpc(w3, "hardhat_setBalance", fresh.address, hex(123)) is True
    assert w3.eth.get_balance(fresh.address) == 123
    assert rpc(w3, "anvil_setNonce", fresh.address, hex(5)) is True
    assert w3.eth.get_transaction_count(fresh.address) == 5
    # Solidity's slot 2 is totalSupply (decimals is a constant, owner immutable)
    supply = token.functions.totalSupply().call()
    assert int.from_bytes(w3.eth.get_storage_at(token.address, 2), "big") == supply
    rpc(w3, "hardhat_setStorageAt", token.address, "0x2",
        "0x" + (supply + 9).to_bytes(32, "big").hex())
    assert token.functions.totalSupply().call() == supply + 9
    other = "0x" + "ab" * 20
    rpc(w3, "hardhat_setCode", other, "0x" + contracts.token_blob.hex())
    assert bytes(w3.eth.get_code(w3.to_checksum_address(other))) == contracts.token_blob
    copy = w3.eth.contract(address=w3.to_checksum_address(other), abi=abi("Token"))
    assert copy.functions.totalSupply().call() == 0     # the code, not the storage
    # impersonation: send from an address whose key nobody has
    send(w3, a.private_key, {"to": token.address,
                              "data": token.encode_abi("transfer", [fresh.address, 50])})
    rpc(w3, "hardhat_setBalance", fresh.address, hex(10**20))
    rpc(w3, "hardhat_impersonateAccount", fresh.address)
    h = rpc(w3, "eth_sendTransaction", {"from": fresh.address, "to": token.address,
                                    "data": token.encode_abi("transfer", [b.checksum, 20])})
    receipt = w3.eth.get_transaction_receipt(h)
    assert receipt["status"] == 1 and receipt["from"] == fresh.address
    assert token.functions.balanceOf(fresh.address).call() == 30
    assert w3.eth.get_transaction_count(fresh.address) == 6
    rpc(w3, "hardhat_stopImpersonatingAccount", fresh.address)
    answer = w3.provider.make_request("eth_sendTransaction", [{  # type: ignore[arg-type]
        "from": fresh.address, "to": token.address, "data": "0x"}])
    assert "impersonated" in answer["error"]["message"]


def test_out_of_gas_is_a_failed_receipt_with_fee(w3: Web3, token: Any) -> None:
    a, b = eth_accounts(2)
    before, n = w3.eth.get_balance(a.checksum), w3.eth.get_transaction_count(a.checksum)
    held = token.functions.balanceOf(b.checksum).call()
    receipt = send(w3, a.private_key, {"to": token.address, "gas": 2000, "data":
                                        token.encode_abi("transfer", [b.checksum, 1])})
    assert receipt["status"] == 0 and 0 < receipt["gasUsed"] <= 2000
    assert w3.eth.get_transaction_count(a.checksum) == n + 1
    assert token.functions.balanceOf(b.checksum).call() == held     # nothing transferred
    paid = before - w3.eth.get_balance(a.checksum)
    assert paid >= receipt["gasUsed"] * receipt["effectiveGasPrice"] and paid > 0
