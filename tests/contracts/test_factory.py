"""Factory.sol: ``new Child(v)`` (CREATE), ``new Child{salt: s}(v)`` (CREATE2), calls
into children, static calls, try/catch, low-level calls, delegatecall, code info.

Expected addresses follow pallet-revive (spec 4.4): CREATE1 is Ethereum's
``keccak256(rlp([deployer, nonce]))[12:]`` with the deployer's nonce (a new contract's
nonce starts at 0 in stable2503); CREATE2 hashes the PVM blob **and** the constructor
input as init code.
"""

from __future__ import annotations

import pytest

import contracts.build
import contracts.harness
from contracts.abi import decode, encode
from contracts.build import compiled
from contracts.harness import Account, Contract, Reverted, TestChain, TransactionFailed
from executor.revive import keccak256
from tests.contracts.abis import CHILD_ABI, CHILD_BLOB, FACTORY_ABI, FACTORY_BLOB


def rlp_create1(deployer: bytes, nonce: int) -> bytes:
    """Ethereum's CREATE address, spelled out for nonces below 0x80."""
    assert nonce < 0x80
    nonce_rlp = b"\x80" if nonce == 0 else bytes([nonce])
    payload = b"\x94" + deployer + nonce_rlp
    return keccak256(bytes([0xC0 + len(payload)]) + payload)[12:]


def revive_create2(deployer: bytes, salt: bytes, code: bytes, ctor_input: bytes) -> bytes:
    return keccak256(b"\xff" + deployer + salt + keccak256(code + ctor_input))[12:]


@pytest.fixture
def factory(chain: TestChain, alice: Account) -> Contract:
    chain.upload(CHILD_BLOB)
    chain.register_abi(CHILD_ABI)
    return chain.deploy(FACTORY_BLOB, FACTORY_ABI, sender=alice)


def test_factory_embeds_the_child_code_hash() -> None:
    # IMPORTS.md: the Factory blob holds keccak256(child blob) in its rw data (as four
    # 64-bit limbs, each stored little-endian)
    child_hash = keccak256(CHILD_BLOB.read_bytes())
    limbs = b"".join(child_hash[i:i + 8][::-1] for i in range(0, 32, 8))
    assert limbs in FACTORY_BLOB.read_bytes()


