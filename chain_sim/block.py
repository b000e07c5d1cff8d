"""Blocks: header, body (the extrinsics as bytes) and a receipt per extrinsic."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from chain_sim.codec import CODEC, h, hx
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
        return CODEC.encode("SimHeader", {
            "parent_hash": hx(self.parent_hash), "number": self.number,
            "state_root": hx(self.state_root), "extrinsics_root": hx(self.extrinsics_root),
            "receipts_root": hx(self.receipts_root), "timestamp": self.timestamp,
            "gas_limit": self.gas_limit, "gas_used": self.gas_used,
            "author": hx(self.author)})

    @classmethod
    def decode(cls, raw: bytes) -> Header:
        d = CODEC.decode("SimHeader", raw)
        return cls(h(d["parent_hash"]), d["number"], h(d["state_root"]),
                   h(d["extrinsics_root"]), h(d["receipts_root"]), d["timestamp"],
                   d["gas_limit"], d["gas_used"], h(d["author"]))

    @property
    def hash(self) -> bytes:
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

    def to_scale(self) -> dict[str, object]:
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

    @classmethod
    def from_scale(cls, d: dict[str, object]) -> Receipt:
        dep = int(d["storage_deposit"])  # type: ignore[call-overload]
        events = tuple(Event(h(e["contract"]), tuple(h(t) for t in e["topics"]), h(e["data"]))
                       for e in d["events"])  # type: ignore[attr-defined]
        return cls(Outcome(d["outcome"]), int(d["gas_used"]),  # type: ignore[call-overload]
                   int(d["fee"]), events, d["error"],  # type: ignore[call-overload,arg-type]
                   h(d["output"]),  # type: ignore[arg-type]
                   -(dep + 1) // 2 if dep & 1 else dep // 2,
                   None if d["contract"] is None else h(d["contract"]),  # type: ignore[arg-type]
                   None if d["code_hash"] is None else h(d["code_hash"]))  # type: ignore[arg-type]


def encode_receipts(receipts: list[Receipt]) -> bytes:
    return CODEC.encode("SimReceipts", [r.to_scale() for r in receipts])


def decode_receipts(raw: bytes) -> list[Receipt]:
    return [Receipt.from_scale(d) for d in CODEC.decode("SimReceipts", raw)]


def encode_body(extrinsics: list[bytes]) -> bytes:
    return CODEC.encode("SimBody", [hx(x) for x in extrinsics])


def decode_body(raw: bytes) -> list[bytes]:
    return [h(x) for x in CODEC.decode("SimBody", raw)]


def extrinsics_root(extrinsics: list[bytes]) -> bytes:
    """The Merkle root over the blake2-256 hashes of the extrinsics in order."""
    return merkle_root([blake2_256(x) for x in extrinsics])


def receipts_root(receipts: list[Receipt]) -> bytes:
    return merkle_root([blake2_256(CODEC.encode("SimReceipt", r.to_scale())) for r in receipts])


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
