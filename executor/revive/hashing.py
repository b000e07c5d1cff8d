"""Keccak-256 (the original Keccak padding, as Ethereum uses) via pycryptodome."""

from __future__ import annotations

from Crypto.Hash import keccak


def keccak256(data: bytes | bytearray | memoryview) -> bytes:
    """The 32-byte Keccak-256 digest of ``data``."""
    return keccak.new(digest_bits=256, data=bytes(data)).digest()