def test_create_without_uploaded_child_code_fails(chain: TestChain, alice: Account,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(contracts.build, "KNOWN", {})  # the build knows no Child blob
    monkeypatch.setattr(contracts.harness, "KNOWN", contracts.build.KNOWN)
    factory = chain.deploy(FACTORY_BLOB, FACTORY_ABI, sender=alice)
    receipt = factory.transact("make", 1, sender=alice, check=False)
    assert not receipt.success and receipt.failure == "CodeNotFound"
    assert factory.call("lastChild") == bytes(20)
    with pytest.raises(TransactionFailed, match="never uploaded") as info:
        factory.transact("make", 1, sender=alice)
    assert not isinstance(info.value, Reverted)
    assert info.value.receipt.failure == "CodeNotFound"


def test_factory_dependencies_are_uploaded_with_the_factory(chain: TestChain,
                                                            alice: Account) -> None:
    # Factory.sol built here: the build knows Child, so deploying Factory uploads it
    arts = compiled("Factory")
    assert chain.state.code(arts["Child"].code_hash) is None
    factory = chain.deploy(arts["Factory"].blob, arts["Factory"].abi, sender=alice)
    assert chain.state.code(arts["Child"].code_hash) == arts["Child"].blob
    child = factory.transact("make", 5, sender=alice).return_value
    assert chain.at(child, arts["Child"].abi).call("get") == 5
    assert chain.name_of(child) == "Child" and factory.name == "Factory"


def test_factory_dependencies_come_from_resolc_not_from_scanning(
        chain: TestChain, alice: Account, monkeypatch: pytest.MonkeyPatch) -> None:
    # What is uploaded with a built blob is resolc's factoryDependencies list, whatever
    # the blob's bytes hold: a Counter artifact that (say) resolc reported as depending
    # on Child uploads Child although Counter's code embeds no code hash of it, and a
    # Factory artifact reported without dependencies uploads nothing
    arts = compiled("Factory")
    counter = compiled("Counter")["Counter"]
    child = arts["Child"]
    assert not any(h in counter.blob for h in (child.code_hash, b"".join(
        child.code_hash[i:i + 8][::-1] for i in range(0, 32, 8))))
    known = {child.code_hash: child,
             counter.code_hash: contracts.build.Artifact(
                 "Counter", counter.blob, counter.abi, (child.code_hash,)),
             arts["Factory"].code_hash: contracts.build.Artifact(
                 "Factory", arts["Factory"].blob, arts["Factory"].abi, ())}
    monkeypatch.setattr(contracts.harness, "KNOWN", known)
    chain.deploy(counter.blob, counter.abi, sender=alice)
    assert chain.state.code(child.code_hash) == child.blob
    fresh = TestChain(backend=chain.backend, sandbox=None)
    factory = fresh.deploy(arts["Factory"].blob, arts["Factory"].abi)
    assert fresh.state.code(child.code_hash) is None
    assert factory.transact("make", 1, check=False).failure == "CodeNotFound"


def test_a_blob_the_build_does_not_know_is_scanned_for_known_children(
        chain: TestChain, alice: Account, monkeypatch: pytest.MonkeyPatch) -> None:
    # no resolc output for the factory blob (only Child is known): the fallback finds
    # Child's code hash embedded in the factory's data
    child = compiled("Factory")["Child"]
    monkeypatch.setattr(contracts.harness, "KNOWN", {child.code_hash: child})
    factory = chain.deploy(compiled("Factory")["Factory"].blob, FACTORY_ABI, sender=alice)
    assert chain.state.code(child.code_hash) == child.blob
    assert factory.transact("make", 3, sender=alice).success


def test_make_creates_child_at_create1_address(chain: TestChain, factory: Contract,
                                               alice: Account) -> None:
    first, second = rlp_create1(factory.address, 0), rlp_create1(factory.address, 1)
    receipt = factory.transact("make", 7, sender=alice)
    assert receipt.success and receipt.return_value == first
    assert factory.call("lastChild") == first
    assert chain.nonce(factory) == 1
    assert [(e.address, e.name, e.args) for e in receipt.events] == [
        (first, "Created", {"creator": factory.address, "value": 7}),
        (factory.address, "Deployed", {"child": first, "viaCreate2": False}),
    ]
    child = chain.at(first, CHILD_ABI)
    assert child.call("get") == 7 and child.call("value") == 7
    assert child.call("creator") == factory.address

    receipt = factory.transact("make", 8, sender=alice)
    assert receipt.return_value == second
    assert chain.at(second, CHILD_ABI).call("get") == 8


def test_make_forwards_value_to_the_child(chain: TestChain, factory: Contract,
                                          alice: Account) -> None:
    before = chain.balance(alice)
    receipt = factory.transact("make", 1, sender=alice, value=1234)
    assert receipt.success
    assert chain.balance(receipt.return_value) == 1234
    assert chain.balance(factory) == 0
    assert chain.balance(alice) == before - 1234


def test_make2_uses_create2_address(chain: TestChain, factory: Contract,
                                    alice: Account) -> None:
    salt = keccak256(b"salt")
    expected = revive_create2(factory.address, salt, CHILD_BLOB.read_bytes(),
                              (9).to_bytes(32, "big"))
    receipt = factory.transact("make2", 9, salt, sender=alice)
    assert receipt.success and receipt.return_value == expected
    assert [(e.name, e.args) for e in receipt.events] == [
        ("Created", {"creator": factory.address, "value": 9}),
        ("Deployed", {"child": expected, "viaCreate2": True}),
    ]
    assert chain.at(expected, CHILD_ABI).call("get") == 9
    # the constructor input is part of the address: another value, another address
    other = factory.transact("make2", 10, salt, sender=alice)
    assert other.success and other.return_value not in (expected, bytes(20))
    # the same salt and input again collides: `new` fails, the factory reverts
    again = factory.transact("make2", 9, salt, sender=alice, check=False)
    assert again.reverted and again.output == b""
    assert factory.call("lastChild") == other.return_value


def test_calls_into_the_child(chain: TestChain, factory: Contract, alice: Account) -> None:
    child = factory.transact("make", 5, sender=alice).return_value
    assert factory.call("callGet", child) == 5
    receipt = factory.transact("callAdd", child, 6, sender=alice)
    assert receipt.success and receipt.return_value == 11
    assert chain.at(child, CHILD_ABI).call("get") == 11


def test_try_catch_of_a_reverting_child(factory: Contract, alice: Account) -> None:
    child = factory.transact("make", 1, sender=alice).return_value
    assert factory.call("tryFail", child) == (False, "child failed")


def test_low_level_call_returns_success_and_data(chain: TestChain, factory: Contract,
                                                 alice: Account) -> None:
    child_address = factory.transact("make", 3, sender=alice).return_value
    child = chain.at(child_address, CHILD_ABI)
    ok, ret = factory.call("lowLevel", child, child.encode("get"))
    assert ok is True and ret == (3).to_bytes(32, "big")
    ok, ret = factory.call("lowLevel", child, child.encode("fail"))
    assert ok is False
    assert ret == bytes.fromhex("08c379a0") + encode(["string"], ["child failed"])
    # a call to an account without code succeeds with no data
    ok, ret = factory.call("lowLevel", alice, b"\x12\x34")
    assert (ok, ret) == (True, b"")


def test_delegatecall_runs_child_code_on_factory_storage(
        chain: TestChain, factory: Contract, alice: Account) -> None:
    child_address = factory.transact("make", 100, sender=alice).return_value
    receipt = factory.transact("delegateAdd", child_address, 4, sender=alice)
    assert receipt.success and receipt.return_value == 4
    assert factory.call("value") == 4
    assert chain.at(child_address, CHILD_ABI).call("get") == 100
    assert factory.transact("delegateAdd", child_address, 5, sender=alice).return_value == 9


def test_delegatecall_to_an_account_without_code_returns_nothing(factory: Contract,
                                                                 alice: Account) -> None:
    # polkadot-sdk 2503+: the delegate call succeeds with empty output, so here it is
    # abi.decode of the empty return data that reverts (without reason), not the call
    receipt = factory.transact("delegateAdd", alice, 4, sender=alice, check=False)
    assert receipt.reverted and receipt.failure is None and receipt.output == b""


def test_code_info(chain: TestChain, factory: Contract, alice: Account) -> None:
    child = factory.transact("make", 1, sender=alice).return_value
    blob = CHILD_BLOB.read_bytes()
    assert factory.call("codeInfo", child) == (len(blob), keccak256(blob))
    # an existing account without code: size 0 and keccak256("")
    assert factory.call("codeInfo", alice) == (0, keccak256(b""))
    # an account that does not exist: hash 0
    assert factory.call("codeInfo", keccak256(b"nobody")[12:]) == (0, bytes(32))


def test_call_stack_depth_limit(chain: TestChain, factory: Contract, alice: Account) -> None:
    """stable2503: the first frame plus 5 nested frames.  Nest Factory.lowLevel calls
    into the factory itself and end with Child.get()."""
    child_address = factory.transact("make", 42, sender=alice).return_value
    child = chain.at(child_address, CHILD_ABI)

    def nested(levels: int) -> bytes:
        data = child.encode("get")
        target: bytes = child.address
        for _ in range(levels):
            data = factory.encode("lowLevel", target, data)
            target = factory.address
        return data

    def unwrap(levels: int) -> tuple[bool, bytes]:
        """Frame 1 (the transaction) calls frame 2 with nested(levels); frame k runs
        lowLevel into frame k+1; frame levels+1 calls the child: levels+2 frames."""
        ok, ret = factory.call("lowLevel", factory.address, nested(levels))
        for _ in range(levels):
            if not ok:
                return ok, ret
            ok, ret = decode(["bool", "bytes"], ret)
        return ok, ret

    assert unwrap(1) == (True, (42).to_bytes(32, "big"))
    assert unwrap(4) == (True, (42).to_bytes(32, "big"))     # 6 frames: allowed
    ok, ret = unwrap(5)                                        # 7 frames: too deep
    assert (ok, ret) == (False, b"")  # frame 6 traps, frame 5 sees a failed call
