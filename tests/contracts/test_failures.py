"""Failures that explain themselves: Reverted with the decoded reason, the receipt and
the call trace; check=False; expect_revert / expect_emit; calls to addresses without
code and ABI mismatches; call traces of successful transactions."""

from __future__ import annotations

import pytest

from contracts.build import compiled
from contracts.harness import (
    AbiMismatch,
    Account,
    Contract,
    NoContractCode,
    Reverted,
    TestChain,
    TransactionFailed,
)
from executor.errors import PvmError
from executor.revive import keccak256


def test_reverted_carries_reason_receipt_and_trace(chain: TestChain, reverts: Contract,
                                                   alice: Account) -> None:
    nonce = chain.nonce(alice)
    with pytest.raises(Reverted) as info:
        reverts.transact("setThenRequire", 7, False, sender=alice)
    exc = info.value
    assert isinstance(exc, TransactionFailed) and isinstance(exc, PvmError)
    assert exc.reason is not None and exc.reason.name == "Error"
    assert exc.reason.args == ("require failed",)
    assert exc.receipt.reverted and exc.receipt.revert_reason == "require failed"
    assert "Reverts.setThenRequire(uint256,bool) reverted: Error: require failed" in str(exc)
    # the trace: one frame, the same gas as the receipt, shown in the message
    assert exc.trace is not None and exc.trace.reverted
    assert exc.trace.gas_used == exc.receipt.gas_used
    assert "Reverts::setThenRequire(7, False)" in str(exc)
    assert "← [Revert] Error: require failed" in str(exc)
    # the transaction changed nothing but the nonce (the traced re-run included)
    assert reverts.call("stored") == 0 and chain.nonce(alice) == nonce + 1


def test_panics_are_explained(reverts: Contract, alice: Account) -> None:
    with pytest.raises(Reverted, match=r"Panic\(0x12\): division or modulo by zero"):
        reverts.transact("divide", 1, 0, sender=alice)
    with pytest.raises(Reverted) as info:
        reverts.call("add", 2**256 - 1, 1)
    assert info.value.reason is not None
    assert info.value.reason.describe() == "Panic(0x11): arithmetic underflow or overflow"
    with pytest.raises(Reverted, match=r"Panic\(0x32\): array index out of bounds"):
        reverts.call("index", 3)


def test_custom_error_by_name_and_arguments(reverts: Contract, alice: Account) -> None:
    with pytest.raises(Reverted) as info:
        reverts.transact("customError", 42, sender=alice)
    reason = info.value.reason
    assert reason is not None and reason.name == "NotAllowed"
    assert reason.args == (alice.address, 42)
    assert f"NotAllowed(who: 0x{alice.address.hex()}, code: 42)" in str(info.value)


def test_custom_error_from_another_abi(chain: TestChain, token: Contract,
                                       alice: Account) -> None:
    # seen through an ABI without the error: decoded with the other ABIs the chain knows
    bare = [e for e in compiled("Token")["Token"].abi if e.get("type") != "error"]
    view = chain.at(token, bare)
    with pytest.raises(Reverted) as info:
        view.transact("transfer", alice, 10**9, sender=chain.new_account(10**18))
    assert str(info.value.reason) == f"InsufficientBalance(0, {10**9})"
    assert "InsufficientBalance(available: 0, required: 1000000000)" in str(info.value)


def test_nested_revert_trace_points_at_the_failing_frame(reverts: Contract,
                                                         alice: Account) -> None:
    with pytest.raises(Reverted) as info:
        reverts.transact("nested", 5, sender=alice)
    trace = info.value.trace
    assert trace is not None and trace.reverted
    [inner] = trace.children
    assert inner.reverted and inner.address == reverts.address
    assert trace.failing_frame() is inner
    text = str(info.value)
    assert "Reverts::nested(5)" in text and "Reverts::setThenRequire(6, False)" in text
    assert text.count("← [Revert] Error: require failed") == 2


def test_check_false_returns_the_receipt(reverts: Contract, alice: Account) -> None:
    receipt = reverts.transact("setThenRequire", 1, False, sender=alice, check=False)
    assert receipt.reverted and receipt.revert_reason == "require failed"
    assert receipt.trace is not None and receipt.trace_text is not None
    ok = reverts.transact("setThenRequire", 1, True, sender=alice)
    assert ok.success and ok.trace is None  # successes are not traced by default


