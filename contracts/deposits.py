"""Storage deposits for :class:`~contracts.harness.TestChain`: an in-memory state that
notes what a transaction changed, so the deposit pallet-revive would hold for it can be
computed (:meth:`DepositMeteredState.finish`).

pallet-revive's rule for contract storage (its storage meter): a new item holds
``DepositPerItem`` plus ``DepositPerByte`` for its key and value bytes; a removed item
gives that back; a changed value pays (or gets back) the difference of its length.
This model adds, for a new contract account, one item plus its immutable data bytes,
and for newly uploaded code one item plus the code's bytes (the pallet also holds a
``CodeHashLockupDepositPercent`` share and counts its own metadata bytes: not
modelled).  Nothing is actually held: balances in the harness move only by value
transfers.  The figure is reported on each receipt (``storage_deposit``) and in the gas
report.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from executor.revive.ethgas import EthGasSchedule
from executor.revive.state import ContractInfo, InMemoryState, StorageKey


@dataclass
class DepositMeteredState(InMemoryState):
    """An :class:`InMemoryState` that, between :meth:`start` and :meth:`finish`,
    remembers the first value of everything a transaction writes."""

    _storage_before: dict[tuple[bytes, StorageKey], bytes | None] | None = None
    _contracts_before: dict[bytes, ContractInfo | None] = field(default_factory=dict)
    _new_codes: set[bytes] = field(default_factory=set)

    def start(self) -> None:
        self._storage_before = {}
        self._contracts_before = {}
        self._new_codes = set()

    @contextmanager
    def unmetered(self) -> Iterator[None]:
        """Writes in the block are not the transaction's (e.g. uploading the children
        of a factory being deployed, which a chain would take as separate uploads)."""
        saved, self._storage_before = self._storage_before, None
        try:
            yield
        finally:
            self._storage_before = saved

    def set_storage(self, address: bytes, key: StorageKey, value: bytes | None) -> bytes | None:
        before = self._storage_before
        if before is not None and (address, key) not in before:
            before[(address, key)] = self.storage_map.get((address, key))
        return super().set_storage(address, key, value)

    def set_contract(self, address: bytes, info: ContractInfo | None) -> None:
        if self._storage_before is not None and address not in self._contracts_before:
            self._contracts_before[address] = self.contracts.get(address)
        super().set_contract(address, info)

    def put_code(self, code_hash: bytes, blob: bytes) -> None:
        if self._storage_before is not None and code_hash not in self.codes:
            self._new_codes.add(code_hash)
        super().put_code(code_hash, blob)

    def finish(self, schedule: EthGasSchedule) -> int:
        """The net deposit (native units; negative: refunded) of what changed since
        :meth:`start`, compared with the state now (so reverted writes count nothing);
        stops noting."""
        before = self._storage_before
        if before is None:
            return 0
        items = nbytes = 0
        for (address, key), old in before.items():
            new = self.storage_map.get((address, key))
            if old is None and new is not None:
                items += 1
                nbytes += len(key.key) + len(new)
            elif old is not None and new is None:
                items -= 1
                nbytes -= len(key.key) + len(old)
            elif old is not None and new is not None:
                nbytes += len(new) - len(old)
        for address, old_info in self._contracts_before.items():
            new_info = self.contracts.get(address)
            if old_info is None and new_info is not None:
                items += 1
                nbytes += len(new_info.immutable_data)
            elif old_info is not None and new_info is None:
                items -= 1
                nbytes -= len(old_info.immutable_data)
        for code_hash in self._new_codes:
            blob = self.codes.get(code_hash)
            if blob is not None:
                items += 1
                nbytes += len(blob)
        self._storage_before = None
        return schedule.deposit(items, nbytes)
