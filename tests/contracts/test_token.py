"""Token.sol: an ERC20-like token with an immutable owner, Transfer/Approval events,
a custom error and ``require`` messages."""

from __future__ import annotations

import pytest

from contracts.harness import Account, Contract, TestChain
from executor.revive import keccak256
from tests.contracts.abis import TOKEN_ABI, TOKEN_BLOB

# keccak256("Transfer(address,address,uint256)") and keccak256("Approval(...)"): the
# well-known ERC-20 topics.
TRANSFER_TOPIC = bytes.fromhex("ddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef")
APPROVAL_TOPIC = bytes.fromhex("8c5be1e5ebec7d5bd14f71427d1e84f3dd0314c0f7b2291e5b200ac8c7c3b925")
MAX = 2**256 - 1


@pytest.fixture
def token(chain: TestChain, alice: Account) -> Contract:
    return chain.deploy(TOKEN_BLOB, TOKEN_ABI, "Token", "TOK", 1_000_000, sender=alice)


def test_constructor_state(token: Contract, alice: Account, bob: Account) -> None:
    assert token.call("name") == "Token"
    assert token.call("symbol") == "TOK"
    assert token.call("decimals") == 18
    assert token.call("totalSupply") == 1_000_000
    assert token.call("owner") == alice.address
    assert token.call("balanceOf", alice) == 1_000_000
    assert token.call("balanceOf", bob) == 0
    receipt = token.deploy_receipt
    assert receipt is not None
    assert [(e.name, e.args) for e in receipt.events] == [
        ("Transfer", {"from": bytes(20), "to": alice.address, "value": 1_000_000})]


def test_transfer(token: Contract, alice: Account, bob: Account) -> None:
    receipt = token.transact("transfer", bob, 250, sender=alice)
    assert receipt.success and receipt.return_value is True
    assert token.call("balanceOf", alice) == 999_750
    assert token.call("balanceOf", bob) == 250
    assert token.call("totalSupply") == 1_000_000
    (event,) = receipt.events
    assert event.name == "Transfer"
    assert event.args == {"from": alice.address, "to": bob.address, "value": 250}
    assert event.topics == (TRANSFER_TOPIC, bytes(12) + alice.address, bytes(12) + bob.address)
    assert event.data == (250).to_bytes(32, "big")


def test_transfer_more_than_balance_reverts_with_custom_error(
        token: Contract, alice: Account, bob: Account) -> None:
    token.transact("transfer", bob, 10, sender=alice, check=False)
    receipt = token.transact("transfer", alice, 11, sender=bob, check=False)
    assert not receipt.success and receipt.reverted
    assert receipt.error is not None
    assert receipt.error.name == "InsufficientBalance"
    assert receipt.error.args == (10, 11)
    assert receipt.revert_reason == "InsufficientBalance(10, 11)"
    assert receipt.events == []
    assert token.call("balanceOf", bob) == 10
    assert token.call("balanceOf", alice) == 999_990


def test_approve_and_transfer_from(chain: TestChain, token: Contract, alice: Account,
                                   bob: Account) -> None:
    carol = chain.new_account()
    receipt = token.transact("approve", bob, 500, sender=alice)
    assert receipt.success and receipt.return_value is True
    (event,) = receipt.events
    assert event.topics[0] == APPROVAL_TOPIC
    assert (event.name, event.args) == (
        "Approval", {"owner": alice.address, "spender": bob.address, "value": 500})
    assert token.call("allowance", alice, bob) == 500
    assert token.call("allowance", bob, alice) == 0

    receipt = token.transact("transferFrom", alice, carol, 200, sender=bob)
    assert receipt.success and receipt.return_value is True
    assert [(e.name, e.args) for e in receipt.events] == [
        ("Transfer", {"from": alice.address, "to": carol.address, "value": 200})]
    assert token.call("allowance", alice, bob) == 300
    assert token.call("balanceOf", carol) == 200
    assert token.call("balanceOf", alice) == 999_800


def test_transfer_from_over_allowance_reverts(token: Contract, alice: Account,
                                              bob: Account) -> None:
    token.transact("approve", bob, 100, sender=alice, check=False)
    receipt = token.transact("transferFrom", alice, bob, 101, sender=bob, check=False)
    assert receipt.reverted and receipt.revert_reason == "allowance too low"
    assert receipt.error is not None and receipt.error.name == "Error"
    assert token.call("allowance", alice, bob) == 100


def test_failed_transfer_from_rolls_back_the_allowance(
        chain: TestChain, token: Contract, alice: Account, bob: Account) -> None:
    # the allowance is lowered before the balance check fails: the revert undoes it
    carol = chain.new_account()
    token.transact("approve", carol, 1000, sender=bob, check=False)
    receipt = token.transact("transferFrom", bob, alice, 5, sender=carol, check=False)
    assert receipt.revert_reason == "InsufficientBalance(0, 5)"
    assert token.call("allowance", bob, carol) == 1000


def test_infinite_allowance_is_not_spent(token: Contract, alice: Account, bob: Account) -> None:
    token.transact("approve", bob, MAX, sender=alice)
    assert token.transact("transferFrom", alice, bob, 7, sender=bob).success
    assert token.call("allowance", alice, bob) == MAX


def test_only_owner_mints(token: Contract, alice: Account, bob: Account) -> None:
    receipt = token.transact("mint", bob, 5, sender=bob, check=False)
    assert receipt.reverted and receipt.revert_reason == "not owner"
    receipt = token.transact("mint", bob, 5, sender=alice, check=False)
    assert receipt.success
    assert [(e.name, e.args) for e in receipt.events] == [
        ("Transfer", {"from": bytes(20), "to": bob.address, "value": 5})]
    assert token.call("totalSupply") == 1_000_005
    assert token.call("balanceOf", bob) == 5


def test_balance_overflow_panics(token: Contract, alice: Account, bob: Account) -> None:
    token.transact("mint", bob, MAX - 1_000_000, sender=alice, check=False)
    receipt = token.transact("mint", bob, 1, sender=alice, check=False)
    assert receipt.reverted and receipt.revert_reason == "Panic(0x11)"


def test_impersonation(chain: TestChain, token: Contract, alice: Account) -> None:
    stranger = keccak256(b"anyone")[12:]
    token.transact("transfer", stranger, 3, sender=alice)
    receipt = token.transact("transfer", alice, 1, sender=stranger)
    assert receipt.success
    assert receipt.events[0].args["from"] == stranger
    assert token.call("balanceOf", stranger) == 2
