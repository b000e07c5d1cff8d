"""Transactions: the calls the chain dispatches and the standard Substrate v4
extrinsic envelope they travel in.

An extrinsic, as stored in a block body, hashed (blake2-256) and sent over RPC, is a
SCALE ``Vec<u8>`` (compact length prefix) holding

* signed (version byte ``0x84``): ``MultiAddress::Id(account id)``,
  ``MultiSignature`` (``Sr25519`` or ``Ed25519``), then the signed extensions' extra
  data -- ``CheckMortality`` (an ``Era``), ``CheckNonce`` (``Compact<u32>``) and
  ``ChargeTransactionPayment`` (the tip, ``Compact<u128>``) -- then the call;
* unsigned (``0x04``): only the call.  The chain accepts unsigned only
  ``Revive.eth_transact``, whose payload is a signed Ethereum transaction.

A call is ``pallet index, call index, arguments`` as the runtime metadata
(:mod:`chain_sim.node.metadata`) describes them: ``Balances`` (index 2)
``transfer_allow_death`` / ``transfer_keep_alive``; ``Revive`` (index 4)
``eth_transact``, ``call``, ``instantiate``, ``instantiate_with_code``,
``upload_code``; gas limits are a ``Weight`` (``ref_time`` is the gas).

The signature covers the signing payload -- the call, the extra data, and the
additional data ``spec_version``, ``transaction_version``, the genesis hash and the
hash of the era's birth block (the genesis hash for an immortal era) -- or its
blake2-256 hash when that is longer than 256 bytes, exactly as Substrate and
py-substrate-interface build it.  So a transaction signed by any standard client
verifies here, and one signed for another chain (another genesis) does not.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chain_sim import scale as S
from chain_sim.codec import hx
from chain_sim.keys import Account, verify
from chain_sim.storage_keys import blake2_256

SIGNED = 0x84
UNSIGNED = 0x04
VERSION = SIGNED
SPEC_VERSION = 1
TRANSACTION_VERSION = 1

BALANCES_PALLET = 2
REVIVE_PALLET = 4
IMMORTAL = b"\x00"

# MultiSignature variants (the order py-substrate-interface requires)
SIG_ED25519 = 0
SIG_SR25519 = 1


class InvalidTransaction(ValueError):
    """A transaction that cannot be included: ``reason`` says why.  Rejecting it
    changes no state."""

    def __init__(self, reason: str, index: int | None = None) -> None:
        super().__init__(reason if index is None else f"extrinsic {index}: {reason}")
        self.reason = reason
        self.index = index


@dataclass(frozen=True)
class Transfer:
    """Moves ``value`` from the signer to account id ``dest`` (32 bytes)
    (``Balances.transfer_allow_death``, or ``transfer_keep_alive``: the same here,
    there is no existential deposit)."""

    dest: bytes
    value: int
    keep_alive: bool = False


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
    proof_size: int = 0


@dataclass(frozen=True)
class InstantiateWithCode:
    """Uploads ``code`` and creates a contract from it."""

    code: bytes
    data: bytes = b""
    value: int = 0
    gas_limit: int = 1_000_000_000
    storage_deposit_limit: int = 10**18
    salt: bytes | None = None
    proof_size: int = 0


@dataclass(frozen=True)
class ContractCall:
    """Calls the contract at ``dest`` (20 bytes; a plain transfer if it has no code)."""

    dest: bytes
    data: bytes = b""
    value: int = 0
    gas_limit: int = 1_000_000_000
    storage_deposit_limit: int = 10**18
    proof_size: int = 0


@dataclass(frozen=True)
class EthTransact:
    """``Revive.eth_transact``: a signed Ethereum transaction (legacy, EIP-2930 or
    EIP-1559 bytes as ``eth_sendRawTransaction`` takes them); the chain recovers the
    signer (see :mod:`chain_sim.ethtx`)."""

    payload: bytes


@dataclass(frozen=True)
class DevSetBalance:
    """``Dev.set_balance`` (unsigned; dev chains only): sets an account's free balance
    (native units) and the dust of its address (the Ethereum balance below one native
    unit, ``< native_to_eth_ratio``)."""

    who: bytes
    free: int
    dust: int = 0


@dataclass(frozen=True)
class DevSetNonce:
    """``Dev.set_nonce`` (unsigned; dev chains only)."""

    who: bytes
    nonce: int


@dataclass(frozen=True)
class DevSetCode:
    """``Dev.set_code`` (unsigned; dev chains only): the contract at ``address`` runs
    ``code`` from now on (its storage is kept)."""

    address: bytes
    code: bytes


@dataclass(frozen=True)
class DevSetStorage:
    """``Dev.set_storage`` (unsigned; dev chains only): one 32-byte slot of a
    contract (an all-zero value deletes it, as in the EVM)."""

    address: bytes
    key: bytes
    value: bytes


@dataclass(frozen=True)
class DevDispatchAs:
    """``Dev.dispatch_as`` (unsigned; dev chains only): ``call`` (its encoding) as if
    ``who`` had signed it at ``nonce`` (which must be its next) -- impersonation, as
    Hardhat's ``hardhat_impersonateAccount``; the fee is charged as usual.  ``dust``:
    Ethereum value (wei, ``< native_to_eth_ratio``) sent on top of the call's native
    ``value`` (an impersonated Ethereum transaction's value need not be a whole number
    of native units)."""

    who: bytes
    nonce: int
    call: bytes
    dust: int = 0


DevCall = DevSetBalance | DevSetNonce | DevSetCode | DevSetStorage | DevDispatchAs
Call = (Transfer | UploadCode | Instantiate | InstantiateWithCode | ContractCall | EthTransact
        | DevSetBalance | DevSetNonce | DevSetCode | DevSetStorage | DevDispatchAs)
DEV_PALLET = 5


def _check_len(name: str, value: bytes, n: int) -> bytes:
    if not isinstance(value, bytes) or len(value) != n:
        raise InvalidTransaction(f"{name} must be {n} bytes")
    return value


def _weight(ref_time: int, proof_size: int) -> bytes:
    return S.compact(ref_time) + S.compact(proof_size)


def encode_call(call: Call) -> bytes:
    """The call's bytes (pallet index, call index, arguments)."""
    try:
        if isinstance(call, Transfer):
            return (bytes([BALANCES_PALLET, 3 if call.keep_alive else 0]) + b"\x00"
                    + S.fixed(call.dest, 32, "dest") + S.compact(call.value))
        if isinstance(call, DevSetBalance):
            return (bytes([DEV_PALLET, 0]) + S.fixed(call.who, 32, "who")
                    + S.compact(call.free) + S.compact(call.dust))
        if isinstance(call, DevSetNonce):
            return (bytes([DEV_PALLET, 1]) + S.fixed(call.who, 32, "who")
                    + S.compact(call.nonce))
        if isinstance(call, DevSetCode):
            return (bytes([DEV_PALLET, 2]) + S.fixed(call.address, 20, "address")
                    + S.enc_bytes(call.code))
        if isinstance(call, DevSetStorage):
            return (bytes([DEV_PALLET, 3]) + S.fixed(call.address, 20, "address")
                    + S.fixed(call.key, 32, "key") + S.fixed(call.value, 32, "value"))
        if isinstance(call, DevDispatchAs):
            return (bytes([DEV_PALLET, 4]) + S.fixed(call.who, 32, "who")
                    + S.compact(call.nonce) + S.enc_bytes(call.call) + S.compact(call.dust))
        if isinstance(call, EthTransact):
            body = b"\x00" + S.enc_bytes(call.payload)
        elif isinstance(call, ContractCall):
            body = (b"\x01" + S.fixed(call.dest, 20, "dest") + S.compact(call.value)
                    + _weight(call.gas_limit, call.proof_size)
                    + S.compact(call.storage_deposit_limit) + S.enc_bytes(call.data))
        elif isinstance(call, Instantiate):
            body = (b"\x02" + S.compact(call.value) + _weight(call.gas_limit, call.proof_size)
                    + S.compact(call.storage_deposit_limit)
                    + S.fixed(call.code_hash, 32, "code_hash") + S.enc_bytes(call.data)
                    + S.enc_option(call.salt, lambda v: S.fixed(v, 32, "salt")))
        elif isinstance(call, InstantiateWithCode):
            body = (b"\x03" + S.compact(call.value) + _weight(call.gas_limit, call.proof_size)
                    + S.compact(call.storage_deposit_limit) + S.enc_bytes(call.code)
                    + S.enc_bytes(call.data)
                    + S.enc_option(call.salt, lambda v: S.fixed(v, 32, "salt")))
        elif isinstance(call, UploadCode):
            body = b"\x04" + S.enc_bytes(call.code) + S.compact(call.storage_deposit_limit)
        else:
            raise TypeError(f"not a call: {call!r}")
    except S.ScaleError as exc:
        raise InvalidTransaction(f"cannot encode {type(call).__name__}: {exc}") from None
    return bytes([REVIVE_PALLET]) + body


