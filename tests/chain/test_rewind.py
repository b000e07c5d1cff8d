"""Chain.rewind (a dev node's evm_revert): the state and blocks of an earlier head,
in memory and in SQLite (surviving a reopen), and the chain goes on from there."""

from __future__ import annotations

from pathlib import Path

import pytest

from chain_sim import Account, Chain, GenesisConfig, Transfer
from chain_sim.merkle import state_root


@pytest.mark.parametrize("where", ["memory", "sqlite"])
def test_rewind(where: str, tmp_path: Path, genesis: GenesisConfig, alice: Account,
                bob: Account, charlie: Account) -> None:
    path = None if where == "memory" else tmp_path / "c.db"
    chain = Chain.create(genesis, path, backend="interpreter")
    roots = [chain.state_root]
    for i in range(3):
        chain.build_block([chain.sign(alice, Transfer(charlie.account_id, 10 + i))])
        roots.append(chain.state_root)
    assert chain.balance(charlie) == 33
    chain.rewind(1)
    assert chain.head_number == 1 and chain.state_root == roots[1]
    assert chain.state_root == state_root(chain.db.items())
    assert chain.balance(charlie) == 10 and chain.nonce(alice) == 1
    with pytest.raises(Exception, match="no block 2"):
        chain.block(2)
    chain.build_block([chain.sign(alice, Transfer(charlie.account_id, 100))])
    assert chain.balance(charlie) == 110 and chain.head_number == 2
    assert chain.verify() == 2
    if path is not None:
        chain.close()
        again = Chain.open(path, backend="interpreter")
        assert again.head_number == 2 and again.balance(charlie) == 110
        again.close()
