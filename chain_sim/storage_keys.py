"""Substrate-style storage keys: ``twox128(pallet) ++ twox128(item) ++ hashed map keys``.

The hashers are substrate-interface's (:mod:`substrateinterface.utils.hasher`):
``twox128`` (two xxhash64 digests, seeds 0 and 1), ``blake2_128_concat`` (a 16-byte
blake2b digest followed by the key itself) and ``identity`` (the key as it is, for keys
that are already hashes).  The items this chain keeps:

=============================  ======================================  ==================
key                            map key(s)                              value (SCALE)
=============================  ======================================  ==================
``System.Account``             blake2_128_concat(account id)           ``SimAccountInfo``
``System.Number``              --                                      ``u32``
``Timestamp.Now``              --                                      ``u64`` (ms)
``Revive.ChainId``             --                                      ``u64``
``Revive.OriginalAccount``     identity(address)                       account id
``Revive.AccountDust``         identity(address)                       ``u32`` (never 0)
``Revive.PristineCode``        identity(code hash)                     blob
``Revive.CodeInfoOf``          identity(code hash)                     ``SimCodeInfo``
``Revive.ContractInfoOf``      identity(address)                       ``SimContractInfo``
``Revive.ContractStorage``     blake2_128_concat(address) ++ slot      raw value bytes
=============================  ======================================  ==================

A contract storage ``slot`` is ``0x00 ++ blake2_256(key)`` for a fixed 32-byte key and
``0x01 ++ blake2_128_concat(key)`` for a variable-length key, so the two kinds never
collide (as in the pallet, where they are different child-trie keys).

``Revive.AccountDust`` is the part of an address's Ethereum balance below one native
unit (pallet-revive keeps it in its per-address ``AccountInfo.dust``): the Ethereum
balance is ``free * native_to_eth_ratio + dust`` with ``dust < ratio``.  A zero dust
is not stored, so on a chain whose ratio is 1 the item never appears.
"""

from __future__ import annotations

from functools import cache
from hashlib import blake2b

from substrateinterface.utils.hasher import xxh128


def twox128(data: bytes) -> bytes:
    return bytes(xxh128(data))


def blake2_128_concat(data: bytes) -> bytes:
    return blake2b(data, digest_size=16).digest() + data


def blake2_256(data: bytes) -> bytes:
    return blake2b(data, digest_size=32).digest()


@cache
def prefix(pallet: str, item: str) -> bytes:
    """The 32-byte prefix of storage item ``pallet.item``."""
    return twox128(pallet.encode()) + twox128(item.encode())


ACCOUNT = prefix("System", "Account")
NUMBER = prefix("System", "Number")
NOW = prefix("Timestamp", "Now")
ORIGINAL_ACCOUNT = prefix("Revive", "OriginalAccount")
PRISTINE_CODE = prefix("Revive", "PristineCode")
CODE_INFO = prefix("Revive", "CodeInfoOf")
CONTRACT_INFO = prefix("Revive", "ContractInfoOf")
CONTRACT_STORAGE = prefix("Revive", "ContractStorage")
CHAIN_ID = prefix("Revive", "ChainId")
ACCOUNT_DUST = prefix("Revive", "AccountDust")


def account_key(account_id: bytes) -> bytes:
    return ACCOUNT + blake2_128_concat(account_id)


def original_account_key(address: bytes) -> bytes:
    return ORIGINAL_ACCOUNT + address


def account_dust_key(address: bytes) -> bytes:
    return ACCOUNT_DUST + address


def code_key(code_hash: bytes) -> bytes:
    return PRISTINE_CODE + code_hash


def code_info_key(code_hash: bytes) -> bytes:
    return CODE_INFO + code_hash


def contract_info_key(address: bytes) -> bytes:
    return CONTRACT_INFO + address


def contract_storage_prefix(address: bytes) -> bytes:
    """Every storage slot of the contract at ``address`` starts with this."""
    return CONTRACT_STORAGE + blake2_128_concat(address)


def contract_storage_key(address: bytes, key: bytes, fixed: bool) -> bytes:
    slot = b"\x00" + blake2_256(key) if fixed else b"\x01" + blake2_128_concat(key)
    return contract_storage_prefix(address) + slot


def prefix_end(p: bytes) -> bytes | None:
    """The smallest key greater than every key starting with ``p`` (``None``: none)."""
    b = bytearray(p)
    while b and b[-1] == 0xFF:
        b.pop()
    if not b:
        return None
    b[-1] += 1
    return bytes(b)
