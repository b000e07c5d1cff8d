"""Value transfers between accounts and contracts, and rollback of nested state when a
frame reverts or fails (spec 4.1: everything a frame and its children did is undone,
only the sender's nonce survives a failed transaction)."""

from __future__ import annotations

import pytest

from contracts.harness import Account, TestChain, TransactionFailed
from tests.contracts.abis import (
    CHILD_ABI,
    CHILD_BLOB,
    COUNTER_ABI,
    COUNTER_BLOB,
    FACTORY_ABI,
    FACTORY_BLOB,
    MISC_ABI,
    MISC_BLOB,
)


def test_plain_transfer_between_accounts(chain: TestChain, alice: Account) -> None:
    carol = chain.new_account()
    before = chain.balance(alice)
    nonce = chain.nonce(alice)
    receipt = chain.send(carol, 12345, sender=alice)
    assert receipt.success and receipt.gas_used == 0
    assert chain.balance(carol) == 12345
    assert chain.balance(alice) == before - 12345
    assert chain.nonce(alice) == nonce + 1


def test_transfer_without_funds_fails_and_only_bumps_the_nonce(chain: TestChain) -> None:
    poor, carol = chain.new_account(balance=10), chain.new_account()
    receipt = chain.send(carol, 11, sender=poor, check=False)
    assert not receipt.success and receipt.failure == "TransferFailed"
    assert chain.balance(poor) == 10 and chain.balance(carol) == 0
    assert chain.nonce(poor) == 1


def test_deploy_with_value_to_a_payable_constructor(chain: TestChain, alice: Account) -> None:
    child = chain.deploy(CHILD_BLOB, CHILD_ABI, 3, sender=alice, value=99)
    assert chain.balance(child) == 99
    assert child.call("creator") == alice.address


def test_deploy_with_value_to_a_non_payable_constructor_fails(chain: TestChain,
                                                              alice: Account) -> None:
    before = chain.balance(alice)
    with pytest.raises(TransactionFailed, match=r"deploy( Counter)? reverted") as info:
        chain.deploy(COUNTER_BLOB, COUNTER_ABI, sender=alice, value=1)
    assert info.value.receipt.reverted and info.value.receipt.output == b""
    assert chain.balance(alice) == before


def test_reverted_transaction_keeps_only_the_nonce(chain: TestChain, alice: Account) -> None:
    misc = chain.deploy(MISC_BLOB, MISC_ABI, sender=alice)
    before, nonce = chain.balance(alice), chain.nonce(alice)
    receipt = misc.transact("deposit", sender=alice, value=3, check=False)
    assert receipt.reverted and receipt.events == []
    assert chain.balance(alice) == before and chain.balance(misc) == 0
    assert chain.nonce(alice) == nonce + 1


def test_out_of_gas_after_a_nested_create_rolls_everything_back(
        chain: TestChain, alice: Account) -> None:
    """Factory.make creates a Child (child storage, Created event, value, factory nonce)
    and then writes lastChild.  With one gas less than needed the transaction fails
    after the nested frame had succeeded: none of it may persist."""
    chain.upload(CHILD_BLOB)
    factory = chain.deploy(FACTORY_BLOB, FACTORY_ABI, sender=alice)
    snap = chain.snapshot()
    needed = factory.transact("make", 5, sender=alice, value=70, check=False).gas_used
    child_address = factory.call("lastChild")
    chain.revert(snap)

    before = chain.balance(alice)
    receipt = factory.transact("make", 5, sender=alice, value=70, gas_limit=needed - 1, check=False)
    assert not receipt.success and receipt.failure == "OutOfGas"
    assert receipt.events == []
    assert factory.call("lastChild") == bytes(20)
    assert chain.nonce(factory) == 0
    assert chain.balance(alice) == before and chain.balance(child_address) == 0
    assert factory.call("codeInfo", child_address) == (0, bytes(32))

    # with enough gas the same transaction creates the same child
    receipt = factory.transact("make", 5, sender=alice, value=70, gas_limit=needed, check=False)
    assert receipt.success and receipt.return_value == child_address
    assert chain.at(child_address, CHILD_ABI).call("get") == 5


def test_reverting_callee_rolls_back_its_own_changes_only(chain: TestChain,
                                                         alice: Account) -> None:
    """Factory.callAdd -> Child.add overflows: the child's frame reverts (Panic), the
    factory bubbles the revert up; a later successful callAdd is unaffected."""
    chain.upload(CHILD_BLOB)
    factory = chain.deploy(FACTORY_BLOB, FACTORY_ABI, sender=alice)
    child_address = factory.transact("make", 10, sender=alice, check=False).return_value
    child = chain.at(child_address, CHILD_ABI)
    receipt = factory.transact("callAdd", child_address, 2**256 - 5, sender=alice, check=False)
    assert receipt.reverted and receipt.revert_reason == "Panic(0x11)"
    assert child.call("get") == 10
    assert factory.transact("callAdd", child_address, 1, sender=alice).return_value == 11


def test_failed_inner_call_is_isolated_from_the_outer_frame(chain: TestChain,
                                                           alice: Account) -> None:
    """Factory.lowLevel(factory, callAdd(child, overflow)): the inner factory frame and
    the child revert, the outer frame carries on and succeeds."""
    chain.upload(CHILD_BLOB)
    factory = chain.deploy(FACTORY_BLOB, FACTORY_ABI, sender=alice)
    child_address = factory.transact("make", 10, sender=alice).return_value
    inner = factory.encode("callAdd", child_address, 2**256 - 1)
    receipt = factory.transact("lowLevel", factory, inner, sender=alice)
    assert receipt.success
    ok, ret = receipt.return_value
    assert ok is False and ret[:4] == bytes.fromhex("4e487b71")
    assert chain.at(child_address, CHILD_ABI).call("get") == 10


def test_snapshots_nest(chain: TestChain, alice: Account) -> None:
    counter = chain.deploy(COUNTER_BLOB, COUNTER_ABI, sender=alice)
    outer = chain.snapshot()
    counter.transact("inc", sender=alice)
    inner = chain.snapshot()
    counter.transact("inc", sender=alice)
    chain.set_block(number=99)
    assert counter.call("count") == 2
    chain.revert(inner)
    assert counter.call("count") == 1 and chain.block.number != 99
    counter.transact("inc", sender=alice)
    counter.transact("inc", sender=alice)
    assert counter.call("count") == 3
    chain.revert(outer)
    assert counter.call("count") == 0
