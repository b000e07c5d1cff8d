"""The Dev pallet's unsigned calls: refused on an ordinary chain (nothing changes),
applied on a dev chain, and re-executed identically by verify()."""

from __future__ import annotations

from dataclasses import replace

import pytest

from chain_sim import Account, Chain, GenesisConfig, InvalidTransaction, Transfer
from chain_sim.extrinsic import (
    DevDispatchAs,
    DevSetBalance,
    DevSetNonce,
    Unsigned,
    encode_call,
)


def test_dev_calls_need_a_dev_chain(genesis: GenesisConfig, alice: Account) -> None:
    chain = Chain.create(genesis, None, backend="interpreter")
    root = chain.state_root
    r = chain.build_block([Unsigned(DevSetBalance(alice.account_id, 1))])
    assert r.rejected and "dev chains" in r.rejected[0][1]
    assert chain.balance(alice) == 10**24
    with pytest.raises(InvalidTransaction, match="dev chains"):
        chain.build_block([Unsigned(DevSetBalance(alice.account_id, 1))], strict=True)
    assert chain.head_number == 1 and chain.state_root != root  # only the empty block


def test_dev_calls_apply_and_verify(genesis: GenesisConfig, alice: Account, bob: Account,
                                    charlie: Account) -> None:
    chain = Chain.create(replace(genesis, dev=True), None, backend="interpreter")
    chain.build_block([Unsigned(DevSetBalance(charlie.account_id, 10**18)),
                       Unsigned(DevSetNonce(charlie.account_id, 3))])
    assert chain.account(charlie.account_id) == (3, 10**18)
    move = encode_call(Transfer(bob.account_id, 1000))
    stale = Unsigned(DevDispatchAs(charlie.account_id, 2, move))
    r = chain.build_block([stale, Unsigned(DevDispatchAs(charlie.account_id, 3, move))])
    assert [why for _, why in r.rejected] == ["stale nonce 2 (the account's next is 3)"]
    (receipt,) = r.block.receipts
    assert receipt.success and receipt.fee > 0
    assert chain.account(charlie.account_id) == (4, 10**18 - 1000 - receipt.fee)
    assert chain.verify() == 2
