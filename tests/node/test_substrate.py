"""py-substrate-interface, unmodified and without a custom type registry, against the
dev node over WebSocket: metadata, storage, signed transfers (immortal and mortal),
a contract deployed and called with wait_for_inclusion, receipts and events."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from eth_abi import encode as abi_encode
from substrateinterface import Keypair, KeypairType, SubstrateInterface

from chain_sim.keys import Account
from chain_sim.node.accounts import DEV_BALANCE
from chain_sim.workload import Contracts
from tests.node.conftest import NodeProcess


@pytest.fixture(scope="module")
def substrate(node: NodeProcess) -> Iterator[SubstrateInterface]:
    si = SubstrateInterface(url=node.ws)
    try:
        yield si
    finally:
        si.close()


def _free(si: SubstrateInterface, who: str) -> int:
    return int(si.query("System", "Account", [who]).value["data"]["free"])


def _events(receipt: Any) -> list[tuple[str, str, Any]]:
    return [(e.value["module_id"], e.value["event_id"], e.value["attributes"])
            for e in receipt.triggered_events]


def test_chain_metadata_and_balances(substrate: SubstrateInterface) -> None:
    assert substrate.chain == "PolkaVM Dev" and substrate.ss58_format == 42
    substrate.init_runtime()
    md = substrate.metadata
    assert [p.name for p in md.pallets] == ["System", "Timestamp", "Balances",
                                             "TransactionPayment", "Revive", "Dev"]
    names = [c.name for c in md.get_metadata_pallet("Revive").calls]
    assert names == ["eth_transact", "call", "instantiate", "instantiate_with_code",
                     "upload_code"]
    alice = Account.from_uri("//Alice")
    assert _free(substrate, alice.ss58) == DEV_BALANCE
    assert substrate.get_constant("System", "SS58Prefix").value == 42
    # pallet-revive's value scaling: native 12 decimals, 10^6 wei per native unit;
    # the dev accounts hold 10^22 wei, dust (wei below a unit) is read by address
    assert substrate.get_constant("Revive", "NativeToEthRatio").value == 10**6
    assert substrate.properties["tokenDecimals"] == 12
    assert DEV_BALANCE * 10**6 == 10**22
    assert substrate.query("Revive", "AccountDust", ["0x" + "00" * 20]).value == 0
    assert substrate.query("System", "Number").value == int(
        substrate.get_block_header()["header"]["number"])


@pytest.mark.parametrize("era", [None, {"period": 64}])
def test_signed_transfer(substrate: SubstrateInterface, era: Any) -> None:
    alice, bob = Keypair.create_from_uri("//Alice"), Keypair.create_from_uri("//Bob")
    before_a, before_b = _free(substrate, alice.ss58_address), _free(substrate, bob.ss58_address)
    call = substrate.compose_call("Balances", "transfer_keep_alive",
                                  {"dest": bob.ss58_address, "value": 12345})
    xt = substrate.create_signed_extrinsic(call, keypair=alice, era=era)
    receipt = substrate.submit_extrinsic(xt, wait_for_inclusion=True)
    assert receipt.is_success, receipt.error_message
    fee = receipt.total_fee_amount
    assert fee > 0
    assert _free(substrate, bob.ss58_address) == before_b + 12345
    assert _free(substrate, alice.ss58_address) == before_a - 12345 - fee
    evs = _events(receipt)
    assert ("Balances", "Transfer") in [(m, e) for m, e, _ in evs]
    assert evs[-1][:2] == ("System", "ExtrinsicSuccess")


def test_ed25519_signer(substrate: SubstrateInterface) -> None:
    alice = Keypair.create_from_uri("//Alice")
    ed = Keypair.create_from_seed("0x" + "5e" * 32, crypto_type=KeypairType.ED25519)
    fund = substrate.create_signed_extrinsic(substrate.compose_call(
        "Balances", "transfer_allow_death", {"dest": ed.ss58_address, "value": 10**12}),
        keypair=alice)
    assert substrate.submit_extrinsic(fund, wait_for_inclusion=True).is_success
    back = substrate.create_signed_extrinsic(substrate.compose_call(
        "Balances", "transfer_allow_death", {"dest": alice.ss58_address, "value": 5}),
        keypair=ed)
    assert substrate.submit_extrinsic(back, wait_for_inclusion=True).is_success


def test_invalid_extrinsic_is_refused(substrate: SubstrateInterface) -> None:
    from substrateinterface.exceptions import SubstrateRequestException

    alice = Keypair.create_from_uri("//Alice")
    call = substrate.compose_call("Balances", "transfer_keep_alive",
                                  {"dest": alice.ss58_address, "value": 1})
    stale = substrate.create_signed_extrinsic(call, keypair=alice, nonce=0)
    head = substrate.get_block_number(None)
    with pytest.raises(SubstrateRequestException, match="stale nonce|Invalid"):
        substrate.submit_extrinsic(stale, wait_for_inclusion=True)
    assert substrate.get_block_number(None) == head


def _raw(v: Any) -> bytes:
    """A Vec<u8> as scalecodec decodes it (0x hex, or text when it looks like text)."""
    if isinstance(v, str) and v.startswith("0x"):
        return bytes.fromhex(v[2:])
    return v.encode("latin-1") if isinstance(v, str) else bytes(v)


def _eth_call(node: NodeProcess, to: str, data: bytes) -> bytes:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_call",
                       "params": [{"to": to, "data": "0x" + data.hex()}, "latest"]}).encode()
    req = urllib.request.Request(node.http, data=body,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=120) as r:
        return bytes.fromhex(json.loads(r.read())["result"][2:])


def test_contract_deploy_and_call(substrate: SubstrateInterface, contracts: Contracts,
                                  node: NodeProcess) -> None:
    alice = Keypair.create_from_uri("//Alice")
    gas = {"ref_time": 5_000_000_000, "proof_size": 1_000_000}
    ctor = abi_encode(["string", "string", "uint256"], ["Tok", "TK", 777])
    deploy = substrate.compose_call("Revive", "instantiate_with_code", {
        "value": 0, "gas_limit": gas, "storage_deposit_limit": 10**20,
        "code": "0x" + contracts.token_blob.hex(), "data": "0x" + ctor.hex(), "salt": None})
    receipt = substrate.submit_extrinsic(
        substrate.create_signed_extrinsic(deploy, keypair=alice), wait_for_inclusion=True)
    assert receipt.is_success, receipt.error_message
    inst = [a for m, e, a in _events(receipt) if (m, e) == ("Revive", "Instantiated")]
    assert len(inst) == 1
    token = inst[0]["contract"]
    bob = Account.from_uri("//Bob")
    data = contracts.token_abi.function("transfer").encode_call([bob.address, 70])
    call = substrate.compose_call("Revive", "call", {
        "dest": token, "value": 0, "gas_limit": gas, "storage_deposit_limit": 10**20,
        "data": "0x" + data.hex()})
    receipt = substrate.submit_extrinsic(
        substrate.create_signed_extrinsic(call, keypair=alice), wait_for_inclusion=True)
    assert receipt.is_success, receipt.error_message
    emitted = [a for m, e, a in _events(receipt) if (m, e) == ("Revive", "ContractEmitted")]
    assert len(emitted) == 1 and emitted[0]["contract"] == token
    assert len(emitted[0]["topics"]) == 3        # Transfer(from, to, value): 2 indexed
    assert int.from_bytes(_raw(emitted[0]["data"]), "big") == 70
    balance = contracts.token_abi.function("balanceOf").encode_call([bob.address])
    assert int.from_bytes(_eth_call(node, token, balance), "big") == 70
    # a call that reverts: included, failed, with the pallet's error
    too_much = contracts.token_abi.function("transfer").encode_call([bob.address, 10**9])
    call = substrate.compose_call("Revive", "call", {
        "dest": token, "value": 0, "gas_limit": gas, "storage_deposit_limit": 10**20,
        "data": "0x" + too_much.hex()})
    receipt = substrate.submit_extrinsic(
        substrate.create_signed_extrinsic(call, keypair=alice), wait_for_inclusion=True)
    assert not receipt.is_success
    assert receipt.error_message["name"] == "ContractReverted"
    assert receipt.total_fee_amount > 0


def test_new_heads_subscription(substrate: SubstrateInterface, node: NodeProcess) -> None:
    seen: list[int] = []

    def handler(obj: Any, update_nr: int, subscription_id: str) -> Any:
        seen.append(int(obj["header"]["number"]))
        if update_nr == 0:          # the current head; make a new block
            body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "evm_mine"}).encode()
            urllib.request.urlopen(urllib.request.Request(
                node.http, data=body, headers={"Content-Type": "application/json"}),
                timeout=120).read()
            return None
        return obj

    substrate.subscribe_block_headers(handler)
    assert len(seen) == 2 and seen[1] == seen[0] + 1
