"""Signed Ethereum transactions (what ``eth_sendRawTransaction`` carries and
``Revive.eth_transact`` wraps): legacy (EIP-155 or not), EIP-2930 and EIP-1559.

Decoding is ``rlp``'s; recovering the sender is eth-account's.  A transaction with
``to`` empty deploys: its data is the ``.polkavm`` blob (whose header states its
length) followed by the constructor input, as resolc users send it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import rlp

from executor.revive.hashing import keccak256

_PVM_MAGIC = b"PVM\0"


class EthTxError(ValueError):
    """Bytes that are not a valid signed Ethereum transaction."""


@dataclass(frozen=True)
class EthTx:
    tx_type: int
    chain_id: int | None
    nonce: int
    gas_price: int                 # legacy/2930 gas price; 1559 max fee per gas
    max_priority_fee: int
    gas: int
    to: bytes | None
    value: int
    data: bytes
    v: int
    r: int
    s: int
    sender: bytes
    hash: bytes
    raw: bytes

    def split_deploy(self) -> tuple[bytes, bytes]:
        """``(code, constructor input)`` of a deployment."""
        return split_code(self.data)


def split_code(data: bytes) -> tuple[bytes, bytes]:
    if len(data) < 13 or data[:4] != _PVM_MAGIC:
        raise EthTxError("deployment data does not start with a PolkaVM blob ('PVM\\0')")
    length = int.from_bytes(data[5:13], "little")
    if not 13 <= length <= len(data):
        raise EthTxError(f"the PolkaVM blob declares {length} bytes but the data has "
                         f"{len(data)}")
    return data[:length], data[length:]


def _int(item: object, what: str) -> int:
    if not isinstance(item, bytes):
        raise EthTxError(f"{what} is not an RLP string")
    if len(item) > 32 or (item[:1] == b"\x00"):
        raise EthTxError(f"{what} is not a canonical integer")
    return int.from_bytes(item, "big")


def _bytes(item: object, what: str) -> bytes:
    if not isinstance(item, bytes):
        raise EthTxError(f"{what} is not an RLP string")
    return item


def _to(item: object) -> bytes | None:
    b = _bytes(item, "to")
    if b == b"":
        return None
    if len(b) != 20:
        raise EthTxError(f"to has {len(b)} bytes, not 20")
    return b


def decode_eth_tx(raw: bytes) -> EthTx:
    """Decodes and recovers the sender; raises :class:`EthTxError`.  (Cached: a node
    decodes one transaction when it arrives, when the block runs it, when it indexes
    it and for its receipt.)"""
    return _decode_cached(bytes(raw))


@lru_cache(maxsize=4096)
def _decode_cached(raw: bytes) -> EthTx:
    if not raw:
        raise EthTxError("empty transaction")
    try:
        if raw[0] >= 0xC0:
            items = rlp.decode(raw)
            tx_type = 0
        elif raw[0] in (1, 2):
            items = rlp.decode(raw[1:])
            tx_type = raw[0]
        else:
            raise EthTxError(f"unsupported transaction type 0x{raw[0]:02x}")
    except rlp.exceptions.DecodingError as exc:
        raise EthTxError(f"malformed RLP: {exc}") from None
    if not isinstance(items, list):
        raise EthTxError("a transaction is an RLP list")
    want = {0: 9, 1: 11, 2: 12}[tx_type]
    if len(items) != want:
        raise EthTxError(f"a type-{tx_type} transaction has {want} fields, got {len(items)}")
    if tx_type == 0:
        nonce, price, gas = (_int(items[0], "nonce"), _int(items[1], "gasPrice"),
                             _int(items[2], "gas"))
        to, value, data = _to(items[3]), _int(items[4], "value"), _bytes(items[5], "data")
        v, r, s = _int(items[6], "v"), _int(items[7], "r"), _int(items[8], "s")
        chain_id = None if v in (27, 28) else (v - 35) // 2 if v >= 35 else -1
        if chain_id == -1:
            raise EthTxError(f"invalid v {v}")
        prio = price
    else:
        chain_id, nonce = _int(items[0], "chainId"), _int(items[1], "nonce")
        if tx_type == 1:
            price = prio = _int(items[2], "gasPrice")
            rest = items[3:]
        else:
            prio, price = _int(items[2], "maxPriorityFeePerGas"), _int(items[3], "maxFeePerGas")
            rest = items[4:]
        gas, to = _int(rest[0], "gas"), _to(rest[1])
        value, data = _int(rest[2], "value"), _bytes(rest[3], "data")
        if not isinstance(rest[4], list):
            raise EthTxError("accessList is not a list")
        v, r, s = _int(rest[5], "yParity"), _int(rest[6], "r"), _int(rest[7], "s")
        if v > 1:
            raise EthTxError(f"yParity {v} is not 0 or 1")
    # the signed hash: the fields without the signature (EIP-155: with chain id, 0, 0)
    if tx_type == 0:
        unsigned = items[:6] + ([] if chain_id is None else [chain_id, 0, 0])
        msg = keccak256(rlp.encode(unsigned))
        parity = v - 27 if chain_id is None else v - 35 - 2 * chain_id
    else:        # the fields' own encodings (rlp.decode checked them canonical), re-listed
        msg = keccak256(bytes([tx_type]) + _relist(_item_encodings(raw, 1)[:-3]))
        parity = v
    return EthTx(tx_type, chain_id, nonce, price, prio, gas, to, value, data, v, r, s,
                 _recover(msg, parity, r, s), keccak256(raw), raw)


def _item_encodings(enc: bytes, start: int) -> list[bytes]:
    """The encodings of the items of the RLP list at ``enc[start:]``, one slice each
    (the list is well formed and runs to the end: rlp.decode has read it)."""
    b0 = enc[start]
    pos = start + 1 + (b0 - 0xF7 if b0 > 0xF7 else 0)
    out = []
    end = len(enc)
    while pos < end:
        b = enc[pos]
        if b < 0x80:
            n = 1
        elif b <= 0xB7:
            n = 1 + b - 0x80
        elif b <= 0xBF:
            n = 1 + b - 0xB7 + int.from_bytes(enc[pos + 1:pos + 1 + b - 0xB7], "big")
        elif b <= 0xF7:
            n = 1 + b - 0xC0
        else:
            n = 1 + b - 0xF7 + int.from_bytes(enc[pos + 1:pos + 1 + b - 0xF7], "big")
        out.append(enc[pos:pos + n])
        pos += n
    return out


def _relist(encodings: list[bytes]) -> bytes:
    """The RLP list of items already encoded (``rlp.encode`` of the decoded items)."""
    body = b"".join(encodings)
    n = len(body)
    if n < 56:
        return bytes((0xC0 + n,)) + body
    size = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((0xF7 + len(size),)) + size + body


_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141

_Secp256k1Key: Any
try:
    from coincurve import PublicKey as _Secp256k1Key
except ImportError:          # pragma: no cover - the [node] extra installs it
    _Secp256k1Key = None


def _recover(msg: bytes, parity: int, r: int, s: int) -> bytes:
    """The address that signed ``msg``: with coincurve (libsecp256k1) directly when it
    is installed -- what eth-keys' coincurve backend does, without its per-call
    overhead (its backend looked up in os.environ, the key and signature objects:
    about as much again as the recovery) -- else through eth-keys."""
    if not (1 <= r < _N and 1 <= s <= _N // 2 and parity in (0, 1)):
        raise EthTxError("invalid signature: r, s or the parity out of range "
                         "(EIP-2: s in the lower half)")
    if _Secp256k1Key is not None:
        try:
            point = _Secp256k1Key.from_signature_and_message(
                r.to_bytes(32, "big") + s.to_bytes(32, "big") + bytes((parity,)), msg,
                hasher=None).format(compressed=False)
        except Exception as exc:  # as eth-keys reports it (BadSignature)
            raise EthTxError(f"invalid signature: BadSignature: {exc}") from None
        return keccak256(point[1:])[12:]
    from eth_keys.main import KeyAPI

    try:
        pub = KeyAPI.Signature(vrs=(parity, r, s)).recover_public_key_from_msg_hash(msg)
    except Exception as exc:  # eth-keys raises several kinds for bad signatures
        raise EthTxError(f"invalid signature: {type(exc).__name__}: {exc}") from None
    return bytes(pub.to_canonical_address())
