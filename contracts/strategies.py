"""Hypothesis strategies for Solidity ABI types, so a property test over a contract
function is one decorator::

    from hypothesis import given, settings
    from contracts.strategies import for_function

    @given(args=for_function(TOKEN_ABI, "transfer"))
    def test_transfer_never_creates_tokens(chain, token, alice, args):
        with chain.isolated():                 # every example starts from the same state
            token.transact("transfer", *args, sender=alice, check=False)
            assert token.call("totalSupply") == SUPPLY

``for_type("uint8")`` gives one value of that type (``int`` for integers, 20-byte
``bytes`` for addresses, ``bytes`` for ``bytesN``/``bytes``, ``str``, ``bool``, lists
for arrays, tuples for tuples); ``for_function(abi, "f")`` a tuple of arguments for
``f``.  Dynamic sizes are bounded by ``max_len`` (default 32) to keep examples cheap.
"""

from __future__ import annotations

from typing import Any

from eth_abi.grammar import BasicType, TupleType, parse
from hypothesis import strategies as st

from contracts.abi import Abi, AbiSource


def for_type(type_str: str, *, max_len: int = 32) -> st.SearchStrategy[Any]:
    """A strategy for values of the canonical ABI type ``type_str``."""
    return _strategy(parse(type_str), max_len)


def _strategy(t: Any, max_len: int) -> st.SearchStrategy[Any]:
    if t.is_array:
        inner = _strategy(t.item_type, max_len)
        dims = t.arrlist[-1]
        if dims:  # fixed size T[k]
            return st.lists(inner, min_size=dims[0], max_size=dims[0])
        return st.lists(inner, max_size=max_len)
    if isinstance(t, TupleType):
        return st.tuples(*(_strategy(c, max_len) for c in t.components))
    if not isinstance(t, BasicType):  # pragma: no cover - the grammar has no other kind
        raise TypeError(f"unsupported ABI type {t}")
    base, sub = t.base, t.sub
    if base == "uint":
        return st.integers(0, 2 ** int(sub) - 1)
    if base == "int":
        bits = int(sub)
        return st.integers(-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
    if base == "address":
        return st.binary(min_size=20, max_size=20)
    if base == "bool":
        return st.booleans()
    if base == "bytes":
        if sub:
            return st.binary(min_size=int(sub), max_size=int(sub))
        return st.binary(max_size=max_len)
    if base == "string":
        return st.text(max_size=max_len)
    raise TypeError(f"no strategy for ABI type {t} (fixed-point types are not supported)")


def for_function(abi: Abi | AbiSource, name: str, nargs: int | None = None, *,
                 max_len: int = 32) -> st.SearchStrategy[tuple[Any, ...]]:
    """Tuples of arguments for function ``name`` of ``abi`` (a signature picks an
    overload)."""
    abi = abi if isinstance(abi, Abi) else Abi(abi)
    fn = abi.function(name, nargs)
    return st.tuples(*(for_type(t, max_len=max_len) for t in fn.inputs))
