"""Blocks: header, body (the extrinsics as bytes) and a receipt per extrinsic."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from functools import cached_property

from chain_sim import scale as S
from chain_sim.codec import hx
from chain_sim.merkle import merkle_root
from chain_sim.storage_keys import blake2_256
from executor.revive.state import Event


@dataclass(frozen=True)
class Header:
    parent_hash: bytes
    number: int
    state_root: bytes
    extrinsics_root: bytes
    receipts_root: bytes
    timestamp: int          # milliseconds
    gas_limit: int
    gas_used: int
    author: bytes           # 32-byte account id (receives the fees)

    def encode(self) -> bytes:
        """``SimHeader`` bytes."""
        return (S.fixed(self.parent_hash, 32, "parent_hash") + S.compact(self.number)
                + S.fixed(self.state_root, 32, "state_root")
                + S.fixed(self.extrinsics_root, 32, "extrinsics_root")
                + S.fixed(self.receipts_root, 32, "receipts_root") + S.u64(self.timestamp)
                + S.u64(self.gas_limit) + S.u64(self.gas_used) + S.fixed(self.author, 32, "author"))

    @classmethod
    def decode(cls, raw: bytes) -> Header:
        r = S.Reader(raw, "header")
        hd = cls(r.take(32, "parent_hash"), r.compact("number"), r.take(32, "state_root"),
                 r.take(32, "extrinsics_root"), r.take(32, "receipts_root"), r.u64("timestamp"),
                 r.u64("gas_limit"), r.u64("gas_used"), r.take(32, "author"))
        r.end()
        return hd

    def to_scale(self) -> dict[str, object]:
        """The value scalecodec encodes to the same bytes (for cross-checks)."""
        return {"parent_hash": hx(self.parent_hash), "number": self.number,
                "state_root": hx(self.state_root), "extrinsics_root": hx(self.extrinsics_root),
                "receipts_root": hx(self.receipts_root), "timestamp": self.timestamp,
                "gas_limit": self.gas_limit, "gas_used": self.gas_used,
                "author": hx(self.author)}

    @cached_property
    def hash(self) -> bytes:
        """blake2-256 of the encoded header (computed once: a header is immutable)."""
        return blake2_256(self.encode())


class Outcome(Enum):
    SUCCESS = "Success"
    REVERTED = "Reverted"     # the contract reverted (REVERT flag)
    FAILED = "Failed"         # trap, out of gas, a pallet error


@dataclass(frozen=True)
class Receipt:
    """What one extrinsic did.  ``error`` names the pallet error of a failed call;
    ``output`` is the return (or revert) data; ``fee`` what the signer paid (gas and
    length fee, tip); ``storage_deposit`` the net deposit charged (negative: refunded);
    ``contract`` the new contract's address (instantiation); ``code_hash`` the
    uploaded code's hash."""

    outcome: Outcome
    gas_used: int
    fee: int
    events: tuple[Event, ...] = ()
    error: str | None = None
    output: bytes = b""
    storage_deposit: int = 0
    contract: bytes | None = None
    code_hash: bytes | None = None

    @property
    def success(self) -> bool:
        return self.outcome is Outcome.SUCCESS

    def encode(self) -> bytes:
        """``SimReceipt`` bytes."""
        dep = self.storage_deposit
        return (bytes([_OUTCOME_INDEX[self.outcome]])
                + S.enc_option(self.error, lambda e: S.enc_bytes(e.encode()))
                + S.compact(self.gas_used) + S.compact(self.fee)
                + S.compact(-2 * dep - 1 if dep < 0 else 2 * dep)
                + S.enc_option(self.contract, lambda c: S.fixed(c, 20, "contract"))
                + S.enc_option(self.code_hash, lambda c: S.fixed(c, 32, "code_hash"))
                + S.enc_bytes(self.output)
                + S.enc_vec(list(self.events), _encode_event))

    @classmethod
    def read(cls, r: S.Reader) -> Receipt:
        index = r.u8("outcome")
        if index >= len(_OUTCOMES):
            raise S.ScaleError(f"malformed {r.what}: outcome {index} at byte {r.pos - 1}")
        error = r.option("error", lambda: r.text("error"))
        gas, fee, dep = r.compact("gas_used"), r.compact("fee"), r.compact("storage_deposit")
        contract = r.option("contract", lambda: r.take(20, "contract"))
        code_hash = r.option("code_hash", lambda: r.take(32, "code_hash"))
        output = r.bytes("output")
        events = r.vec("events", lambda: Event(
            r.take(20, "event contract"),
            tuple(r.vec("topics", lambda: r.take(32, "topic"))), r.bytes("event data")))
        return cls(_OUTCOMES[index], gas, fee, tuple(events), error, output,
                   -(dep + 1) // 2 if dep & 1 else dep // 2, contract, code_hash)

    def to_scale(self) -> dict[str, object]:
        """The value scalecodec encodes to the same bytes (for cross-checks)."""
        return {
            "outcome": self.outcome.value, "error": self.error, "gas_used": self.gas_used,
            "fee": self.fee,
            # SCALE has no signed compact: a refund is stored as 2|n|+1, a charge as 2n
            "storage_deposit": (-2 * self.storage_deposit - 1 if self.storage_deposit < 0
                                else 2 * self.storage_deposit),
            "contract": None if self.contract is None else hx(self.contract),
            "code_hash": None if self.code_hash is None else hx(self.code_hash),
            "output": hx(self.output),
            "events": [{"contract": hx(e.contract), "topics": [hx(t) for t in e.topics],
                        "data": hx(e.data)} for e in self.events]}


_OUTCOMES = (Outcome.SUCCESS, Outcome.REVERTED, Outcome.FAILED)
_OUTCOME_INDEX = {o: i for i, o in enumerate(_OUTCOMES)}


def _encode_event(e: Event) -> bytes:
    return (S.fixed(e.contract, 20, "event contract")
            + S.enc_vec(list(e.topics), lambda t: S.fixed(t, 32, "topic")) + S.enc_bytes(e.data))


def encode_receipts(receipts: list[Receipt]) -> bytes:
    return S.compact(len(receipts)) + b"".join(r.encode() for r in receipts)


def decode_receipts(raw: bytes) -> list[Receipt]:
    r = S.Reader(raw, "receipts")
    out = r.vec("receipts", lambda: Receipt.read(r))
    r.end()
    return out


def encode_body(extrinsics: list[bytes]) -> bytes:
    return S.enc_vec(extrinsics, S.enc_bytes)


def decode_body(raw: bytes) -> list[bytes]:
    r = S.Reader(raw, "block body")
    out = r.vec("extrinsics", lambda: r.bytes("extrinsic"))
    r.end()
    return out


def extrinsics_root(extrinsics: list[bytes]) -> bytes:
    """The Merkle root over the blake2-256 hashes of the extrinsics in order."""
    return merkle_root([blake2_256(x) for x in extrinsics])


def receipts_root(receipts: list[Receipt]) -> bytes:
    """The Merkle root over the blake2-256 hashes of the encoded receipts."""
    return merkle_root([blake2_256(r.encode()) for r in receipts])


@dataclass(frozen=True)
class Block:
    header: Header
    extrinsics: list[bytes] = field(default_factory=list)
    receipts: list[Receipt] = field(default_factory=list)

    @property
    def number(self) -> int:
        return self.header.number

    @property
    def hash(self) -> bytes:
        return self.header.hash
