"""web3.py against the dev node: pallet-revive's value scaling (18-decimal wei over a
native balance 10^6 times coarser, sub-unit dust kept across transfers, fees in whole
native units) and state reads on past blocks (numbers, hashes, tags, EIP-1898
objects; geth's errors for blocks that do not exist)."""

from __future__ import annotations

from typing import Any

import pytest
from eth_abi import encode as abi_encode
from eth_account import Account as EthAccount
from web3 import Web3

from chain_sim.node.accounts import DEV_BALANCE_WEI, DEV_RATIO, eth_accounts
from chain_sim.workload import Contracts
from tests.node.conftest import abi, rpc, rpc_error, send

RATIO = 10**6          # pallet-revive's dev node: native 12 decimals, Ethereum 18


def test_units(w3: Web3) -> None:
    assert DEV_RATIO == RATIO
    assert rpc(w3, "system_properties")["tokenDecimals"] == 12
    # the chain charges 1 native unit per gas: 10^6 wei
    assert w3.eth.gas_price == RATIO
    assert w3.eth.get_block("latest")["baseFeePerGas"] == RATIO
    assert w3.eth.get_balance(eth_accounts()[9].checksum) == DEV_BALANCE_WEI == 10**22


def test_dust_kept_across_transfers(w3: Web3) -> None:
    """Values that are no whole number of native units arrive exactly; the sender
    pays them and fees that are whole native units; an account holding only dust
    sends it on."""
    sender = eth_accounts(8)[7]
    x, y = EthAccount.create(), EthAccount.create()
    values = [20_000 * RATIO + 123_456, 999_999, 1, RATIO - 1]
    total = 0
    for v in values:
        before = w3.eth.get_balance(sender.checksum)
        receipt = send(w3, sender.private_key, {"to": x.address, "value": v, "gas": 10**6})
        assert receipt["status"] == 1
        total += v
        assert w3.eth.get_balance(x.address) == total             # nothing lost
        paid = before - w3.eth.get_balance(sender.checksum) - v
        assert paid > 0 and paid % RATIO == 0                     # fees: native units
        assert paid >= receipt["gasUsed"] * receipt["effectiveGasPrice"]
    assert total == 20_002 * RATIO + 123_455                      # crossed native units
    # x pays a fee from what it got and sends part of it, dust included, to y
    fee_room = w3.eth.get_balance(x.address)
    receipt = send(w3, x.key, {"to": y.address, "value": 777})
    assert receipt["status"] == 1
    assert w3.eth.get_balance(y.address) == 777
    spent = fee_room - w3.eth.get_balance(x.address)
    assert spent - 777 >= receipt["gasUsed"] * receipt["effectiveGasPrice"]
    assert spent > 777                       # at least the length fee
    assert (spent - 777) % RATIO == 0
    # a balance of dust only: hardhat_setBalance keeps the wei below a native unit
    z = EthAccount.create()
    assert rpc(w3, "hardhat_setBalance", z.address, hex(RATIO - 3)) is True
    assert w3.eth.get_balance(z.address) == RATIO - 3
    assert rpc(w3, "hardhat_setBalance", z.address, hex(10**20 + 5)) is True
    assert w3.eth.get_balance(z.address) == 10**20 + 5


def test_insufficient_funds_in_wei(w3: Web3) -> None:
    """The balance check counts the dust: value + the largest fee, in wei."""
    poor = EthAccount.create()
    gas = 10_000
    need = gas * RATIO                     # the largest fee (and a few bytes more)
    rpc(w3, "hardhat_setBalance", poor.address, hex(need + 5))
    tx = {"type": 2, "chainId": w3.eth.chain_id, "nonce": 0, "to": eth_accounts(1)[0].checksum,
          "value": 10**9 + 7, "gas": gas, "maxFeePerGas": RATIO, "maxPriorityFeePerGas": 0}
    raw = EthAccount.sign_transaction(tx, poor.key).raw_transaction
    err = rpc_error(w3, "eth_sendRawTransaction", "0x" + bytes(raw).hex())
    assert "insufficient funds" in err["message"] and f"balance {need + 5}," in err["message"]
    # below the base fee (in wei): refused as geth refuses it
    tx |= {"maxFeePerGas": RATIO - 1, "value": 0}
    raw = EthAccount.sign_transaction(tx, poor.key).raw_transaction
    err = rpc_error(w3, "eth_sendRawTransaction", "0x" + bytes(raw).hex())
    assert "less than block base fee" in err["message"]
    assert w3.eth.get_balance(poor.address) == need + 5


