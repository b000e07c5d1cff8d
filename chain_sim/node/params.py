"""Parameter parsing for RPC handlers: every failure is a ``-32602`` error naming the
parameter."""

from __future__ import annotations

from typing import Any

from chain_sim.node.jsonrpc import INVALID_PARAMS, RpcError


def bad(name: str, why: str) -> RpcError:
    return RpcError(INVALID_PARAMS, f"invalid params: {name}: {why}")


def positional(params: Any, names: list[str], required: int) -> list[Any]:
    """``params`` as a list of ``len(names)`` (missing optional ones ``None``)."""
    if isinstance(params, dict):
        out = [params.get(n) for n in names]
    else:
        out = list(params) + [None] * (len(names) - len(params))
        if len(params) > len(names):
            raise bad(names[-1] if names else "params",
                      f"too many arguments: expected at most {len(names)}, got {len(params)}")
    for i in range(required):
        if out[i] is None:
            raise bad(names[i], "missing value for required argument")
    return out


def quantity(value: Any, name: str) -> int:
    """A hex quantity ``0x...`` (integers are accepted too)."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if not isinstance(value, str) or not value.startswith(("0x", "0X")) or len(value) < 3:
        raise bad(name, f"expected a hex quantity, got {value!r:.80}")
    try:
        return int(value[2:], 16)
    except ValueError:
        raise bad(name, f"not hex: {value!r:.80}") from None


def word(value: Any, name: str) -> bytes:
    """A quantity that fits 32 bytes, as 32 big-endian bytes (a storage slot)."""
    n = quantity(value, name)
    if n >= 1 << 256:
        raise bad(name, "more than 32 bytes")
    return n.to_bytes(32, "big")


def data(value: Any, name: str, size: int | None = None) -> bytes:
    """Hex bytes ``0x...`` (of exactly ``size`` bytes when given)."""
    if not isinstance(value, str) or not value.startswith(("0x", "0X")):
        raise bad(name, f"expected 0x-prefixed hex data, got {value!r:.80}")
    try:
        raw = bytes.fromhex(value[2:])
    except ValueError:
        raise bad(name, f"not hex: {value!r:.80}") from None
    if size is not None and len(raw) != size:
        raise bad(name, f"expected {size} bytes, got {len(raw)}")
    return raw


def address(value: Any, name: str) -> bytes:
    return data(value, name, 20)


def hash32(value: Any, name: str) -> bytes:
    return data(value, name, 32)


def first(params: Any, name: str) -> Any:
    """The only, optional, argument (``None`` when ``params`` is empty)."""
    return positional(params, [name], 0)[0] if params else None


def one(params: Any, name: str) -> Any:
    """The only, required, argument."""
    (value,) = positional(params, [name], 1)
    return value


def address_and_block(params: Any) -> tuple[bytes, Any]:
    """``[address, block?]`` (``eth_getBalance`` and its kind): the parsed address and
    the block argument as given (``None`` when left out)."""
    addr, block = positional(params, ["address", "block"], 1)
    return address(addr, "address"), block


def address_and_quantity(params: Any, name: str) -> tuple[bytes, int]:
    """``[address, quantity]`` (``hardhat_setBalance`` and its kind)."""
    addr, value = positional(params, ["address", name], 2)
    return address(addr, "address"), quantity(value, name)
