"""The interpreter and the JIT give identical results: return values, revert data,
events and gas used, for a scenario touching every sample contract."""

from __future__ import annotations

from typing import Any

import pytest

from contracts.harness import Receipt, TestChain
from executor.revive import keccak256
from tests.contracts.abis import (
    CHILD_ABI,
    CHILD_BLOB,
    COUNTER_ABI,
    COUNTER_BLOB,
    FACTORY_ABI,
    FACTORY_BLOB,
    MISC_ABI,
    MISC_BLOB,
    TOKEN_ABI,
    TOKEN_BLOB,
)
from tests.contracts.conftest import BACKENDS


def observe(r: Receipt) -> tuple[Any, ...]:
    return (r.success, r.gas_used, r.return_value, r.output, r.failure, r.revert_reason,
            [(e.address, e.name, e.args, e.topics, e.data) for e in r.events])


def scenario(backend: str) -> list[tuple[Any, ...]]:
    chain = TestChain(backend=backend, check=False)  # receipts, failed ones too
    a, b = chain.new_account(10**20), chain.new_account(10**20)
    out: list[tuple[Any, ...]] = []
    counter = chain.deploy(COUNTER_BLOB, COUNTER_ABI, sender=a)
    out += [observe(counter.transact("inc", sender=a)), observe(counter.transact("fib", 300))]
    token = chain.deploy(TOKEN_BLOB, TOKEN_ABI, "T", "T", 10**6, sender=a)
    assert token.deploy_receipt is not None
    out.append(observe(token.deploy_receipt))
    out += [observe(token.transact("transfer", b, 5, sender=a)),
            observe(token.transact("transfer", a, 50, sender=b)),
            observe(token.transact("approve", b, 7, sender=a)),
            observe(token.transact("transferFrom", a, b, 8, sender=b))]
    chain.upload(CHILD_BLOB)
    chain.register_abi(CHILD_ABI)
    factory = chain.deploy(FACTORY_BLOB, FACTORY_ABI, sender=a)
    made = factory.transact("make", 3, sender=a, value=10)
    out += [observe(made), observe(factory.transact("make2", 4, keccak256(b"s"), sender=a)),
            observe(factory.transact("callAdd", made.return_value, 2, sender=a)),
            observe(factory.transact("tryFail", made.return_value, sender=a)),
            observe(factory.transact("delegateAdd", made.return_value, 9, sender=a)),
            observe(factory.transact("codeInfo", made.return_value, sender=a))]
    misc = chain.deploy(MISC_BLOB, MISC_ABI, sender=a)
    out += [observe(chain.send(misc, 100, sender=a)),
            observe(misc.transact("hash", b"x" * 100, sender=a)),
            observe(misc.transact("hashLoop", 20, sender=a)),
            observe(misc.transact("context", sender=b)),
            observe(misc.transact("moreContext", sender=b)),
            observe(misc.transact("deposit", sender=a, value=20)),
            observe(misc.transact("pay", b, 30, sender=a)),
            observe(misc.transact("trySend", b, 10**9, sender=a)),
            observe(misc.transact("sum", 500, sender=a)),
            observe(misc.transact("tstoreRoundTrip", 3, sender=a))]
    out += [observe(misc.transact("fail", code, sender=a)) for code in range(4)]
    out.append(observe(misc.transact("hashLoop", 50, sender=a, gas_limit=20_000)))
    out.append((chain.balance(a), chain.balance(b), chain.balance(misc), chain.nonce(a)))
    return out


@pytest.mark.skipif(len(BACKENDS) < 2, reason="the JIT does not run on this machine")
def test_interpreter_and_jit_agree() -> None:
    results = {backend: scenario(backend) for backend in BACKENDS}
    reference = results["interpreter"]
    assert any(not r[0] for r in reference[:-1])  # the scenario has failures too
    for backend, observed in results.items():
        assert len(observed) == len(reference)
        for i, (got, want) in enumerate(zip(observed, reference, strict=True)):
            assert got == want, f"{backend} differs at step {i}"
