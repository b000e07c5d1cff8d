"""A small SCALE reader/writer for the chain's hot paths.

The chain's types are *defined* by the scalecodec registry in :mod:`chain_sim.codec`;
encoding and decoding them through scalecodec costs 100-200 us per value, which
dominated block execution (measured: 36% of an ERC-20 transfer block's time).  The
functions here produce the same bytes from the same definitions -- tests compare them
with scalecodec on many random values -- and decode strictly: truncated input,
trailing bytes, non-canonical compact integers and out-of-range enum indices raise
:class:`ScaleError` naming what was being read and where.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

_U128 = (1 << 128) - 1
_COMPACT_MAX = (1 << 536) - 1


class ScaleError(ValueError):
    """Bytes that are not a valid encoding of the type being read."""


def compact(n: int) -> bytes:
    """SCALE compact encoding of a non-negative integer."""
    if n < 0 or n > _COMPACT_MAX:
        raise ScaleError(f"compact integer out of range: {n}")
    if n < 1 << 6:
        return bytes([n << 2])
    if n < 1 << 14:
        return ((n << 2) | 1).to_bytes(2, "little")
    if n < 1 << 30:
        return ((n << 2) | 2).to_bytes(4, "little")
    size = max(4, (n.bit_length() + 7) // 8)
    return bytes([((size - 4) << 2) | 3]) + n.to_bytes(size, "little")


def enc_bytes(data: bytes) -> bytes:
    """``Vec<u8>``: compact length, then the bytes."""
    return compact(len(data)) + data


def enc_option(value: T | None, enc: Callable[[T], bytes]) -> bytes:
    return b"\x00" if value is None else b"\x01" + enc(value)


def enc_vec(items: list[T], enc: Callable[[T], bytes]) -> bytes:
    return compact(len(items)) + b"".join(enc(x) for x in items)


def u32(n: int) -> bytes:
    return n.to_bytes(4, "little")


def u64(n: int) -> bytes:
    return n.to_bytes(8, "little")


def u128(n: int) -> bytes:
    if not 0 <= n <= _U128:
        raise ScaleError(f"u128 out of range: {n}")
    return n.to_bytes(16, "little")


def fixed(data: bytes, n: int, what: str) -> bytes:
    if len(data) != n:
        raise ScaleError(f"{what} must be {n} bytes, got {len(data)}")
    return data


class Reader:
    """Reads SCALE values from ``data``; :meth:`end` checks nothing is left."""

    __slots__ = ("data", "pos", "what")

    def __init__(self, data: bytes, what: str) -> None:
        self.data = bytes(data)
        self.pos = 0
        self.what = what

    def _fail(self, reading: str, detail: str = "") -> ScaleError:
        return ScaleError(f"malformed {self.what}: {reading} at byte {self.pos}"
                          f"{': ' + detail if detail else ''}")

    def take(self, n: int, reading: str) -> bytes:
        end = self.pos + n
        if end > len(self.data):
            raise self._fail(reading, f"needs {n} bytes, {len(self.data) - self.pos} left")
        out = self.data[self.pos:end]
        self.pos = end
        return out

    def u8(self, reading: str) -> int:
        return self.take(1, reading)[0]

    def u32(self, reading: str) -> int:
        return int.from_bytes(self.take(4, reading), "little")

    def u64(self, reading: str) -> int:
        return int.from_bytes(self.take(8, reading), "little")

    def u128(self, reading: str) -> int:
        return int.from_bytes(self.take(16, reading), "little")

    def compact(self, reading: str) -> int:
        start = self.pos
        first = self.u8(reading)
        mode = first & 3
        if mode == 0:
            return first >> 2
        if mode == 1:
            n = (first | self.u8(reading) << 8) >> 2
            lo = 1 << 6
        elif mode == 2:
            n = (first | int.from_bytes(self.take(3, reading), "little") << 8) >> 2
            lo = 1 << 14
        else:
            size = (first >> 2) + 4
            n = int.from_bytes(self.take(size, reading), "little")
            lo = 1 << 30 if size == 4 else 1 << (8 * (size - 1))
        if n < lo:
            self.pos = start
            raise self._fail(reading, "non-canonical compact integer")
        return n

    def bytes(self, reading: str) -> bytes:
        n = self.compact(reading + " length")
        return self.take(n, reading)

    def option(self, reading: str, read: Callable[[], T]) -> T | None:
        tag = self.u8(reading)
        if tag == 0:
            return None
        if tag == 1:
            return read()
        self.pos -= 1
        raise self._fail(reading, f"option tag {tag}")

    def vec(self, reading: str, read: Callable[[], T]) -> list[T]:
        n = self.compact(reading + " length")
        if n > len(self.data) - self.pos:   # every item takes at least one byte
            raise self._fail(reading, f"{n} items cannot fit")
        return [read() for _ in range(n)]

    def text(self, reading: str) -> str:
        raw = self.bytes(reading)
        try:
            return raw.decode()
        except UnicodeDecodeError as exc:
            raise self._fail(reading, f"not UTF-8 ({exc.reason})") from None

    def end(self) -> None:
        if self.pos != len(self.data):
            raise self._fail("end", f"{len(self.data) - self.pos} trailing bytes")