def read_call(r: S.Reader) -> Call:
    pallet = r.u8("pallet index")
    index = r.u8("call index")
    if pallet == BALANCES_PALLET and index in (0, 3):
        if r.u8("MultiAddress variant") != 0:
            r.pos -= 1
            raise S.ScaleError(f"malformed {r.what}: only MultiAddress::Id is supported "
                               f"(byte {r.pos})")
        return Transfer(r.take(32, "dest"), r.compact("value"), index == 3)
    if pallet == DEV_PALLET:
        if index == 0:
            return DevSetBalance(r.take(32, "who"), r.compact("free"), r.compact("dust"))
        if index == 1:
            return DevSetNonce(r.take(32, "who"), r.compact("nonce"))
        if index == 2:
            return DevSetCode(r.take(20, "address"), r.bytes("code"))
        if index == 3:
            return DevSetStorage(r.take(20, "address"), r.take(32, "key"), r.take(32, "value"))
        if index == 4:
            return DevDispatchAs(r.take(32, "who"), r.compact("nonce"), r.bytes("call"),
                                 r.compact("dust"))
    if pallet == REVIVE_PALLET:
        if index == 0:
            return EthTransact(r.bytes("payload"))
        if index == 1:
            dest, value = r.take(20, "dest"), r.compact("value")
            gas, proof = r.compact("gas_limit.ref_time"), r.compact("gas_limit.proof_size")
            limit = r.compact("storage_deposit_limit")
            return ContractCall(dest, r.bytes("data"), value, gas, limit, proof)
        if index in (2, 3):
            value = r.compact("value")
            gas, proof = r.compact("gas_limit.ref_time"), r.compact("gas_limit.proof_size")
            limit = r.compact("storage_deposit_limit")
            if index == 2:
                code_hash, data = r.take(32, "code_hash"), r.bytes("data")
                salt = r.option("salt", lambda: r.take(32, "salt"))
                return Instantiate(code_hash, data, value, gas, limit, salt, proof)
            code, data = r.bytes("code"), r.bytes("data")
            salt = r.option("salt", lambda: r.take(32, "salt"))
            return InstantiateWithCode(code, data, value, gas, limit, salt, proof)
        if index == 4:
            return UploadCode(r.bytes("code"), r.compact("storage_deposit_limit"))
    r.pos -= 2
    raise S.ScaleError(f"malformed {r.what}: unknown call {pallet}.{index} at byte {r.pos}")


