"""The contract-visible state of the chain (:class:`executor.revive.State`) over the
chain's key-value storage.

Writes of the block being built go to an *overlay* on top of the committed database;
every write is journaled so the revive runtime's nested snapshots (one per contract
frame) and the chain's own (one per transaction) revert exactly.  At the end of a block
:meth:`ChainState.changes` is what :meth:`~chain_sim.db.ChainDB.commit_block` writes.

Balances and nonces live in ``System.Account`` under the 32-byte account id; contracts
use 20-byte addresses, mapped through ``Revive.OriginalAccount`` (see
:mod:`chain_sim.keys`).

Values, as in pallet-revive: what contracts see and move (:meth:`ChainState.balance`,
``value`` of calls) is the *Ethereum* value, 18-decimal wei; the native balance is
``ratio`` (``native_to_eth_ratio``) times coarser.  An address's Ethereum balance is
``free * ratio + dust``: the part below one native unit (``0 <= dust < ratio``) is
kept per address in ``Revive.AccountDust``, so no transfer loses it.  pallet-revive
moves dust by burning one native unit of the sender into dust when it lacks some and
minting one to the receiver when its dust reaches ``ratio``; either way each
account's (free, dust) is the quotient and remainder of its Ethereum balance, which
is how :meth:`ChainState.set_balance` stores it.

Transient storage and events are per transaction and never reach the database.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from chain_sim import scale as S
from chain_sim import storage_keys as K
from chain_sim.db import ChainDB
from chain_sim.keys import fallback_account_id, to_address
from executor.revive.state import (
    BlockContext,
    ContractInfo,
    Event,
    JournaledState,
    StorageKey,
)

_MISSING: Any = object()
_U128 = (1 << 128) - 1


def encode_account(nonce: int, free: int) -> bytes:
    """``SimAccountInfo`` (u32 nonce, u128 free): the fixed layout scalecodec produces
    (a test checks the two agree)."""
    return nonce.to_bytes(4, "little") + free.to_bytes(16, "little")


def decode_account(raw: bytes) -> tuple[int, int]:
    if len(raw) != 20:
        raise ValueError(f"malformed SimAccountInfo ({len(raw)} bytes)")
    return int.from_bytes(raw[:4], "little"), int.from_bytes(raw[4:], "little")


@dataclass(frozen=True)
class StoredContract:
    """``Revive.ContractInfoOf``: the code, the storage it uses, the deposit it holds."""

    code_hash: bytes
    storage_items: int = 0
    storage_bytes: int = 0
    deposit: int = 0
    immutable_data: bytes = b""

    def encode(self) -> bytes:
        """``SimContractInfo`` bytes."""
        return (S.fixed(self.code_hash, 32, "code_hash") + S.u32(self.storage_items)
                + S.u64(self.storage_bytes) + S.u128(self.deposit)
                + S.enc_bytes(self.immutable_data))

    @classmethod
    def decode(cls, raw: bytes) -> StoredContract:
        r = S.Reader(raw, "SimContractInfo")
        info = cls(r.take(32, "code_hash"), r.u32("storage_items"), r.u64("storage_bytes"),
                   r.u128("deposit"), r.bytes("immutable_data"))
        r.end()
        return info


@dataclass(frozen=True)
class CodeInfo:
    """``Revive.CodeInfoOf``: who uploaded the code and the deposit it holds."""

    owner: bytes
    deposit: int
    code_len: int

    def encode(self) -> bytes:
        """``SimCodeInfo`` bytes."""
        return S.fixed(self.owner, 32, "owner") + S.u128(self.deposit) + S.u32(self.code_len)

    @classmethod
    def decode(cls, raw: bytes) -> CodeInfo:
        r = S.Reader(raw, "SimCodeInfo")
        info = cls(r.take(32, "owner"), r.u128("deposit"), r.u32("code_len"))
        r.end()
        return info


class ChainState(JournaledState):
    """A :class:`executor.revive.State` over a :class:`~chain_sim.db.ChainDB`.

    ``block_hash`` answers the ``block_hash`` host function for committed blocks."""

    def __init__(self, db: ChainDB, *,
                 block_hash: Callable[[int], bytes | None] | None = None,
                 ratio: int = 1) -> None:
        if not 1 <= ratio <= 0xFFFF_FFFF:
            raise ValueError(f"native_to_eth_ratio {ratio} is not a u32 >= 1")
        self.db = db
        self.ratio = ratio
        self._block_hash = block_hash
        self._block = BlockContext()
        self.overlay: dict[bytes, bytes | None] = {}
        self._journal: list[Callable[[], None]] = []
        self.transient_map: dict[tuple[bytes, StorageKey], bytes] = {}
        self._transient_bytes = 0
        self.event_log: list[Event] = []
        # storage use per contract in this transaction (items, bytes), folded into
        # the contract info when the chain settles deposits
        self.usage: dict[bytes, tuple[int, int]] = {}
        # deposits held by contracts removed in this transaction
        self.released: dict[bytes, int] = {}
        # code uploaded in this transaction (code hash -> length)
        self.new_code: dict[bytes, int] = {}
        self.code_uploader: bytes = bytes(32)

    # ---- raw keys ----
    def get(self, key: bytes) -> bytes | None:
        v = self.overlay.get(key, _MISSING)
        if v is not _MISSING:
            return v  # type: ignore[no-any-return]
        return self.db.get(key)

    def put(self, key: bytes, value: bytes | None) -> None:
        """Writes ``key`` in the overlay (``None``: a deletion, kept as a tombstone so
        it hides the committed value -- unlike ``_put``, which removes the entry)."""
        overlay = self.overlay
        old = overlay.get(key, _MISSING)
        overlay[key] = value
        if old is _MISSING:
            def forget() -> None:
                overlay.pop(key, None)
            self._journal.append(forget)
        else:
            def restore() -> None:
                overlay[key] = old
            self._journal.append(restore)

    def scan(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        """Current ``(key, value)`` pairs under ``prefix`` (committed and overlay)."""
        merged: dict[bytes, bytes | None] = dict(self.db.scan(prefix))
        merged.update((k, v) for k, v in self.overlay.items() if k.startswith(prefix))
        for k in sorted(merged):
            v = merged[k]
            if v is not None:
                yield k, v

    def changes(self) -> tuple[dict[bytes, bytes | None], dict[bytes, bytes | None]]:
        """The block's writes that differ from the state it started from, and the
        values they replace (``None``: absent) -- what the block commits and its
        undo record."""
        changes: dict[bytes, bytes | None] = {}
        undo: dict[bytes, bytes | None] = {}
        for k, v in self.overlay.items():
            old = self.db.get(k)
            if v != old:
                changes[k] = v
                undo[k] = old
        return changes, undo

    def reset(self) -> None:
        """Drops everything not committed (a new block starts)."""
        self.overlay.clear()
        self._journal.clear()
        self.transient_map.clear()
        self._transient_bytes = 0
        self.event_log.clear()
        self.usage.clear()
        self.released.clear()
        self.new_code.clear()

    # ---- block ----
    def block_hash(self, number: int) -> bytes:
        got = self._block_hash(number) if self._block_hash is not None else None
        return got if got is not None else bytes(32)

    # ---- accounts ----
    def account_id(self, address: bytes) -> bytes:
        """The account id behind a 20-byte address (mapped, else the fallback)."""
        mapped = self.get(K.original_account_key(address))
        return mapped if mapped is not None else fallback_account_id(address)

    def map_account(self, account_id: bytes, address: bytes) -> None:
        key = K.original_account_key(address)
        if self.get(key) is None:
            self.put(key, account_id)

    def account_info(self, account_id: bytes) -> tuple[int, int]:
        raw = self.get(K.account_key(account_id))
        return (0, 0) if raw is None else decode_account(raw)

    def set_account_info(self, account_id: bytes, nonce: int, free: int) -> None:
        if not 0 <= free <= _U128:
            raise ValueError(f"balance {free} does not fit a u128")
        if not 0 <= nonce <= 0xFFFF_FFFF:
            raise ValueError(f"nonce {nonce} does not fit a u32")
        self.put(K.account_key(account_id),
                 None if nonce == 0 and free == 0 else encode_account(nonce, free))

    def account_exists(self, address: bytes) -> bool:
        return (self.get(K.account_key(self.account_id(address))) is not None
                or self.get(K.contract_info_key(address)) is not None)

    def dust(self, address: bytes) -> int:
        """The Ethereum balance of ``address`` below one native unit."""
        raw = self.get(K.account_dust_key(address))
        return 0 if raw is None else int.from_bytes(raw, "little")

    def set_dust(self, address: bytes, dust: int) -> None:
        if not 0 <= dust < self.ratio:
            raise ValueError(f"dust {dust} is not below the ratio {self.ratio}")
        self.put(K.account_dust_key(address), dust.to_bytes(4, "little") if dust else None)

    def evm_balance(self, account_id: bytes) -> int:
        """The Ethereum balance (wei) of an account id: ``free * ratio`` plus the dust
        of its address if that address stands for it (an unmapped Substrate account's
        address stands for the address's fallback account, as in pallet-revive)."""
        free = self.account_info(account_id)[1]
        if self.ratio == 1:
            return free
        address = to_address(account_id)
        if self.account_id(address) != account_id:
            return free * self.ratio
        return free * self.ratio + self.dust(address)

    def balance(self, address: bytes) -> int:
        """The Ethereum balance (wei) of ``address``."""
        free = self.account_info(self.account_id(address))[1]
        if self.ratio == 1:
            return free
        return free * self.ratio + self.dust(address)

    def set_balance(self, address: bytes, value: int) -> None:
        """Sets the Ethereum balance (wei) of ``address``: the native free balance
        ``value // ratio``, the dust the rest."""
        if value < 0:
            raise ValueError(f"negative balance {value}")
        acct = self.account_id(address)
        nonce, _ = self.account_info(acct)
        free, dust = divmod(value, self.ratio)
        self.set_account_info(acct, nonce, free)
        if self.ratio != 1:
            self.set_dust(address, dust)

    def nonce(self, address: bytes) -> int:
        return self.account_info(self.account_id(address))[0]

    def set_nonce(self, address: bytes, nonce: int) -> None:
        acct = self.account_id(address)
        _, free = self.account_info(acct)
        self.set_account_info(acct, nonce, free)

    # ---- code and contracts ----
    def code(self, code_hash: bytes) -> bytes | None:
        return self.get(K.code_key(code_hash))

    def put_code(self, code_hash: bytes, blob: bytes) -> None:
        if self.get(K.code_key(code_hash)) is None:
            self.put(K.code_key(code_hash), bytes(blob))
            self.put(K.code_info_key(code_hash),
                     CodeInfo(self.code_uploader, 0, len(blob)).encode())
            self._put(self.new_code, code_hash, len(blob))

    def code_info(self, code_hash: bytes) -> CodeInfo | None:
        raw = self.get(K.code_info_key(code_hash))
        return None if raw is None else CodeInfo.decode(raw)

    def set_code_info(self, code_hash: bytes, info: CodeInfo) -> None:
        self.put(K.code_info_key(code_hash), info.encode())

    def stored_contract(self, address: bytes) -> StoredContract | None:
        raw = self.get(K.contract_info_key(address))
        return None if raw is None else StoredContract.decode(raw)

    def set_stored_contract(self, address: bytes, info: StoredContract | None) -> None:
        self.put(K.contract_info_key(address), None if info is None else info.encode())

    def contract(self, address: bytes) -> ContractInfo | None:
        s = self.stored_contract(address)
        return None if s is None else ContractInfo(s.code_hash, s.immutable_data)

    def set_contract(self, address: bytes, info: ContractInfo | None) -> None:
        old = self.stored_contract(address)
        if info is None:
            self.set_stored_contract(address, None)
            if old is not None:   # settle_usage() refunds what it held
                self._put(self.released, address, self.released.get(address, 0) + old.deposit)
                self._put(self.usage, address, None)
            return
        base = old if old is not None and old.code_hash == info.code_hash else None
        new = StoredContract(info.code_hash,
                             base.storage_items if base else 0,
                             base.storage_bytes if base else 0,
                             base.deposit if base else 0,
                             info.immutable_data)
        self.set_stored_contract(address, new)
        if old is None:   # a new contract: settle_usage() charges its base deposit
            self._add_usage(address, 0, 0)

    # ---- storage ----
    def storage(self, address: bytes, key: StorageKey) -> bytes | None:
        return self.get(K.contract_storage_key(address, key.key, key.fixed))

    def set_storage(self, address: bytes, key: StorageKey, value: bytes | None) -> bytes | None:
        skey = K.contract_storage_key(address, key.key, key.fixed)
        old = self.get(skey)
        self.put(skey, None if value is None else bytes(value))
        d_items = (value is not None) - (old is not None)
        d_bytes = ((0 if value is None else len(key.key) + len(value))
                   - (0 if old is None else len(key.key) + len(old)))
        if d_items or d_bytes:
            self._add_usage(address, d_items, d_bytes)
        return old

    def _add_usage(self, address: bytes, d_items: int, d_bytes: int) -> None:
        items, nbytes = self.usage.get(address, (0, 0))
        self._put(self.usage, address, (items + d_items, nbytes + d_bytes))

    def clear_storage_of(self, address: bytes) -> None:
        """Deletes the contract's slots (``terminate``; the deposit they held is
        released with the contract info)."""
        for skey, _ in list(self.scan(K.contract_storage_prefix(address))):
            self.put(skey, None)
        if address in self.usage:
            self._put(self.usage, address, None)
