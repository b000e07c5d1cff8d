"""Signed Ethereum transactions: our decoder and sender recovery against eth-account's
own (legacy with and without EIP-155, EIP-2930, EIP-1559; deployments; bad bytes)."""

from __future__ import annotations

import pytest
from eth_account import Account as EthAccount

from chain_sim.ethtx import EthTxError, decode_eth_tx, split_code


@pytest.mark.parametrize("kind", ["legacy", "eip155", "2930", "1559", "deploy"])
def test_decode_matches_eth_account(kind: str) -> None:
    acct = EthAccount.from_key("0x" + "4c" * 32)
    tx: dict[str, object] = {"nonce": 7, "gas": 90_000, "value": 12345,
                             "to": "0x" + "11" * 20, "data": b"\x01\x02"}
    if kind == "legacy":
        tx["gasPrice"] = 3
    elif kind == "eip155":
        tx |= {"gasPrice": 3, "chainId": 420420420}
    elif kind == "2930":
        tx |= {"type": 1, "gasPrice": 3, "chainId": 5,
               "accessList": [{"address": "0x" + "22" * 20, "storageKeys": ["0x" + "00" * 32]}]}
    else:
        tx |= {"type": 2, "maxFeePerGas": 9, "maxPriorityFeePerGas": 2, "chainId": 5}
        if kind == "deploy":
            del tx["to"]
            tx["data"] = b"PVM\0\x00" + (13 + 3).to_bytes(8, "little") + b"abc" + b"ctor"
    signed = EthAccount.sign_transaction(tx, acct.key)
    raw = bytes(signed.raw_transaction)
    got = decode_eth_tx(raw)
    assert got.sender.hex() == EthAccount.recover_transaction(raw)[2:].lower()
    assert got.sender.hex() == acct.address[2:].lower()
    assert got.hash == bytes(signed.hash) and got.nonce == 7 and got.value == 12345
    assert got.chain_id == {"legacy": None, "eip155": 420420420}.get(kind, 5)
    if kind == "deploy":
        assert got.to is None and split_code(got.data) == (got.data[:16], b"ctor")
    else:
        assert got.to == bytes([0x11]) * 20 and got.data == b"\x01\x02"


def test_bad_transactions() -> None:
    acct = EthAccount.from_key("0x" + "4c" * 32)
    raw = bytes(EthAccount.sign_transaction({"type": 2, "nonce": 0, "gas": 1, "to": None,
                                             "value": 0, "data": b"", "chainId": 1,
                                             "maxFeePerGas": 1, "maxPriorityFeePerGas": 1},
                                            acct.key).raw_transaction)
    for bad in (b"", b"\x05abc", raw[:-1], raw + b"\x00", b"\x02" + b"\xc0"):
        with pytest.raises(EthTxError):
            decode_eth_tx(bad)
    with pytest.raises(EthTxError, match="PolkaVM blob"):
        split_code(b"\x60\x80")


@pytest.mark.parametrize("data_len", [0, 1, 20, 54, 55, 56, 200, 70_000])
@pytest.mark.parametrize("tx_type", [1, 2])
def test_typed_signing_payload_and_sender(tx_type: int, data_len: int) -> None:
    """The signed payload of a typed transaction, re-listed from its fields' own
    encodings, is ``rlp.encode`` of the decoded fields (short and long list and string
    headers, access lists), and the sender recovered from it is eth-account's; a
    signature of nobody is refused."""
    import os

    import rlp

    from chain_sim import ethtx

    acct = EthAccount.from_key("0x" + "5d" * 32)
    tx: dict[str, object] = {"type": tx_type, "nonce": data_len, "gas": 90_000,
                             "value": 10**20 + data_len, "data": os.urandom(data_len),
                             "chainId": 420420420, "to": "0x" + "33" * 20}
    if tx_type == 1:
        tx["gasPrice"] = 7
    else:
        tx |= {"maxFeePerGas": 9, "maxPriorityFeePerGas": 0}
    if data_len % 2 == 0:
        tx["accessList"] = [{"address": "0x" + "44" * 20,
                             "storageKeys": ["0x" + f"{i:064x}" for i in range(data_len % 5)]}]
    raw = bytes(EthAccount.sign_transaction(tx, acct.key).raw_transaction)
    fields = rlp.decode(raw[1:])
    assert ethtx._relist(ethtx._item_encodings(raw, 1)) == raw[1:]
    assert ethtx._relist(ethtx._item_encodings(raw, 1)[:-3]) == rlp.encode(fields[:-3])
    assert decode_eth_tx(raw).sender.hex() == acct.address[2:].lower()
    # r replaced by the x of no point on the curve (or of another key): refused or
    # someone else, never the signer
    bad = rlp.encode(fields[:-2] + [(2**256 - 2**32 - 978).to_bytes(32, "big"), fields[-1]])
    try:
        assert decode_eth_tx(raw[:1] + bad).sender.hex() != acct.address[2:].lower()
    except EthTxError as exc:
        assert "invalid signature" in str(exc)
