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

from chain_sim import scale as S
from chain_sim.codec import hx
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


_CALL_INDEX = {Transfer: 0, UploadCode: 1, Instantiate: 2, InstantiateWithCode: 3,
               ContractCall: 4}


def encode_call(call: Call) -> bytes:
    """``SimCall`` bytes (the same as ``CODEC.encode("SimCall", call_to_scale(call))``)."""
    try:
        if isinstance(call, Transfer):
            body = S.fixed(call.dest, 32, "dest") + S.compact(call.value)
        elif isinstance(call, UploadCode):
            body = S.enc_bytes(call.code) + S.compact(call.storage_deposit_limit)
        elif isinstance(call, Instantiate):
            body = (S.compact(call.value) + S.compact(call.gas_limit)
                    + S.compact(call.storage_deposit_limit)
                    + S.fixed(call.code_hash, 32, "code_hash") + S.enc_bytes(call.data)
                    + S.enc_option(call.salt, lambda v: S.fixed(v, 32, "salt")))
        elif isinstance(call, InstantiateWithCode):
            body = (S.compact(call.value) + S.compact(call.gas_limit)
                    + S.compact(call.storage_deposit_limit) + S.enc_bytes(call.code)
                    + S.enc_bytes(call.data)
                    + S.enc_option(call.salt, lambda v: S.fixed(v, 32, "salt")))
        elif isinstance(call, ContractCall):
            body = (S.fixed(call.dest, 20, "dest") + S.compact(call.value)
                    + S.compact(call.gas_limit) + S.compact(call.storage_deposit_limit)
                    + S.enc_bytes(call.data))
        else:
            raise TypeError(f"not a call: {call!r}")
    except S.ScaleError as exc:
        raise InvalidTransaction(f"cannot encode {type(call).__name__}: {exc}") from None
    return bytes([_CALL_INDEX[type(call)]]) + body


def read_call(r: S.Reader) -> Call:
    index = r.u8("call index")
    if index == 0:
        return Transfer(r.take(32, "dest"), r.compact("value"))
    if index == 1:
        return UploadCode(r.bytes("code"), r.compact("storage_deposit_limit"))
    if index in (2, 3):
        value, gas, limit = r.compact("value"), r.compact("gas_limit"), r.compact(
            "storage_deposit_limit")
        if index == 2:
            code_hash, data = r.take(32, "code_hash"), r.bytes("data")
            salt = r.option("salt", lambda: r.take(32, "salt"))
            return Instantiate(code_hash, data, value, gas, limit, salt)
        code, data = r.bytes("code"), r.bytes("data")
        salt = r.option("salt", lambda: r.take(32, "salt"))
        return InstantiateWithCode(code, data, value, gas, limit, salt)
    if index == 4:
        dest, value = r.take(20, "dest"), r.compact("value")
        gas, limit = r.compact("gas_limit"), r.compact("storage_deposit_limit")
        return ContractCall(dest, r.bytes("data"), value, gas, limit)
    r.pos -= 1
    raise S.ScaleError(f"malformed {r.what}: unknown call index {index} at byte {r.pos}")


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
            head = (bytes([VERSION]) + S.fixed(self.signer, 32, "signer")
                    + S.fixed(self.signature, 64, "signature") + S.compact(self.nonce)
                    + S.compact(self.tip))
        except S.ScaleError as exc:
            raise InvalidTransaction(f"cannot encode the extrinsic: {exc}") from None
        return head + encode_call(self.call)

    @classmethod
    def decode(cls, raw: bytes) -> Extrinsic:
        """Raises :class:`InvalidTransaction` for bytes that are not an extrinsic."""
        if not raw:
            raise InvalidTransaction("malformed extrinsic: empty")
        if raw[0] != VERSION:
            raise InvalidTransaction(f"unsupported extrinsic version 0x{raw[0]:02x} "
                                     f"(expected 0x{VERSION:02x}: signed, format 4)")
        r = S.Reader(raw, "extrinsic")
        try:
            r.u8("version")
            signer, signature = r.take(32, "signer"), r.take(64, "signature")
            nonce, tip = r.compact("nonce"), r.compact("tip")
            call = read_call(r)
            r.end()
        except S.ScaleError as exc:
            raise InvalidTransaction(str(exc)) from None
        if nonce > 0xFFFF_FFFF:
            raise InvalidTransaction(f"malformed extrinsic: nonce {nonce} is not a u32")
        return cls(signer, signature, nonce, call, tip)

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
    """``SimSigningPayload`` bytes, hashed with blake2-256 when longer than 256."""
    payload = (encode_call(call) + S.compact(nonce) + S.compact(tip)
               + S.fixed(genesis_hash, 32, "genesis hash") + S.u64(chain_id))
    return blake2_256(payload) if len(payload) > 256 else payload


def sign(account: Account, call: Call, nonce: int, *, genesis_hash: bytes, chain_id: int,
         tip: int = 0) -> Extrinsic:
    """``call`` signed by ``account`` at ``nonce`` for the chain with ``genesis_hash``."""
    payload = signing_payload(call, nonce, tip, genesis_hash, chain_id)
    return Extrinsic(account.account_id, account.sign(payload), nonce, call, tip)