def test_non_revert_failures_raise_transaction_failed(reverts: Contract,
                                                      alice: Account) -> None:
    with pytest.raises(TransactionFailed, match="failed: OutOfGas") as info:
        reverts.transact("setThenRequire", 1, True, sender=alice, gas_limit=1000)
    assert not isinstance(info.value, Reverted)
    assert info.value.receipt.failure == "OutOfGas"
    assert info.value.trace is not None and info.value.trace.error == "OutOfGas"


def test_expect_revert(chain: TestChain, reverts: Contract, token: Contract,
                       alice: Account) -> None:
    bob = chain.new_account(10**18)
    with chain.expect_revert("require failed"):
        reverts.transact("setThenRequire", 1, False, sender=alice)
    with chain.expect_revert("NotAllowed", alice, 7):
        reverts.transact("customError", 7, sender=alice)
    with chain.expect_revert("InsufficientBalance", 0, 5):
        token.transact("transfer", alice, 5, sender=bob)
    with chain.expect_revert(0x12):
        reverts.call("divide", 1, 0)
    with chain.expect_revert() as caught:
        reverts.transact("assertion", False, sender=alice)
    assert caught[0].reason is not None and caught[0].reason.args == (1,)
    raw = keccak256(b"NotAllowed(address,uint256)")[:4] + alice.address.rjust(32, b"\0") \
        + (3).to_bytes(32, "big")
    with chain.expect_revert(raw):
        reverts.transact("customError", 3, sender=alice)


def test_expect_revert_fails_loudly(chain: TestChain, reverts: Contract,
                                    alice: Account) -> None:
    with pytest.raises(AssertionError, match="no transaction in the block reverted"), \
            chain.expect_revert():
        reverts.transact("setThenRequire", 1, True, sender=alice)
    with pytest.raises(AssertionError, match="expected 'other', got Error: require failed"), \
            chain.expect_revert("other"):
        reverts.transact("setThenRequire", 1, False, sender=alice)
    with pytest.raises(AssertionError, match=r"expected NotAllowed"), \
            chain.expect_revert("NotAllowed", alice, 8):
        reverts.transact("customError", 7, sender=alice)
    with pytest.raises(AssertionError, match=r"expected Panic\(0x11\), got Panic\(0x12\)"), \
            chain.expect_revert(0x11):
        reverts.call("divide", 1, 0)


def test_expect_emit(chain: TestChain, token: Contract, alice: Account) -> None:
    bob = chain.new_account()
    with chain.expect_emit("Transfer", {"from": alice, "to": bob, "value": 10},
                           emitter=token) as found:
        token.transact("transfer", bob, 10, sender=alice)
    assert len(found) == 1 and found[0].args["value"] == 10
    with pytest.raises(AssertionError, match="no Transfer"), \
            chain.expect_emit("Transfer", {"value": 11}):
        token.transact("transfer", bob, 10, sender=alice)
    with pytest.raises(AssertionError, match="from 0x"), \
            chain.expect_emit("Transfer", emitter=alice):
        token.transact("transfer", bob, 1, sender=alice)


def test_expect_emit_applies_to_the_next_transaction(chain: TestChain, token: Contract,
                                                     alice: Account) -> None:
    bob = chain.new_account()
    chain.expect_emit("Transfer", {"from": alice, "to": bob, "value": 5}, emitter=token)
    assert token.call("balanceOf", alice) == 1000  # a dry run is not the next transaction
    token.transact("transfer", bob, 5, sender=alice)
    chain.check_expectations()  # met: nothing pending
    # only the very next transaction counts, even if a later one would match
    chain.expect_emit("Transfer", {"value": 1})
    with pytest.raises(AssertionError, match=r"the next transaction \(Token.transfer\) "
                                             r"emitted no Transfer\{'value': 1\} event"):
        token.transact("transfer", bob, 2, sender=alice)
    token.transact("transfer", bob, 1, sender=alice)  # not checked any more
    # a reverted transaction emits nothing
    chain.expect_emit("Transfer")
    with pytest.raises(AssertionError, match="events emitted: none"):
        token.transact("transfer", bob, 10**9, sender=alice, check=False)
    # an expectation no transaction came to check fails at the end of the test
    chain.expect_emit("Approval")
    with pytest.raises(AssertionError, match="no transaction came after Approval event"):
        chain.check_expectations()
    chain.check_expectations()


