"""The one-word fast path of :func:`contracts.abi.encode` / :func:`contracts.abi.decode`
against ``eth-abi`` itself (the second implementation): the same bytes, the same
values, and the same exceptions for what ``eth-abi`` rejects."""

from __future__ import annotations

from typing import Any

from eth_abi.abi import decode as eth_decode
from eth_abi.abi import encode as eth_encode
from hypothesis import given, settings
from hypothesis import strategies as st

from contracts.abi import _word_codecs, decode, encode, from_abi_value, to_abi_value

WORD_TYPES = (["uint256", "uint8", "uint64", "int256", "int8", "int32", "address", "bool"]
              + [f"bytes{n}" for n in (1, 4, 20, 32)])


def _eth_decode(types: list[str], data: bytes) -> tuple[Any, ...]:
    return tuple(from_abi_value(t, v) for t, v in zip(types, eth_decode(types, data),
                                                      strict=True))


def _eth_encode(types: list[str], values: list[Any]) -> bytes:
    return eth_encode(types, [to_abi_value(t, v) for t, v in zip(types, values, strict=True)])


def _outcome(fn: Any, *args: Any) -> tuple[str, Any]:
    try:
        return "ok", fn(*args)
    except Exception as exc:  # noqa: BLE001 - the kind of failure is compared
        return "error", type(exc)


def test_every_listed_type_takes_the_fast_path() -> None:
    assert _word_codecs(tuple(WORD_TYPES)) is not None
    assert _word_codecs(("uint256", "string")) is None
    assert _word_codecs(("uint7",)) is None and _word_codecs(("bytes33",)) is None


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(WORD_TYPES), min_size=1, max_size=4), st.data())
def test_decode_of_any_words_matches_eth_abi(types: list[str], data: st.DataObject) -> None:
    # words drawn to hit the edges: small values, all-ones, random, and garbage padding
    word = st.one_of(st.integers(0, 300).map(lambda v: v.to_bytes(32, "big")),
                     st.just(b"\xff" * 32), st.binary(min_size=32, max_size=32),
                     st.integers(0, 2**160 - 1).map(lambda v: v.to_bytes(32, "big")),
                     st.binary(min_size=1, max_size=4).map(lambda b: b.ljust(32, b"\0")))
    raw = b"".join(data.draw(word) for _ in types)
    assert _outcome(decode, types, raw) == _outcome(_eth_decode, types, raw)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(WORD_TYPES), min_size=1, max_size=4), st.data())
def test_encode_of_any_values_matches_eth_abi(types: list[str], data: st.DataObject) -> None:
    value = st.one_of(st.integers(-2**256, 2**257), st.booleans(),
                      st.binary(min_size=0, max_size=33))
    values = [data.draw(value) for _ in types]
    assert _outcome(encode, types, values) == _outcome(_eth_encode, types, values)
