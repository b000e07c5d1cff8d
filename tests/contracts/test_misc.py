"""Misc.sol: keccak256, block and transaction context, balances, payable functions,
value transfers out of a contract, revert reasons, custom errors, panics, loops and
transient storage."""

from __future__ import annotations

import pytest

from contracts.abi import encode
from contracts.harness import Account, Contract, Reverted, TestChain
from executor.revive import keccak256
from tests.contracts.abis import MISC_ABI, MISC_BLOB


@pytest.fixture
def misc(chain: TestChain, alice: Account) -> Contract:
    return chain.deploy(MISC_BLOB, MISC_ABI, sender=alice)


@pytest.mark.parametrize("data", [b"", b"hello", bytes(range(256)) * 3])
def test_hash_is_keccak256(misc: Contract, alice: Account, data: bytes) -> None:
    receipt = misc.transact("hash", data, sender=alice)
    assert receipt.success and receipt.return_value == keccak256(data)
    assert misc.call("lastHash") == keccak256(data)


def test_hash_loop(misc: Contract) -> None:
    h = bytes(32)
    for i in range(5):
        h = keccak256(h + i.to_bytes(32, "big"))
    assert misc.call("hashLoop", 5) == h
    assert misc.call("hashLoop", 0) == bytes(32)


def test_block_and_transaction_context(chain: TestChain, misc: Contract, bob: Account) -> None:
    chain.set_block(number=1234, timestamp=1_750_000_000, chain_id=77)
    receipt = misc.transact("context", sender=bob)
    assert receipt.success
    assert receipt.return_value == (1234, 1_750_000_000, bob.address, bob.address, 77)
    assert [(e.name, e.args) for e in receipt.events] == [
        ("Ctx", {"number": 1234, "timestamp": 1_750_000_000, "chainId": 77,
                 "origin": bob.address})]


def test_more_context(chain: TestChain, misc: Contract) -> None:
    author = keccak256(b"author")[12:]
    chain.set_block(number=300, author=author, base_fee=7, gas_price=1000,
                    gas_limit=123_456_789_000)
    chain.state.block_hashes[299] = keccak256(b"block 299")
    coinbase, basefee, gasprice, gaslimit, gasleft, blockhash = misc.call("moreContext")
    assert coinbase == author
    assert basefee == 7
    assert gasprice == 1000
    assert gaslimit == 123_456_789_000
    assert 0 < gasleft < chain.block.gas_limit
    assert blockhash == keccak256(b"block 299")


def test_gasleft_reflects_the_gas_limit(misc: Contract) -> None:
    *_, big, _ = misc.call("moreContext", gas_limit=10_000_000)
    *_, small, _ = misc.call("moreContext", gas_limit=1_000_000)
    assert 0 < small < 1_000_000 < big < 10_000_000
    assert big - small == 9_000_000


def test_whoami(misc: Contract, bob: Account) -> None:
    assert misc.call("whoami", sender=bob) == (misc.address, bob.address)


def test_receive_accepts_value_and_emits_paid(chain: TestChain, misc: Contract,
                                             alice: Account) -> None:
    before = chain.balance(alice)
    receipt = chain.send(misc, 500, sender=alice)
    assert receipt.success
    assert [(e.name, e.args) for e in receipt.events] == [
        ("Paid", {"from": alice.address, "amount": 500})]
    assert chain.balance(misc) == 500
    assert chain.balance(alice) == before - 500
    assert misc.call("selfBalance") == 500


def test_deposit(chain: TestChain, misc: Contract, alice: Account) -> None:
    chain.send(misc, 100, sender=alice)
    receipt = misc.transact("deposit", sender=alice, value=40)
    assert receipt.success and receipt.return_value == 140
    assert misc.call("counter") == 40
    assert [(e.name, e.args) for e in receipt.events] == [
        ("Paid", {"from": alice.address, "amount": 40})]


