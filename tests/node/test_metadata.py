"""The V14 metadata: it round-trips through scalecodec byte for byte, and scalecodec,
driven only by it, decodes the chain's own extrinsics and events the way the chain
encodes them (an independent decoder checking our encoders)."""

from __future__ import annotations

from typing import Any

from scalecodec.base import RuntimeConfigurationObject, ScaleBytes
from scalecodec.type_registry import load_type_registry_preset

from chain_sim import Account, Chain, ContractCall, GenesisConfig, Transfer
from chain_sim.extrinsic import EthTransact, Unsigned, mortal_era, sign
from chain_sim.node.metadata import metadata_bytes
from chain_sim.node.substrate import encode_events
from chain_sim.workload import Contracts


def _runtime() -> tuple[RuntimeConfigurationObject, Any]:
    rc = RuntimeConfigurationObject()
    rc.update_type_registry(load_type_registry_preset("core"))
    md = rc.create_scale_object("MetadataVersioned", data=ScaleBytes(metadata_bytes()))
    md.decode()
    rc.add_portable_registry(md)
    return rc, md


def test_metadata_round_trip() -> None:
    raw = metadata_bytes()
    assert raw[:4] == b"meta" and raw[4] == 14
    rc = RuntimeConfigurationObject()
    rc.update_type_registry(load_type_registry_preset("core"))
    value = rc.create_scale_object("MetadataVersioned", data=ScaleBytes(raw)).decode()
    assert bytes(rc.create_scale_object("MetadataVersioned").encode(value).data) == raw


def test_scalecodec_decodes_our_extrinsics() -> None:
    rc, md = _runtime()
    alice = Account.from_uri("//Alice")
    g = bytes(range(32))
    cases = [
        (sign(alice, Transfer(bytes([7]) * 32, 10**20, True), 3, genesis_hash=g, tip=5),
         "Balances", "transfer_keep_alive"),
        (sign(alice, ContractCall(bytes([9]) * 20, b"\x01\x02", 4, 10**9, 10**18, 77), 0,
              genesis_hash=g, era=mortal_era(100, 64), era_hash=g),
         "Revive", "call"),
    ]
    for xt, module, function in cases:
        obj = rc.create_scale_object("Extrinsic", data=ScaleBytes(xt.encode()), metadata=md)
        v = obj.decode()
        assert v["call"]["call_module"] == module and v["call"]["call_function"] == function
        assert v["nonce"] == xt.nonce and v["tip"] == xt.tip
        assert v["address"] == "0x" + alice.account_id.hex()
        assert bytes.fromhex(v["signature"]["Sr25519"][2:]) == xt.signature
        args = {a["name"]: a["value"] for a in v["call"]["call_args"]}
        if function == "call":
            assert args["gas_limit"] == {"ref_time": 10**9, "proof_size": 77}
            assert args["value"] == 4
    unsigned = Unsigned(EthTransact(b"\x02\xf8abc")).encode()
    v = rc.create_scale_object("Extrinsic", data=ScaleBytes(unsigned), metadata=md).decode()
    assert v["call"]["call_function"] == "eth_transact"


def test_scalecodec_decodes_our_events() -> None:
    rc, md = _runtime()
    contracts = Contracts.build()
    alice = Account.from_uri("//Alice")
    chain = Chain.create(GenesisConfig(endowed=((alice.account_id, 10**24),)), None,
                         backend="interpreter")
    from chain_sim import InstantiateWithCode
    from contracts.abi import encode
    ctor = encode(contracts.token_abi.constructor_inputs, ["T", "T", 100])
    r = chain.build_block([chain.sign(alice, InstantiateWithCode(contracts.token_blob, ctor)),
                           chain.sign(alice, Transfer(bytes(32), 5), nonce=1)])
    raw = encode_events(r.block, [alice.account_id] * 2)
    events_ty = md.get_metadata_pallet("System").get_storage_function("Events")
    type_string = events_ty.get_value_type_string()
    decoded = rc.create_scale_object(type_string, data=ScaleBytes(raw), metadata=md).decode()
    names = [(e["extrinsic_idx"], e["event"]["module_id"], e["event"]["event_id"])
             for e in decoded]
    assert (0, "Revive", "ContractEmitted") in names
    assert (0, "Revive", "Instantiated") in names
    assert names[-3:] == [(1, "Balances", "Transfer"),
                          (1, "TransactionPayment", "TransactionFeePaid"),
                          (1, "System", "ExtrinsicSuccess")]
    fee = decoded[-2]["event"]["attributes"]["actual_fee"]
    assert fee == r.block.receipts[1].fee
