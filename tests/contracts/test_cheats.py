"""console.log, cheatcodes (prank, deal, warp, roll, load, store, mock_call), host-call
layers inherited by nested frames, the documented limits, and hypothesis strategies --
on every backend (contracts/src/Cheats.sol, which imports contracts/src/lib/Console.sol)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contracts.abi import ERROR_SELECTOR, Abi, decode, encode
from contracts.build import compiled
from contracts.console import CONSOLE_ADDRESS, decode_console, format_console
from contracts.harness import (
    Account,
    Contract,
    NoContractCode,
    Reverted,
    TestChain,
    TransactionFailed,
)
from contracts.strategies import for_function, for_type
from executor.revive import keccak256
from executor.revive.errors import CodeRejected


# ---- console.log ----
def test_console_log_is_printed_and_kept(chain: TestChain, cheats: Contract, alice: Account,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    receipt = cheats.transact("hello", 42, sender=alice)
    expected = ("hello 42", f"sender 0x{alice.address.hex()} gave 42", "true", "-5",
                "0x" + (0xABCD).to_bytes(32, "big").hex(), "42")
    assert receipt.console == expected
    assert capsys.readouterr().out.splitlines() == list(expected)
    # the console call costs what any call to an account without code costs: the
    # logger only observes (gas equal to a chain without it)
    plain = TestChain(backend=chain.backend, sandbox=chain.runtime.engine.sandbox)
    plain.runtime.layers = ()
    bob = plain.new_account(10**20)
    art = compiled("Cheats")["Cheats"]
    other = plain.deploy(art.blob, art.abi, sender=bob)
    assert other.transact("hello", 42, sender=bob).gas_used == receipt.gas_used


def test_console_log_of_a_reverting_call_is_printed_once(
        cheats: Contract, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(Reverted, match="nope"):
        cheats.call("fails")
    assert capsys.readouterr().out == "about to fail\n"  # the traced re-run is silent


def test_console_decoding_without_a_chain() -> None:
    sel = keccak256(b"log(string,uint256,bool,address)")[:4]
    data = sel + encode(["string", "uint256", "bool", "address"], ["x %d y", 3, False,
                                                                   bytes(range(20))])
    assert decode_console(data) == f"x 3 y false 0x{bytes(range(20)).hex()}"
    assert decode_console(keccak256(b"nope(uint256)")[:4] + bytes(32)) is None
    assert decode_console(keccak256(b"log(string)")[:4] + b"\x01") is None  # malformed
    assert format_console(("%s%% of %x", 5, 255)) == "5% of 0xff"
    assert CONSOLE_ADDRESS.hex() == "000000000000000000636f6e736f6c652e6c6f67"


# ---- prank, deal, warp, roll ----
def test_prank_deal_warp_roll(chain: TestChain, cheats: Contract, alice: Account) -> None:
    whale = keccak256(b"whale")[12:]
    chain.deal(whale, 12345)
    chain.warp(1_800_000_000)
    chain.roll(777)
    with chain.prank(whale):
        assert cheats.call("context") == (whale, whale, 1_800_000_000, 777, 12345)
        cheats.transact("hello", 5)
    assert cheats.call("credit", whale) == 5
    assert cheats.call("context", sender=alice)[0] == alice.address
    with chain.prank(cheats):  # a contract address can send too
        assert cheats.call("context")[0] == cheats.address


# ---- load / store ----
def test_load_and_store_slots(chain: TestChain, cheats: Contract, alice: Account) -> None:
    assert chain.load(cheats, 0) == (7).to_bytes(32, "big")
    chain.store(cheats, 0, 99)
    assert cheats.call("stored") == 99
    cheats.transact("hello", 3, sender=alice)
    slot = keccak256(alice.address.rjust(32, b"\0") + (1).to_bytes(32, "big"))
    assert chain.load(cheats, slot) == (3).to_bytes(32, "big")  # credit[alice], slot 1
    chain.store(cheats, slot, (1000).to_bytes(32, "big"))
    assert cheats.call("credit", alice) == 1000
    chain.store(cheats, slot, 0)
    assert cheats.call("credit", alice) == 0 and chain.load(cheats, slot) == bytes(32)
    with pytest.raises(ValueError, match="32 bytes"):
        chain.store(cheats, 0, b"\x01")


# ---- mock_call ----
PRICE = keccak256(b"price()")[:4]


def test_mock_call_answers_instead_of_the_callee(chain: TestChain, cheats: Contract) -> None:
    oracle = keccak256(b"oracle")[12:]  # no code at all
    # nothing answers: the call succeeds with no data, and decoding the missing
    # result reverts outside the try (as on Ethereum)
    with pytest.raises(Reverted, match="no revert data"):
        cheats.call("askOracleTry", oracle)
    chain.mock_call(oracle, PRICE, (1234).to_bytes(32, "big"))
    assert cheats.call("askOracle", oracle) == 1234
    chain.mock_call(oracle, PRICE, ERROR_SELECTOR + encode(["string"], ["stale"]),
                    revert=True)
    assert cheats.call("askOracleTry", oracle) == (False, 0)
    with pytest.raises(Reverted, match="Error: stale"):  # the mocked revert bubbles up
        cheats.call("askOracle", oracle)
    assert chain.mocks.hits == 4  # the failed call ran twice: once more to trace it
    chain.clear_mocked_calls()
    with pytest.raises(Reverted):
        cheats.call("askOracleTry", oracle)
    assert chain.mocks not in chain.runtime.layers


def test_mock_call_over_a_real_contract(chain: TestChain, cheats: Contract,
                                        alice: Account) -> None:
    art = compiled("Cheats")["Cheats"]
    other = chain.deploy(art.blob, art.abi, sender=alice)
    with pytest.raises(Reverted):  # Cheats has no price(): the real call reverts
        cheats.call("askOracle", other)
    chain.mock_call(other, PRICE, (5).to_bytes(32, "big"))
    assert cheats.call("askOracle", other) == 5
    # transactions and dry runs sent by the harness are mocked too (nothing runs)
    stored = keccak256(b"stored()")[:4]
    assert chain.send(other, data=stored).output == (7).to_bytes(32, "big")
    chain.mock_call(other, stored, (1).to_bytes(32, "big"))
    nonce, hits = chain.nonce(alice), chain.mocks.hits
    receipt = chain.send(other, data=stored, sender=alice)
    assert receipt.output == (1).to_bytes(32, "big") and receipt.gas_used == 0
    assert chain.nonce(alice) == nonce + 1 and chain.mocks.hits == hits + 1


ORACLE_ABI = [{"type": "function", "name": "price", "inputs": [], "stateMutability": "view",
               "outputs": [{"type": "uint256", "name": ""}]}]


def test_mock_call_answers_top_level_calls(chain: TestChain, alice: Account) -> None:
    oracle = chain.at(keccak256(b"oracle")[12:], ORACLE_ABI)  # no code at all
    chain.mock_call(oracle, PRICE, (77).to_bytes(32, "big"))
    assert oracle.call("price") == 77
    balance = chain.balance(alice)
    receipt = oracle.transact("price", sender=alice, value=5)
    assert receipt.return_value == 77 and receipt.success
    assert chain.balance(alice) == balance  # no value moved
    chain.mock_call(oracle, b"", ERROR_SELECTOR + encode(["string"], ["down"]), revert=True)
    assert oracle.call("price") == 77  # the longest prefix wins
    chain.mock_call(oracle, PRICE, ERROR_SELECTOR + encode(["string"], ["stale"]),
                    revert=True)
    with pytest.raises(Reverted, match="Error: stale"):
        oracle.transact("price", sender=alice)
    with chain.expect_revert("stale"):
        oracle.call("price")
    chain.clear_mocked_calls()
    with pytest.raises(NoContractCode):
        oracle.call("price")


# ---- layers see nested frames ----
class Counting:
    def __init__(self) -> None:
        self.names: list[str] = []

    def host_call(self, name: str, caller: Any, proceed: Callable[[], None]) -> None:
        self.names.append(name)
        proceed()


def test_layers_are_inherited_by_nested_frames(chain: TestChain, cheats: Contract,
                                               alice: Account) -> None:
    layer = Counting()
    with chain.runtime.with_layers(layer):
        assert cheats.transact("deep", 3, sender=alice).return_value == 3
    # four frames (3 nested calls): four seal_return, three calls
    assert layer.names.count("call") == 3 and layer.names.count("seal_return") == 4
    cheats.transact("deep", 3, sender=alice)
    assert layer.names.count("call") == 3  # removed after the block


# ---- limits ----
def test_call_depth_limit(chain: TestChain, cheats: Contract, alice: Account) -> None:
    depth = chain.runtime.limits.call_stack_depth
    assert depth == 5
    assert cheats.transact("deep", depth, sender=alice).return_value == depth
    with pytest.raises(Reverted) as info:
        cheats.transact("deep", depth + 1, sender=alice)
    assert "MaxCallDepthReached: more than 5 nested calls" in str(info.value)
    assert "← [MaxCallDepthReached]" in str(info.value)


def test_event_payload_limit(chain: TestChain, cheats: Contract, alice: Account) -> None:
    limit = chain.runtime.limits.payload_bytes
    # the event data is the ABI encoding of `bytes`: 64 bytes of head, then the data
    ok = cheats.transact("emitBig", limit - 64, sender=alice)
    assert len(ok.events[0].data) == limit
    with pytest.raises(TransactionFailed, match="ValueTooLarge: an event payload or storage "
                                                "value above 416 bytes") as info:
        cheats.transact("emitBig", limit - 63, sender=alice)
    assert info.value.receipt.failure == "ValueTooLarge"


class LongerStorageValues:
    """Makes every persistent set_storage of the contract ask for ``length`` bytes
    (Solidity only writes 32-byte words, so this is how a test reaches the limit)."""

    def __init__(self, length: int):
        self.length = length

    def host_call(self, name: str, caller: Any, proceed: Callable[[], None]) -> None:
        if name == "set_storage" and caller.reg(7) & 1 == 0:  # not transient
            caller.set_reg(11, self.length)  # a4 = value_len
        proceed()


def test_storage_value_limit(chain: TestChain, cheats: Contract, alice: Account) -> None:
    limit = chain.runtime.limits.payload_bytes
    with chain.runtime.with_layers(LongerStorageValues(limit)):
        assert cheats.transact("hello", 1, sender=alice).success
    with chain.runtime.with_layers(LongerStorageValues(limit + 1)), \
            pytest.raises(TransactionFailed, match="ValueTooLarge: an event payload or "
                                                   "storage value above 416 bytes"):
        cheats.transact("hello", 1, sender=alice)


def test_code_size_limit(chain: TestChain) -> None:
    blob = compiled("Cheats")["Cheats"].blob
    limit = chain.runtime.limits.blob_bytes
    with pytest.raises(CodeRejected, match=str(limit)):
        chain.upload(blob + bytes(limit))


# ---- hypothesis strategies ----
def test_strategies_cover_abi_types() -> None:
    @given(st.data())
    @settings(max_examples=30, deadline=None)
    def check(data: st.DataObject) -> None:
        for t in ("uint8", "int16", "address", "bool", "bytes4", "bytes", "string",
                  "uint256[3]", "(address,uint64)[]"):
            value = data.draw(for_type(t))
            assert decode([t], encode([t], [value])) == (value,)  # round-trips
        assert 0 <= data.draw(for_type("uint8")) < 256
    check()


def test_property_over_a_contract_function(chain: TestChain, alice: Account) -> None:
    art = compiled("Token")["Token"]
    token = chain.deploy(art.blob, art.abi, "Tok", "TK", 1000, sender=alice)
    abi = Abi(art.abi)

    @given(args=for_function(abi, "transfer"))
    @settings(max_examples=15, deadline=None)
    def transfer_conserves_supply(args: tuple[bytes, int]) -> None:
        with chain.isolated():  # each example starts from the same state
            receipt = token.transact("transfer", *args, sender=alice, check=False)
            assert receipt.success == (args[1] <= 1000)
            assert token.call("totalSupply") == 1000
            assert token.call("balanceOf", alice) == (
                1000 if args[0] == alice.address or not receipt.success else 1000 - args[1])
        assert token.call("balanceOf", alice) == 1000

    transfer_conserves_supply()
