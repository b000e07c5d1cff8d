"""pallet-revive's value scaling: Ethereum values (wei) over a native balance
``native_to_eth_ratio`` times coarser, the part below one native unit kept per address
as dust.

The expected balances of the transfer cases are pallet-revive's own published test
cases (``transfer_with_dust_works`` in polkadot-sdk's ``frame/revive`` tests, stated
there as ``(native, dust)`` pairs in terms of the ratio, called ``plank``); they are
checked here on the chain's state through the revive runtime's transfer."""

from __future__ import annotations

from dataclasses import replace

import pytest

from chain_sim import Account, Chain, GenesisConfig, Transfer
from chain_sim.extrinsic import (
    ContractCall,
    DevDispatchAs,
    DevSetBalance,
    Unsigned,
    encode_call,
)
from chain_sim.keys import fallback_account_id, to_address

RATIO = 10**6
P = RATIO      # pallet-revive's name for it in the cases: plank

# (description, from (native, dust), to (native, dust), amount, from after, to after)
CASES = [
    ("without dust", (100, 0), (0, 0), (1, 0), (99, 0), (1, 0)),
    ("with dust", (100, 0), (0, 0), (1, 10), (98, P - 10), (1, 10)),
    ("just dust", (100, 0), (0, 0), (0, 10), (99, P - 10), (0, 10)),
    ("with existing dust", (100, 5), (0, P - 5), (1, 10), (98, P - 5), (2, 5)),
    ("with enough existing dust", (100, 10), (0, P - 10), (1, 10), (99, 0), (2, 0)),
    ("receiver dust less than 1 plank", (100, P // 10), (0, P // 2), (1, P // 10 * 3),
     (98, P // 10 * 8), (1, P // 10 * 8)),
]


def _split(chain: Chain, account: Account) -> tuple[int, int]:
    return chain.balance(account), chain.state.dust(to_address(account.account_id))


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_pallet_revive_transfer_cases(genesis: GenesisConfig, alice: Account, bob: Account,
                                      case: tuple[str, tuple[int, int], tuple[int, int],
                                                  tuple[int, int], tuple[int, int],
                                                  tuple[int, int]]) -> None:
    _, src, dst, amount, want_src, want_dst = case
    chain = Chain.create(replace(genesis, native_to_eth_ratio=RATIO, dev=True), None,
                         backend="interpreter")
    chain.build_block([Unsigned(DevSetBalance(alice.account_id, *src)),
                       Unsigned(DevSetBalance(bob.account_id, *dst))])
    assert _split(chain, alice) == src and _split(chain, bob) == dst
    state = chain.state
    a, b = to_address(alice.account_id), to_address(bob.account_id)
    assert state.balance(a) == src[0] * P + src[1]
    assert chain.runtime.transfer(a, b, amount[0] * P + amount[1])
    assert (state.account_info(alice.account_id)[1], state.dust(a)) == want_src
    assert (state.account_info(bob.account_id)[1], state.dust(b)) == want_dst
    state.reset()


def test_dust_kept_through_blocks_and_verified(genesis: GenesisConfig, alice: Account,
                                               bob: Account) -> None:
    """Values that are no whole number of native units, sent in transactions
    (impersonated calls carry their dust), fees in native units; verify() and replay
    re-execute to the same state roots."""
    from chain_sim.chain import replay

    chain = Chain.create(replace(genesis, native_to_eth_ratio=RATIO, dev=True), None,
                         backend="interpreter")
    assert chain.evm_balance(alice) == 10**24 * RATIO       # endowed native units
    to = bytes.fromhex("ab" * 20)          # an Ethereum address (its fallback account)
    receipts = []
    sent = 0
    for nonce, wei in enumerate([3 * RATIO + 123_456, 999_999, 1, RATIO - 1]):
        native, dust = divmod(wei, RATIO)
        call = encode_call(ContractCall(to, b"", native, 1_000_000))
        r = chain.build_block([Unsigned(DevDispatchAs(alice.account_id, nonce, call, dust))])
        assert not r.rejected
        receipts.append(r.block.receipts[0])
        sent += wei
    assert all(rc.success for rc in receipts)
    assert chain.state.balance(to) == sent                     # nothing lost
    assert (chain.balance(fallback_account_id(to)), chain.state.dust(to)) == divmod(sent,
                                                                                   RATIO)
    fees = sum(rc.fee for rc in receipts)                      # native units
    assert chain.evm_balance(alice) == 10**24 * RATIO - sent - fees * RATIO
    # a native transfer (Balances) leaves the sender's dust as it is
    a = to_address(alice.account_id)
    dust = chain.state.dust(a)
    assert dust == RATIO - sum(w % RATIO for w in [123_456, 999_999, 1, RATIO - 1]) % RATIO
    r = chain.build_block([chain.sign(alice, Transfer(bob.account_id, 1))])
    assert r.block.receipts[0].success
    assert chain.state.dust(a) == dust
    assert chain.evm_balance(bob) == (10**20 + 1) * RATIO
    # the ratio is part of the genesis; another node re-executes to the same roots
    assert chain.verify() == chain.head_number
    assert replay(chain, backend="interpreter").state_root == chain.state_root


def test_dust_needs_a_ratio(genesis: GenesisConfig, alice: Account) -> None:
    chain = Chain.create(replace(genesis, native_to_eth_ratio=RATIO, dev=True), None,
                         backend="interpreter")
    r = chain.build_block([Unsigned(DevSetBalance(alice.account_id, 5, RATIO))])
    assert r.rejected and "not below the ratio" in r.rejected[0][1]
    assert chain.balance(alice) == 10**24
    with pytest.raises(Exception, match="native_to_eth_ratio"):
        Chain.create(replace(genesis, native_to_eth_ratio=0), None, backend="interpreter")
    # ratio 1 (the default): no dust is ever stored, the Ethereum value is native
    plain = Chain.create(genesis, None, backend="interpreter")
    assert plain.evm_balance(alice) == plain.balance(alice) == 10**24