def test_expect_emit_checks_the_order_of_several(chain: TestChain, factory: Contract,
                                                 alice: Account) -> None:
    # make(): the child's constructor emits Created, then the factory emits Deployed
    chain.expect_emit("Created", {"value": 1})
    chain.expect_emit("Deployed", {"viaCreate2": False}, emitter=factory)
    factory.transact("make", 1, sender=alice)
    chain.expect_emit("Deployed")
    chain.expect_emit("Created")
    with pytest.raises(AssertionError, match="no Created event after the events expected"):
        factory.transact("make", 2, sender=alice)


def test_expect_emit_block_scope(chain: TestChain, token: Contract, alice: Account) -> None:
    bob = chain.new_account()
    with chain.expect_emit("Transfer", {"value": 3}) as found:
        token.transact("transfer", bob, 1, sender=alice)  # any transaction of the block
        token.transact("transfer", bob, 3, sender=alice)
    assert [e["value"] for e in found] == [3]
    chain.check_expectations()  # a with-block expectation is not left pending


def test_calling_an_address_without_code(chain: TestChain, token: Contract) -> None:
    nobody = keccak256(b"nobody")[12:]
    ghost = chain.at(nobody, compiled("Token")["Token"].abi)
    with pytest.raises(NoContractCode, match=f"no contract at 0x{nobody.hex()}") as info:
        ghost.call("balanceOf", nobody)
    assert "balanceOf(address)" in str(info.value)
    with pytest.raises(NoContractCode):
        ghost.transact("transfer", nobody, 1)


def test_abi_mismatch_names_the_function(chain: TestChain, token: Contract) -> None:
    wrong = [{"type": "function", "name": "name", "inputs": [],
              "outputs": [{"type": "uint256[]", "name": ""}], "stateMutability": "view"}]
    with pytest.raises(AbiMismatch, match=r"name\(\) at 0x[0-9a-f]{40} returned 96 bytes"):
        chain.at(token, wrong).call("name")


def test_deploy_revert_raises_reverted(chain: TestChain, alice: Account) -> None:
    art = compiled("Counter")["Counter"]
    with pytest.raises(Reverted, match="deploy Counter reverted"):
        chain.deploy(art.blob, art.abi, sender=alice, value=1)


def test_tracing_every_transaction(chain: TestChain, factory: Contract,
                                   alice: Account) -> None:
    chain.tracing = True
    receipt = factory.transact("make", 5, sender=alice)
    trace = receipt.trace
    assert trace is not None and trace.success and trace.gas_used == receipt.gas_used
    [create] = trace.children
    child = receipt.return_value
    assert create.kind == "create" and create.address == child and create.success
    assert [e.topics[0] for e in create.events] == [keccak256(b"Created(address,uint256)")]
    assert [e.topics[0] for e in trace.events] == [keccak256(b"Deployed(address,bool)")]
    text = receipt.trace_text or ""
    lines = text.splitlines()
    assert lines[0].endswith("Factory::make(5)")
    assert f"→ new Child@0x{child.hex()}" in lines[1]
    assert f"emit Created(creator: 0x{factory.address.hex()}, value: 5)" in text
    assert f"emit Deployed(child: 0x{child.hex()}, viaCreate2: False)" in text
    assert lines[-1].strip() == f"└─ ← [Return] 0x{child.hex()}"
    # nested calls, static calls and a caught revert
    receipt = factory.transact("tryFail", child, sender=alice)
    [call] = receipt.trace.children if receipt.trace else []
    assert call.reverted and "Child::fail() [staticcall]" in (receipt.trace_text or "")
    assert "└─ ← [Revert] Error: child failed" in (receipt.trace_text or "")
    assert receipt.return_value == (False, "child failed")
    assert "← [Return] False, 'child failed'" in (receipt.trace_text or "")
    view = factory.transact("callGet", child, sender=alice)
    assert "Child::get() [staticcall]" in (view.trace_text or "")
    assert "← [Return] 5" in (view.trace_text or "")
