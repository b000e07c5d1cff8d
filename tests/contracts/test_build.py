"""The Solidity sources in contracts/src built with the official toolchain
(npm @parity/resolc 0.3.0 + solc 0.8.30): the blobs are byte-identical to the
ones the team built independently (shared/contracts-sample/out), the build is
cached by source hash, and the compiler's own ABIs drive the harness."""

from __future__ import annotations

import shutil

import pytest

from contracts.build import BuildError, build, compiled, source_hash
from contracts.harness import TestChain
from executor.backends import available_backends
from tests.conftest import SAMPLES

pytestmark = pytest.mark.skipif(shutil.which("npm") is None, reason="npm is not installed")


@pytest.mark.parametrize(("source", "contract", "sample"), [
    ("Counter", "Counter", "Counter_sol_Counter.polkavm"),
    ("Token", "Token", "Token_sol_Token.polkavm"),
    ("Factory", "Factory", "Factory_sol_Factory.polkavm"),
    ("Factory", "Child", "Factory_sol_Child.polkavm"),
    ("Misc", "Misc", "Misc_sol_Misc.polkavm"),
])
def test_blobs_match_the_independently_built_samples(source: str, contract: str,
                                                      sample: str) -> None:
    assert compiled(source)[contract].blob == (SAMPLES / sample).read_bytes()


def test_build_is_cached_by_source_hash() -> None:
    out = build("Counter")
    assert out.name == f"Counter-{source_hash(out.parent.parent / 'src' / 'Counter.sol')}"
    stamp = (out / ".done").stat().st_mtime_ns
    assert build("Counter") == out
    assert (out / ".done").stat().st_mtime_ns == stamp  # not rebuilt


def test_unknown_source() -> None:
    with pytest.raises(BuildError, match="no such contract source"):
        build("NoSuchContract")


@pytest.fixture(params=available_backends())
def reverts(request: pytest.FixtureRequest) -> tuple[TestChain, object]:
    art = compiled("Reverts")["Reverts"]
    chain = TestChain(backend=request.param)
    alice = chain.new_account(balance=10**20)
    return chain, chain.deploy(art.blob, art.abi, sender=alice)


def test_require_reason_rolls_back(reverts: tuple[TestChain, object]) -> None:
    chain, c = reverts
    r = c.transact("setThenRequire", 7, False, check=False)  # type: ignore[attr-defined]
    assert not r.success and r.revert_reason == "require failed"
    assert c.call("stored") == 0  # type: ignore[attr-defined]
    assert c.transact("setThenRequire", 7, True, check=False).success  # type: ignore[attr-defined]
    assert c.call("stored") == 7  # type: ignore[attr-defined]


def test_custom_error_and_panics(reverts: tuple[TestChain, object]) -> None:
    chain, c = reverts
    r = c.transact("customError", 42, check=False)  # type: ignore[attr-defined]
    assert not r.success and r.revert_reason is not None
    assert r.revert_reason.startswith("NotAllowed(") and r.revert_reason.endswith("42)")
    cases = [("divide", (1, 0), "Panic(0x12)"), ("add", (2**256 - 1, 1), "Panic(0x11)"),
             ("assertion", (False,), "Panic(0x1)"), ("index", (3,), "Panic(0x32)")]
    for fn, args, reason in cases:
        r = c.transact(fn, *args, check=False)  # type: ignore[attr-defined]
        assert not r.success
        assert r.revert_reason in (reason, reason.replace("0x1)", "0x01)")), (fn, r.revert_reason)
    assert c.call("divide", 10, 3) == 3  # type: ignore[attr-defined]


def test_nested_revert(reverts: tuple[TestChain, object]) -> None:
    chain, c = reverts
    r = c.transact("nested", 5, check=False)  # type: ignore[attr-defined]
    assert not r.success and c.call("stored") == 0  # type: ignore[attr-defined]
    r = c.transact("nestedCaught", 5, check=False)  # type: ignore[attr-defined]
    assert r.success and r.return_value is False
    assert c.call("stored") == 5  # type: ignore[attr-defined]
