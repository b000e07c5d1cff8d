"""Contract address derivation (spec section 4.4; pallet-revive ``address.rs``).

* CREATE1: ``keccak256(rlp([deployer, nonce]))[12:]``, as on Ethereum.
* CREATE2: ``keccak256(0xff ++ deployer ++ salt ++ keccak256(code ++ input))[12:]`` --
  unlike Ethereum the init-code hash covers the PVM blob **followed by the constructor
  input**.
"""

from __future__ import annotations

from executor.revive.hashing import keccak256


def _rlp_bytes(data: bytes) -> bytes:
    """RLP of a byte string shorter than 56 bytes (all this module needs)."""
    if len(data) == 1 and data[0] < 0x80:
        return data
    if len(data) >= 56:
        raise ValueError("byte strings of 56 bytes or more are not needed here")
    return bytes([0x80 + len(data)]) + data


def _rlp_uint(value: int) -> bytes:
    if value < 0:
        raise ValueError(f"negative nonce {value}")
    return _rlp_bytes(value.to_bytes((value.bit_length() + 7) // 8, "big"))


def create1(deployer: bytes, nonce: int) -> bytes:
    """The CREATE address of a contract made by ``deployer`` (20 bytes) at ``nonce``."""
    if len(deployer) != 20:
        raise ValueError("a deployer address has 20 bytes")
    payload = _rlp_bytes(deployer) + _rlp_uint(nonce)
    return keccak256(bytes([0xC0 + len(payload)]) + payload)[12:]


def create2(deployer: bytes, code: bytes, input_data: bytes, salt: bytes) -> bytes:
    """The CREATE2 address (pallet-revive flavour: code and constructor input hashed)."""
    if len(deployer) != 20 or len(salt) != 32:
        raise ValueError("create2 takes a 20-byte deployer and a 32-byte salt")
    init_hash = keccak256(code + input_data)
    return keccak256(b"\xff" + deployer + salt + init_hash)[12:]
