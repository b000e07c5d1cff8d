"""What a contract developer writes: a few lines against a Solidity file."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(shutil.which("npm") is None, reason="npm is not installed")

SRC = Path(__file__).resolve().parents[2] / "contracts" / "src"


def test_counter(chain, alice, solidity):  # type: ignore[no-untyped-def]
    counter = chain.deploy(*solidity(SRC / "Counter.sol", "Counter"), sender=alice)
    receipt = counter.transact("inc", sender=alice)
    assert receipt.success and receipt.gas_used > 0
    assert counter.call("count") == 1


def test_token_transfer(chain, alice, bob, solidity):  # type: ignore[no-untyped-def]
    token = chain.deploy(*solidity(SRC / "Token.sol", "Token"), "Tok", "TK", 1000, sender=alice)
    r = token.transact("transfer", bob, 250, sender=alice)
    assert r.success and [e.name for e in r.events] == ["Transfer"]
    assert token.call("balanceOf", bob) == 250 and token.call("balanceOf", alice) == 750