def call_to_scale(call: Call) -> dict[str, Any]:
    """The value the ``SimCall`` type of :mod:`chain_sim.codec` encodes to the same
    bytes (for cross-checks)."""
    if isinstance(call, Transfer):
        name = "transfer_keep_alive" if call.keep_alive else "transfer_allow_death"
        return {"Balances": {name: {"dest": {"Id": hx(_check_len("dest", call.dest, 32))},
                                    "value": call.value}}}
    if isinstance(call, DevCall):
        raise TypeError("the Dev pallet's calls are not in the SimCall cross-check type")
    salt = None
    if isinstance(call, Instantiate | InstantiateWithCode) and call.salt is not None:
        salt = hx(_check_len("salt", call.salt, 32))
    inner: dict[str, Any]
    if isinstance(call, EthTransact):
        inner = {"eth_transact": {"payload": hx(call.payload)}}
    elif isinstance(call, UploadCode):
        inner = {"upload_code": {"code": hx(call.code),
                                 "storage_deposit_limit": call.storage_deposit_limit}}
    elif isinstance(call, Instantiate):
        inner = {"instantiate": {
            "value": call.value,
            "gas_limit": {"ref_time": call.gas_limit, "proof_size": call.proof_size},
            "storage_deposit_limit": call.storage_deposit_limit,
            "code_hash": hx(_check_len("code_hash", call.code_hash, 32)),
            "data": hx(call.data), "salt": salt}}
    elif isinstance(call, InstantiateWithCode):
        inner = {"instantiate_with_code": {
            "value": call.value,
            "gas_limit": {"ref_time": call.gas_limit, "proof_size": call.proof_size},
            "storage_deposit_limit": call.storage_deposit_limit,
            "code": hx(call.code), "data": hx(call.data), "salt": salt}}
    elif isinstance(call, ContractCall):
        inner = {"call": {"dest": hx(_check_len("dest", call.dest, 20)), "value": call.value,
                          "gas_limit": {"ref_time": call.gas_limit,
                                        "proof_size": call.proof_size},
                          "storage_deposit_limit": call.storage_deposit_limit,
                          "data": hx(call.data)}}
    else:
        raise TypeError(f"not a call: {call!r}")
    return {"Revive": inner}


