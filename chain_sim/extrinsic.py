"""Signed transactions: the calls the chain dispatches and their signed envelope.

An extrinsic is ``SimExtrinsic`` (see :mod:`chain_sim.codec`): a version byte
(``0x84``: signed, format 4), the signer's account id, an sr25519 signature, the
signer's nonce, a tip and the call.  The signature covers ``SimSigningPayload`` --
the call, nonce and tip plus the chain's genesis hash and chain id, so a transaction
cannot be replayed on another chain -- or its blake2-256 hash when that is longer than
256 bytes (as Substrate does).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chain_sim.codec import CODEC, CodecError, h, hx
from chain_sim.keys import Account, verify
from chain_sim.storage_keys import blake2_256

VERSION = 0x84


class InvalidTransaction(ValueError):
    """A transaction that cannot be included: ``reason`` says why.  Rejecting it
    changes no state."""

    def __init__(self, reason: str, index: int | None = None) -> None:
        super().__init__(reason if index is None else f"extrinsic {index}: {reason}")
        self.reason = reason
        self.index = index


@dataclass(frozen=True)
class Transfer:
    """Moves ``value`` from the signer to account id ``dest`` (32 bytes)."""

    dest: bytes
    value: int


@dataclass(frozen=True)
class UploadCode:
    """Stores a ``.polkavm`` blob under its code hash."""

    code: bytes
    storage_deposit_limit: int


@dataclass(frozen=True)
class Instantiate:
    """Creates a contract from uploaded code (``salt``: CREATE2-style address)."""

    code_hash: bytes
    data: bytes = b""
    value: int = 0
    gas_limit: int = 1_000_000_000
    storage_deposit_limit: int = 10**18
    salt: bytes | None = None


@dataclass(frozen=True)
class InstantiateWithCode:
    """Uploads ``code`` and creates a contract from it."""

    code: bytes
    data: bytes = b""
    value: int = 0
    gas_limit: int = 1_000_000_000
    storage_deposit_limit: int = 10**18
    salt: bytes | None = None


@dataclass(frozen=True)
class ContractCall:
    """Calls the contract at ``dest`` (20 bytes; a plain transfer if it has no code)."""

    dest: bytes
    data: bytes = b""
    value: int = 0
    gas_limit: int = 1_000_000_000
    storage_deposit_limit: int = 10**18


Call = Transfer | UploadCode | Instantiate | InstantiateWithCode | ContractCall


def _check_len(name: str, value: bytes, n: int) -> bytes:
    if not isinstance(value, bytes) or len(value) != n:
        raise InvalidTransaction(f"{name} must be {n} bytes")
    return value


def call_to_scale(call: Call) -> dict[str, Any]:
    if isinstance(call, Transfer):
        return {"transfer": {"dest": hx(_check_len("dest", call.dest, 32)),
                             "value": call.value}}
    if isinstance(call, UploadCode):
        return {"upload_code": {"code": hx(call.code),
                                "storage_deposit_limit": call.storage_deposit_limit}}
    salt = None
    if isinstance(call, Instantiate | InstantiateWithCode) and call.salt is not None:
        salt = hx(_check_len("salt", call.salt, 32))
    if isinstance(call, Instantiate):
        return {"instantiate": {
            "value": call.value, "gas_limit": call.gas_limit,
            "storage_deposit_limit": call.storage_deposit_limit,
            "code_hash": hx(_check_len("code_hash", call.code_hash, 32)),
            "data": hx(call.data), "salt": salt}}
    if isinstance(call, InstantiateWithCode):
        return {"instantiate_with_code": {
            "value": call.value, "gas_limit": call.gas_limit,
            "storage_deposit_limit": call.storage_deposit_limit,
            "code": hx(call.code), "data": hx(call.data), "salt": salt}}
    if isinstance(call, ContractCall):
        return {"call": {"dest": hx(_check_len("dest", call.dest, 20)), "value": call.value,
                         "gas_limit": call.gas_limit,
                         "storage_deposit_limit": call.storage_deposit_limit,
                         "data": hx(call.data)}}
    raise TypeError(f"not a call: {call!r}")


def call_from_scale(value: Any) -> Call:
    (name, a), = value.items()
    if name == "transfer":
        return Transfer(h(a["dest"]), a["value"])
    if name == "upload_code":
        return UploadCode(h(a["code"]), a["storage_deposit_limit"])
    salt = None if a.get("salt") is None else h(a["salt"])
    if name == "instantiate":
        return Instantiate(h(a["code_hash"]), h(a["data"]), a["value"], a["gas_limit"],
                           a["storage_deposit_limit"], salt)
    if name == "instantiate_with_code":
        return InstantiateWithCode(h(a["code"]), h(a["data"]), a["value"], a["gas_limit"],
                                   a["storage_deposit_limit"], salt)
    if name == "call":
        return ContractCall(h(a["dest"]), h(a["data"]), a["value"], a["gas_limit"],
                            a["storage_deposit_limit"])
    raise InvalidTransaction(f"unknown call {name!r}")


@dataclass(frozen=True)
class Extrinsic:
    """A signed transaction."""

    signer: bytes
    signature: bytes
    nonce: int
    call: Call
    tip: int = 0

    def encode(self) -> bytes:
        try:
            return CODEC.encode("SimExtrinsic", {
                "version": VERSION, "signer": hx(_check_len("signer", self.signer, 32)),
                "signature": hx(_check_len("signature", self.signature, 64)),
                "nonce": self.nonce, "tip": self.tip, "call": call_to_scale(self.call)})
        except CodecError as exc:
            raise InvalidTransaction(str(exc)) from None

    @classmethod
    def decode(cls, raw: bytes) -> Extrinsic:
        """Raises :class:`InvalidTransaction` for bytes that are not an extrinsic."""
        if not raw:
            raise InvalidTransaction("malformed extrinsic: empty")
        if raw[0] != VERSION:
            raise InvalidTransaction(f"unsupported extrinsic version 0x{raw[0]:02x} "
                                     f"(expected 0x{VERSION:02x}: signed, format 4)")
        try:
            d = CODEC.decode("SimExtrinsic", raw)
            call = call_from_scale(d["call"])
        except (CodecError, KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, InvalidTransaction):
                raise
            raise InvalidTransaction(f"malformed extrinsic: {exc}") from None
        return cls(h(d["signer"]), h(d["signature"]), d["nonce"], call, d["tip"])

    def signing_payload(self, genesis_hash: bytes, chain_id: int) -> bytes:
        return signing_payload(self.call, self.nonce, self.tip, genesis_hash, chain_id)

    def verify(self, genesis_hash: bytes, chain_id: int) -> bool:
        return verify(self.signer, self.signing_payload(genesis_hash, chain_id),
                      self.signature)

    @property
    def hash(self) -> bytes:
        return blake2_256(self.encode())


def signing_payload(call: Call, nonce: int, tip: int, genesis_hash: bytes,
                    chain_id: int) -> bytes:
    payload = CODEC.encode("SimSigningPayload", {
        "call": call_to_scale(call), "nonce": nonce, "tip": tip,
        "genesis_hash": hx(genesis_hash), "chain_id": chain_id})
    return blake2_256(payload) if len(payload) > 256 else payload


def sign(account: Account, call: Call, nonce: int, *, genesis_hash: bytes, chain_id: int,
         tip: int = 0) -> Extrinsic:
    """``call`` signed by ``account`` at ``nonce`` for the chain with ``genesis_hash``."""
    payload = signing_payload(call, nonce, tip, genesis_hash, chain_id)
    return Extrinsic(account.account_id, account.sign(payload), nonce, call, tip)