@pytest.fixture(scope="module")
def history(w3: Web3, contracts: Contracts) -> dict[str, Any]:
    """A token deployed, then transfers: the blocks and balances in between."""
    a, b = eth_accounts(2)
    empty = w3.eth.block_number
    ctor = abi_encode(["string", "string", "uint256"], ["Old", "OLD", 1000])
    deploy = send(w3, a.private_key, {"data": contracts.token_blob + ctor})
    token = w3.eth.contract(address=deploy["contractAddress"], abi=abi("Token"))
    first = send(w3, a.private_key, {"to": token.address,
                                     "data": token.encode_abi("transfer", [b.checksum, 10])})
    second = send(w3, a.private_key, {"to": token.address,
                                      "data": token.encode_abi("transfer", [b.checksum, 5])})
    return {"token": token, "before_deploy": empty, "deploy": deploy, "first": first,
            "second": second}


def test_past_blocks(w3: Web3, history: dict[str, Any]) -> None:
    a, b = eth_accounts(2)
    token = history["token"]
    n0, n1 = history["before_deploy"], history["deploy"]["blockNumber"]
    n2, n3 = history["first"]["blockNumber"], history["second"]["blockNumber"]
    assert n0 < n1 < n2 < n3
    bal = token.functions.balanceOf(b.checksum)
    # eth_call by number, by hash, by EIP-1898 object, by tag
    assert bal.call(block_identifier=n1) == 0
    assert bal.call(block_identifier=n2) == 10
    assert bal.call(block_identifier=history["first"]["blockHash"]) == 10
    assert bal.call(block_identifier=n3) == bal.call() == 15
    h2 = "0x" + bytes(history["first"]["blockHash"]).hex()
    call = {"to": token.address, "data": token.encode_abi("balanceOf", [b.checksum])}
    for block in ({"blockHash": h2}, {"blockNumber": hex(n2)}, h2):
        assert int(rpc(w3, "eth_call", call, block), 16) == 10
    for tag in ("latest", "pending", "safe", "finalized"):
        assert int(rpc(w3, "eth_call", call, tag), 16) == 15
    # code and storage before the deployment and after
    assert w3.eth.get_code(token.address, n0) == b""
    assert w3.eth.get_code(token.address, n1) == w3.eth.get_code(token.address)
    assert w3.eth.get_code(token.address, "earliest") == b""
    assert int.from_bytes(w3.eth.get_storage_at(token.address, 2, n0), "big") == 0
    assert int.from_bytes(w3.eth.get_storage_at(token.address, 2, n1), "big") == 1000
    # an eth_call on a block before the code existed: no code there, an empty answer
    assert rpc(w3, "eth_call", call, hex(n0)) == "0x"
    # nonces and balances (each transaction pays its fee)
    nonce = w3.eth.get_transaction_count(a.checksum)
    assert w3.eth.get_transaction_count(a.checksum, n2) == nonce - 1
    assert w3.eth.get_transaction_count(a.checksum, n1) == nonce - 2
    assert w3.eth.get_transaction_count(a.checksum, "earliest") == 0
    assert w3.eth.get_transaction_count(a.checksum, "pending") == nonce
    paid = w3.eth.get_balance(a.checksum, n2) - w3.eth.get_balance(a.checksum, n3)
    assert paid > 0 and paid % RATIO == 0
    assert w3.eth.get_balance(a.checksum, "earliest") == DEV_BALANCE_WEI


def test_unknown_blocks(w3: Web3, history: dict[str, Any]) -> None:
    a = eth_accounts(1)[0]
    head = w3.eth.block_number
    future = hex(head + 1000)
    call = {"to": history["token"].address, "data": "0x"}
    for method, params in [("eth_getBalance", [a.checksum, future]),
                           ("eth_getCode", [a.checksum, future]),
                           ("eth_getTransactionCount", [a.checksum, future]),
                           ("eth_getStorageAt", [a.checksum, "0x0", future]),
                           ("eth_call", [call, future])]:
        err = rpc_error(w3, method, *params)
        assert (err["code"], err["message"]) == (-32000, "header not found"), method
    nowhere = "0x" + "77" * 32
    for block in (nowhere, {"blockHash": nowhere}):
        err = rpc_error(w3, "eth_getBalance", a.checksum, block)
        assert (err["code"], err["message"]) == (-32000, "header for hash not found")
        err = rpc_error(w3, "eth_call", call, block)
        assert (err["code"], err["message"]) == (-32000, "header for hash not found")
    err = rpc_error(w3, "eth_getBalance", a.checksum, "yesterday")
    assert err["code"] == -32602 and "block" in err["message"]
    err = rpc_error(w3, "eth_getStorageAt", a.checksum, hex(1 << 256), "latest")
    assert err["code"] == -32602 and "slot" in err["message"]
    err = rpc_error(w3, "eth_getBalance", a.checksum, {"blockHash": "0x12"})
    assert err["code"] == -32602 and "block.blockHash" in err["message"]
    assert w3.eth.block_number == head
