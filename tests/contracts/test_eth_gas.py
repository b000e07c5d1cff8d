"""Ethereum gas as pallet-revive reports it (executor.revive.ethgas) and on the harness's
receipts and gas report, on every backend."""

from __future__ import annotations

import pytest

from contracts.build import compiled
from contracts.harness import Account, Contract, TestChain
from executor.revive.ethgas import (
    CENTS,
    DEFAULT_ETH_GAS,
    MILLICENTS,
    EthGasSchedule,
    decode_gas,
    encode_gas,
    eth_transact_length,
    eth_tx_length,
)


def test_gas_encoding_matches_the_pallets_own_test_values() -> None:
    # polkadot-sdk substrate/frame/revive/src/evm/gas_encoder.rs, its unit tests
    assert encode_gas(111_111_999_999_999, 222_999_999, 333_999_999, 444_999_999) \
        == 111_112_000_282_929
    assert encode_gas(0, 0, 0, 0) == 0
    assert encode_gas(1, 0, 0, 0) == 1_000_000
    assert encode_gas(0, 2**64 - 1, 2**64 - 1, 1 << 63) == 646_463
    assert decode_gas(646_463) == (2**64 - 1, 2**64 - 1, 1 << 63)
    ref_time, proof, deposit = decode_gas(111_112_000_282_929)
    assert ref_time >= 222_999_999 and proof >= 333_999_999 and deposit >= 444_999_999
    with pytest.raises(ValueError, match="above 64"):
        decode_gas(65_00)


def test_transaction_length_matches_a_signed_transaction() -> None:
    # the RLP length against eth-account's signed EIP-1559 transactions (a second
    # implementation); r and s shorter than 32 bytes shorten the real one
    eth_account = pytest.importorskip("eth_account")
    account = eth_account.Account.from_key(bytes(31) + b"\x07")
    for i, (to, data, nonce, gas, value) in enumerate([
            (bytes(range(20)), b"", 0, 21_000, 0), (None, bytes(3000), 1, 2**60, 10**18),
            (b"\x11" * 20, bytes(68), 70_000, 10**13, 1), (b"\x22" * 20, b"\x01", 127, 1, 0)]):
        tx = dict(type=2, chainId=420_420_420, nonce=nonce, maxFeePerGas=1000,
                  maxPriorityFeePerGas=1000, gas=gas, value=value, data=data)
        if to is not None:
            tx["to"] = to
        signed = account.sign_transaction(tx)
        short = (signed.r < 2**248) + (signed.s < 2**248) + (data == b"\x01")
        assert eth_tx_length(to=to, data=data, value=value, nonce=nonce, chain_id=420_420_420,
                             gas=gas, gas_price=1000) == len(signed.raw_transaction) + short, i


def _compact_len(n: int) -> int:
    return 1 if n < 64 else 2 if n < 2**14 else 4


def test_receipt_eth_gas(chain: TestChain, token: Contract, alice: Account) -> None:
    bob = chain.new_account()
    nonce = chain.nonce(alice)
    receipt = token.transact("transfer", bob, 5, sender=alice)
    # bob's balance is a new storage item: 32-byte key, 32-byte value
    assert receipt.storage_deposit == 20 * CENTS + 64 * MILLICENTS
    # the estimate: its last two digits are the log2 of the deposit limit, the next two
    # of the proof size (0), then of the ref_time; above them the fee as gas
    estimate = receipt.eth_gas_estimate
    assert estimate is not None
    assert estimate % 100 == (receipt.storage_deposit - 1).bit_length()
    assert estimate // 100 % 100 == 0
    assert estimate // 10_000 % 100 == (receipt.gas_used * 10_000 - 1).bit_length()
    # gasUsed: the fee of an eth_transact extrinsic of the signed transaction's length,
    # spelled out: base weight + length fee + weight fee, times 10^6 / 1000 wei per gas
    raw_len = eth_tx_length(to=token.address, data=token.encode("transfer", bob, 5), value=0,
                            nonce=nonce, chain_id=chain.block.chain_id, gas=estimate,
                            gas_price=1000)
    body = 1 + 2 + _compact_len(raw_len) + raw_len
    length = _compact_len(body) + body
    fee = 125_000_000 + length * 10**8 + receipt.gas_used * 10_000
    assert receipt.eth_gas == fee * 10**6 // 1000
    assert receipt.eth_gas < estimate  # the estimate rounds the weight up
    # the same transfer again stores nothing new: no deposit
    again = token.transact("transfer", bob, 5, sender=alice)
    assert again.storage_deposit == 0 and again.eth_gas_estimate is not None
    assert again.eth_gas_estimate % 100 == 0


def test_deposit_counts_code_and_contract(chain: TestChain, alice: Account) -> None:
    art = compiled("Counter")["Counter"]
    counter = chain.deploy(art.blob, art.abi, sender=alice)
    receipt = counter.deploy_receipt
    assert receipt is not None and receipt.eth_gas is not None
    # the code (one item, its bytes) and the contract account (one item); the
    # constructor stores nothing in Counter
    assert receipt.storage_deposit == DEFAULT_ETH_GAS.deposit(2, len(art.blob))
    # deploying the same code again: the code is there already
    second = chain.deploy(art.blob, art.abi, sender=alice).deploy_receipt
    assert second is not None and second.storage_deposit == DEFAULT_ETH_GAS.deposit(1, 0)


def test_a_schedule_of_your_runtime(chain: TestChain, token: Contract, alice: Account) -> None:
    bob = chain.new_account()
    chain.eth_gas = EthGasSchedule(byte_fee=0, base_ref_time=0, gas_price=10**6)
    receipt = token.transact("transfer", bob, 1, sender=alice)
    # only the weight fee: PolkaVM gas x 10,000 ps x 1 unit/ps x 10^6 wei / 10^6 wei/gas
    assert receipt.eth_gas == receipt.gas_used * 10_000
    assert eth_transact_length(to=None, data=b"", value=0, nonce=0, chain_id=1, gas=0,
                               gas_price=1) > 0
