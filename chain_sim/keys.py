"""Accounts: sr25519 key pairs (substrate-interface), SS58 addresses, and the mapping
between 32-byte Substrate account ids and the 20-byte addresses contracts see.

The mapping is pallet-revive's (``AccountId32Mapper``):

* account id -> address: an *Ethereum-derived* account id (an address followed by
  twelve ``0xEE`` bytes) gives back its first 20 bytes; any other account id gives the
  last 20 bytes of its keccak-256 hash.
* address -> account id: the original account id when it was mapped (the pallet's
  ``OriginalAccount`` map, kept by :mod:`chain_sim.state`), else the *fallback*
  account id ``address ++ 0xEE * 12``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from substrateinterface import Keypair, KeypairType

from executor.revive.hashing import keccak256

SS58_FORMAT = 42
"""The generic Substrate SS58 prefix, used for every address this chain prints."""

ETH_SUFFIX = b"\xee" * 12


def is_eth_derived(account_id: bytes) -> bool:
    """Whether ``account_id`` is an address padded with ``0xEE`` (the fallback form)."""
    return len(account_id) == 32 and account_id[20:] == ETH_SUFFIX


def to_address(account_id: bytes) -> bytes:
    """The 20-byte contract-side address of a 32-byte account id."""
    if len(account_id) != 32:
        raise ValueError(f"an account id has 32 bytes, got {len(account_id)}")
    if is_eth_derived(account_id):
        return account_id[:20]
    return keccak256(account_id)[12:]


def fallback_account_id(address: bytes) -> bytes:
    """The account id an unmapped 20-byte address stands for."""
    if len(address) != 20:
        raise ValueError(f"an address has 20 bytes, got {len(address)}")
    return address + ETH_SUFFIX


def ss58(account_id: bytes) -> str:
    """The SS58 text form of a 32-byte account id."""
    return Keypair(public_key=account_id, ss58_format=SS58_FORMAT).ss58_address  # type: ignore[no-any-return]


def account_id_of(text_or_bytes: str | bytes) -> bytes:
    """A 32-byte account id from raw bytes, ``0x`` hex or an SS58 address."""
    if isinstance(text_or_bytes, bytes):
        if len(text_or_bytes) != 32:
            raise ValueError(f"an account id has 32 bytes, got {len(text_or_bytes)}")
        return text_or_bytes
    s = text_or_bytes.strip()
    if s.startswith("0x"):
        raw = bytes.fromhex(s[2:])
        if len(raw) != 32:
            raise ValueError(f"an account id has 32 bytes, got {len(raw)}: {s}")
        return raw
    try:
        return bytes(Keypair(ss58_address=s, ss58_format=SS58_FORMAT).public_key)
    except ValueError as exc:
        raise ValueError(f"not an SS58 address: {s!r} ({exc})") from None


@dataclass(frozen=True)
class Account:
    """A key pair with its account id, SS58 address and contract-side address."""

    keypair: Keypair = field(repr=False, compare=False)
    account_id: bytes
    name: str = ""

    @classmethod
    def from_uri(cls, uri: str) -> Account:
        """A development account: ``//Alice``, ``//Bob``, ``//user/7``, a mnemonic, ..."""
        kp = Keypair.create_from_uri(uri, ss58_format=SS58_FORMAT,
                                     crypto_type=KeypairType.SR25519)
        return cls(kp, bytes(kp.public_key), uri)

    @classmethod
    def dev(cls, name: str) -> Account:
        """``//Name`` (``dev("alice")`` is ``//Alice``)."""
        return cls.from_uri("//" + name[:1].upper() + name[1:])

    @property
    def ss58(self) -> str:
        return self.keypair.ss58_address  # type: ignore[no-any-return]

    @property
    def address(self) -> bytes:
        """The 20-byte address contracts see as ``msg.sender``."""
        return to_address(self.account_id)

    def sign(self, message: bytes) -> bytes:
        """A 64-byte sr25519 signature (randomised: two signatures of one message differ)."""
        return bytes(self.keypair.sign(message))

    def __repr__(self) -> str:
        label = f" {self.name}" if self.name else ""
        return f"Account({self.ss58}{label}, 0x{self.address.hex()})"


def verify(account_id: bytes, message: bytes, signature: bytes) -> bool:
    """Whether ``signature`` is ``account_id``'s sr25519 signature of ``message``."""
    if len(account_id) != 32 or len(signature) != 64:
        return False
    try:
        kp = Keypair(public_key=account_id, ss58_format=SS58_FORMAT,
                     crypto_type=KeypairType.SR25519)
        return bool(kp.verify(message, signature))
    except (ValueError, TypeError):
        return False