# ---- eras ----
def era_birth(era: bytes, current: int) -> tuple[int, int] | None:
    """``(birth block, period)`` of a mortal era at block ``current``; ``None`` for
    the immortal era."""
    if era == IMMORTAL:
        return None
    if len(era) != 2:
        raise InvalidTransaction(f"malformed era 0x{era.hex()}")
    encoded = int.from_bytes(era, "little")
    period = 2 << (encoded % 16)
    quantize = max(period >> 12, 1)
    phase = (encoded >> 4) * quantize
    if period < 4 or phase >= period:
        raise InvalidTransaction(f"malformed era 0x{era.hex()} (period {period}, "
                                 f"phase {phase})")
    birth = (max(current, phase) - phase) // period * period + phase
    return birth, period


def mortal_era(current: int, period: int = 64) -> bytes:
    """The two era bytes for a transaction valid ``period`` blocks from ``current``
    (``period`` a power of two, 4..65536)."""
    if period < 4 or period > 65536 or period & (period - 1):
        raise ValueError(f"era period must be a power of two in 4..65536, got {period}")
    quantize = max(period >> 12, 1)
    phase = current % period // quantize * quantize
    encoded = min(15, max(1, period.bit_length() - 2)) | ((phase // quantize) << 4)
    return encoded.to_bytes(2, "little")


@dataclass(frozen=True)
class Extrinsic:
    """A signed transaction (``sig_type``: ``SIG_SR25519`` or ``SIG_ED25519``)."""

    signer: bytes
    signature: bytes
    nonce: int
    call: Call
    tip: int = 0
    era: bytes = IMMORTAL
    sig_type: int = SIG_SR25519

    def encode(self) -> bytes:
        try:
            inner = (bytes([SIGNED, 0]) + S.fixed(self.signer, 32, "signer")
                     + bytes([self.sig_type]) + S.fixed(self.signature, 64, "signature")
                     + self.era + S.compact(self.nonce) + S.compact(self.tip)
                     + encode_call(self.call))
        except S.ScaleError as exc:
            raise InvalidTransaction(f"cannot encode the extrinsic: {exc}") from None
        return S.enc_bytes(inner)

    @classmethod
    def decode(cls, raw: bytes) -> Extrinsic:
        """Raises :class:`InvalidTransaction` for bytes that are not a signed extrinsic."""
        xt = decode_extrinsic(raw)
        if not isinstance(xt, Extrinsic):
            raise InvalidTransaction("an unsigned extrinsic where a signed one is expected")
        return xt

    def signing_payload(self, genesis_hash: bytes, era_hash: bytes | None = None) -> bytes:
        return signing_payload(self.call, self.nonce, self.tip, genesis_hash,
                               era=self.era, era_hash=era_hash)

    def verify(self, genesis_hash: bytes, era_hash: bytes | None = None) -> bool:
        payload = self.signing_payload(genesis_hash, era_hash)
        if self.sig_type == SIG_SR25519:
            return verify(self.signer, payload, self.signature)
        return _verify_ed25519(self.signer, payload, self.signature)

    @property
    def hash(self) -> bytes:
        return blake2_256(self.encode())


@dataclass(frozen=True)
class Unsigned:
    """An unsigned ("bare") extrinsic: only the call."""

    call: Call

    def encode(self) -> bytes:
        return S.enc_bytes(bytes([UNSIGNED]) + encode_call(self.call))

    @property
    def hash(self) -> bytes:
        return blake2_256(self.encode())


def decode_extrinsic(raw: bytes) -> Extrinsic | Unsigned:
    """A signed or unsigned extrinsic; raises :class:`InvalidTransaction` naming
    what is wrong with bytes that are neither."""
    r = S.Reader(raw, "extrinsic")
    try:
        n = r.compact("length")
        if n != len(raw) - r.pos:
            raise InvalidTransaction(f"malformed extrinsic: length prefix {n} but "
                                     f"{len(raw) - r.pos} bytes follow")
        version = r.u8("version")
        if version == UNSIGNED:
            call = read_call(r)
            r.end()
            return Unsigned(call)
        if version != SIGNED:
            raise InvalidTransaction(f"unsupported extrinsic version 0x{version:02x} "
                                     f"(expected 0x84: signed, or 0x04: unsigned, format 4)")
        if r.u8("address variant") != 0:
            raise InvalidTransaction("unsupported address: only MultiAddress::Id")
        signer = r.take(32, "signer")
        sig_type = r.u8("signature variant")
        if sig_type not in (SIG_ED25519, SIG_SR25519):
            raise InvalidTransaction(f"unsupported signature variant {sig_type} "
                                     f"(Ed25519 and Sr25519 only)")
        signature = r.take(64, "signature")
        first = r.u8("era")
        era = bytes([first]) if first == 0 else bytes([first, r.u8("era")])
        nonce, tip = r.compact("nonce"), r.compact("tip")
        call = read_call(r)
        r.end()
    except S.ScaleError as exc:
        raise InvalidTransaction(str(exc)) from None
    if nonce > 0xFFFF_FFFF:
        raise InvalidTransaction(f"malformed extrinsic: nonce {nonce} is not a u32")
    if era != IMMORTAL:
        era_birth(era, 0)   # checks the encoding
    return Extrinsic(signer, signature, nonce, call, tip, era, sig_type)


def signing_payload(call: Call, nonce: int, tip: int, genesis_hash: bytes, *,
                    era: bytes = IMMORTAL, era_hash: bytes | None = None) -> bytes:
    """The signing payload (blake2-256 hashed when longer than 256 bytes):
    call, era, nonce, tip, spec version, transaction version, genesis hash, the era's
    birth block hash (``era_hash``; the genesis hash for an immortal era)."""
    if era_hash is None:
        if era != IMMORTAL:
            raise ValueError("a mortal era needs the hash of its birth block")
        era_hash = genesis_hash
    payload = (encode_call(call) + era + S.compact(nonce) + S.compact(tip)
               + S.u32(SPEC_VERSION) + S.u32(TRANSACTION_VERSION)
               + S.fixed(genesis_hash, 32, "genesis hash") + S.fixed(era_hash, 32, "era hash"))
    return blake2_256(payload) if len(payload) > 256 else payload


def sign(account: Account, call: Call, nonce: int, *, genesis_hash: bytes, tip: int = 0,
         era: bytes = IMMORTAL, era_hash: bytes | None = None) -> Extrinsic:
    """``call`` signed by ``account`` at ``nonce`` for the chain with ``genesis_hash``."""
    payload = signing_payload(call, nonce, tip, genesis_hash, era=era, era_hash=era_hash)
    return Extrinsic(account.account_id, account.sign(payload), nonce, call, tip, era)


def _verify_ed25519(account_id: bytes, message: bytes, signature: bytes) -> bool:
    from substrateinterface import Keypair, KeypairType

    try:
        kp = Keypair(public_key=account_id, ss58_format=42, crypto_type=KeypairType.ED25519)
        return bool(kp.verify(message, signature))
    except (ValueError, TypeError):
        return False