def test_deposit_too_small_reverts_and_returns_the_value(chain: TestChain, misc: Contract,
                                                        alice: Account) -> None:
    before = chain.balance(alice)
    receipt = misc.transact("deposit", sender=alice, value=9, check=False)
    assert receipt.reverted
    assert receipt.error is not None
    assert (receipt.error.name, receipt.error.args) == ("TooSmall", (9, 10))
    assert receipt.output == keccak256(b"TooSmall(uint256,uint256)")[:4] + encode(
        ["uint256", "uint256"], [9, 10])
    assert chain.balance(alice) == before
    assert chain.balance(misc) == 0
    assert misc.call("counter") == 0


def test_balance_of_address(chain: TestChain, misc: Contract, alice: Account) -> None:
    assert misc.call("balanceOfAddr", alice) == chain.balance(alice)
    assert misc.call("balanceOfAddr", keccak256(b"nobody")[12:]) == 0
    chain.set_balance(alice, 31337)
    assert misc.call("balanceOfAddr", alice) == 31337


def test_pay_transfers_out(chain: TestChain, misc: Contract, alice: Account) -> None:
    payee = chain.new_account()
    chain.send(misc, 1000, sender=alice)
    receipt = misc.transact("pay", payee, 300, sender=alice)
    assert receipt.success
    assert chain.balance(payee) == 300
    assert chain.balance(misc) == 700


def test_pay_more_than_balance_reverts(chain: TestChain, misc: Contract,
                                       alice: Account) -> None:
    payee = chain.new_account()
    chain.send(misc, 10, sender=alice, check=False)
    receipt = misc.transact("pay", payee, 11, sender=alice, check=False)
    assert receipt.reverted and receipt.revert_reason == "insufficient balance"
    assert chain.balance(payee) == 0 and chain.balance(misc) == 10


def test_pay_to_a_contract_runs_its_receive(chain: TestChain, misc: Contract,
                                           alice: Account) -> None:
    other = chain.deploy(MISC_BLOB, MISC_ABI, sender=alice)
    chain.send(misc, 50, sender=alice)
    receipt = misc.transact("pay", other, 20, sender=alice)
    assert receipt.success
    assert chain.balance(other) == 20
    assert [(e.address, e.name, e.args) for e in receipt.events] == [
        (other.address, "Paid", {"from": misc.address, "amount": 20})]


def test_try_send(chain: TestChain, misc: Contract, alice: Account) -> None:
    payee = chain.new_account()
    chain.send(misc, 100, sender=alice)
    ok = misc.transact("trySend", payee, 60, sender=alice)
    assert ok.success and ok.return_value is True
    failed = misc.transact("trySend", payee, 60, sender=alice)
    assert failed.success and failed.return_value is False
    assert chain.balance(payee) == 60 and chain.balance(misc) == 40


def test_sum(misc: Contract) -> None:
    for n in (0, 1, 10, 1000):
        assert misc.call("sum", n) == n * (n + 1) // 2


@pytest.mark.parametrize(("code", "reason"), [
    (0, "plain revert reason"),
    (1, "TooSmall(1, 2)"),
    (2, "Panic(0x01)"),    # assert(false)
    (3, "Panic(0x11)"),    # 1 - 3 underflows
    (100, "Panic(0x11)"),
])
def test_fail_reasons(misc: Contract, alice: Account, code: int, reason: str) -> None:
    receipt = misc.transact("fail", code, sender=alice, check=False)
    assert receipt.reverted and not receipt.success
    assert receipt.revert_reason == reason


def test_fail_with_code_one_does_not_revert_for_underflow(misc: Contract) -> None:
    # code 1 reverts with the custom error before the arithmetic is reached
    with pytest.raises(Reverted) as info:
        misc.call("fail", 1)
    assert str(info.value.reason) == "TooSmall(1, 2)"


def test_transient_storage_round_trip(chain: TestChain, misc: Contract, alice: Account) -> None:
    assert misc.call("tstoreRoundTrip", 0xDEADBEEF) == 0xDEADBEEF
    assert misc.transact("tstoreRoundTrip", 5, sender=alice).return_value == 5
    # transient storage does not outlive the transaction
    assert chain.state.transient_size() == 0
