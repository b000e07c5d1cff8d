"""Counter.sol: ``count`` starts at 0, ``inc`` adds one and emits Incremented(count),
``fib(n)`` returns the n-th Fibonacci number (fib(0) = 0, fib(1) = 1)."""

from __future__ import annotations

from contracts.harness import Account, TestChain
from executor.revive import keccak256
from tests.contracts.abis import COUNTER_ABI, COUNTER_BLOB


def fib(n: int) -> int:
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a


def test_count_starts_at_zero_and_increments(chain: TestChain, alice: Account) -> None:
    counter = chain.deploy(COUNTER_BLOB, COUNTER_ABI, sender=alice)
    assert counter.call("count") == 0
    for expected in (1, 2, 3):
        receipt = counter.transact("inc", sender=alice)
        assert receipt.success
        assert receipt.return_value is None
        assert [(e.name, e.args) for e in receipt.events] == [
            ("Incremented", {"newCount": expected})]
        assert receipt.events[0].address == counter.address
        assert receipt.events[0].topics == (keccak256(b"Incremented(uint256)"),)
        assert counter.call("count") == expected


def test_fib(chain: TestChain, alice: Account) -> None:
    counter = chain.deploy(COUNTER_BLOB, COUNTER_ABI, sender=alice)
    for n in (0, 1, 2, 10, 50, 93, 200):
        assert counter.call("fib", n) == fib(n) % 2**256


def test_call_is_a_dry_run(chain: TestChain, alice: Account) -> None:
    counter = chain.deploy(COUNTER_BLOB, COUNTER_ABI, sender=alice)
    nonce = chain.nonce(alice)
    counter.call("inc", sender=alice)  # runs, then rolls back
    assert counter.call("count") == 0
    assert chain.nonce(alice) == nonce


def test_non_payable_function_rejects_value(chain: TestChain, alice: Account) -> None:
    counter = chain.deploy(COUNTER_BLOB, COUNTER_ABI, sender=alice)
    before = chain.balance(alice)
    receipt = counter.transact("inc", sender=alice, value=1, check=False)
    assert not receipt.success and receipt.reverted
    assert chain.balance(alice) == before
    assert counter.call("count") == 0


def test_unknown_selector_reverts(chain: TestChain, alice: Account) -> None:
    counter = chain.deploy(COUNTER_BLOB, COUNTER_ABI, sender=alice)
    receipt = chain.send(counter, data=keccak256(b"nope()")[:4], sender=alice, check=False)
    assert receipt.reverted and receipt.output == b""


def test_gas_is_metered(chain: TestChain, alice: Account) -> None:
    counter = chain.deploy(COUNTER_BLOB, COUNTER_ABI, sender=alice)
    small = counter.transact("fib", 1, sender=alice, check=False).gas_used
    big = counter.transact("fib", 100, sender=alice, check=False).gas_used
    assert 0 < small < big
    out_of_gas = counter.transact("fib", 100, sender=alice, gas_limit=big - 1, check=False)
    assert not out_of_gas.success and out_of_gas.failure == "OutOfGas"
    assert out_of_gas.gas_used == big - 1
    assert counter.transact("fib", 100, sender=alice, gas_limit=big, check=False).success
