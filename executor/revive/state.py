"""The chain state a contract sees, behind a :class:`State` protocol, and
:class:`InMemoryState`, a journaled in-memory implementation.

Snapshots nest: :meth:`State.snapshot` returns a token; :meth:`State.revert` undoes
everything done since (including later snapshots), :meth:`State.commit` keeps it.  The
runtime takes one snapshot per contract frame; a test harness can take its own around
whole transactions.

Storage keys are :class:`StorageKey` values: a fixed 32-byte key (``key_len ==
SENTINEL``, what Solidity uses) and a variable key with the same bytes are different
slots, as in the pallet.  Values are raw bytes; an empty value is a present, empty
value (``set_storage`` never deletes; ``None`` deletes, which only ``clear_storage``
and ``take_storage`` do).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol, TypeVar, runtime_checkable

from executor.revive.hashing import keccak256


class StorageKey(NamedTuple):
    """A storage key: ``fixed`` (32 bytes, ``key_len == SENTINEL``) or variable."""

    key: bytes
    fixed: bool = True


@dataclass(frozen=True)
class ContractInfo:
    """What makes an account a contract: its code hash and immutable data."""

    code_hash: bytes
    immutable_data: bytes = b""


@dataclass(frozen=True)
class Event:
    """A ``ContractEmitted`` event: the emitting contract, topics (32 bytes each) and data."""

    contract: bytes
    topics: tuple[bytes, ...]
    data: bytes


@dataclass(frozen=True)
class BlockContext:
    """The block a transaction runs in.

    ``timestamp`` is in seconds (what ``now`` returns); ``gas_limit`` is returned by
    ``gas_limit`` (the block's maximum ref_time, here in PolkaVM gas); ``author`` is
    the 20-byte block author (``block.coinbase``)."""

    number: int = 1
    timestamp: int = 1_700_000_000
    chain_id: int = 420_420_420
    author: bytes = bytes(20)
    base_fee: int = 0
    gas_price: int = 1000
    gas_limit: int = 10_000_000_000


def default_block_hash(number: int) -> bytes:
    """The hash :class:`InMemoryState` reports for a past block it was not told about."""
    return keccak256(b"pvm-executor block " + number.to_bytes(32, "little"))


@runtime_checkable
class State(Protocol):
    """Everything the runtime reads and writes.  Addresses are 20 bytes, hashes 32."""

    # ---- block ----
    @property
    def block(self) -> BlockContext: ...
    def set_block(self, block: BlockContext) -> None: ...
    def block_hash(self, number: int) -> bytes:
        """The hash of past block ``number`` (the runtime checks the 256-block window)."""
        ...

    # ---- accounts ----
    def account_exists(self, address: bytes) -> bool: ...
    def balance(self, address: bytes) -> int: ...
    def set_balance(self, address: bytes, value: int) -> None: ...
    def nonce(self, address: bytes) -> int: ...
    def set_nonce(self, address: bytes, nonce: int) -> None: ...

    # ---- code and contracts ----
    def code(self, code_hash: bytes) -> bytes | None: ...
    def put_code(self, code_hash: bytes, blob: bytes) -> None: ...
    def contract(self, address: bytes) -> ContractInfo | None: ...
    def set_contract(self, address: bytes, info: ContractInfo | None) -> None: ...

    # ---- storage ----
    def storage(self, address: bytes, key: StorageKey) -> bytes | None: ...
    def set_storage(self, address: bytes, key: StorageKey, value: bytes | None) -> bytes | None:
        """Writes (``None`` deletes); returns the previous value."""
        ...
    def clear_storage_of(self, address: bytes) -> None:
        """Deletes every persistent storage entry of ``address`` (``terminate``)."""
        ...
    def transient(self, address: bytes, key: StorageKey) -> bytes | None: ...
    def set_transient(self, address: bytes, key: StorageKey,
                      value: bytes | None) -> bytes | None: ...
    def transient_size(self) -> int:
        """Bytes held in transient storage (keys plus values)."""
        ...
    def clear_transient(self) -> None: ...

    # ---- events ----
    def emit(self, event: Event) -> None: ...
    @property
    def events(self) -> Sequence[Event]: ...

    # ---- snapshots ----
    def snapshot(self) -> int: ...
    def revert(self, snapshot: int) -> None: ...
    def commit(self, snapshot: int) -> None: ...


_MISSING: Any = object()
_K = TypeVar("_K")
_V = TypeVar("_V")


class JournaledState:
    """What the :class:`State` implementations here share: one undo journal (a snapshot
    is its length, so snapshots nest and reverting to one also drops every later one),
    the block context, transient storage and events, all in memory.  Subclasses provide
    ``_journal``, ``_block``, ``transient_map``, ``_transient_bytes`` and ``event_log``."""

    _journal: list[Callable[[], None]]
    _block: BlockContext
    transient_map: dict[tuple[bytes, StorageKey], bytes]
    _transient_bytes: int
    event_log: list[Event]

    # ---- journal ----
    def _put(self, d: dict[_K, _V], key: _K, value: _V | None) -> _V | None:
        """Sets (or with ``None`` deletes) ``d[key]``, journaling the old value."""
        old: Any = d.get(key, _MISSING)
        if value is None:
            if old is _MISSING:
                return None
            del d[key]
        else:
            d[key] = value
        if old is _MISSING:
            def forget() -> None:
                d.pop(key, None)
            self._journal.append(forget)
            return None

        def restore() -> None:
            d[key] = old
        self._journal.append(restore)
        return old  # type: ignore[no-any-return]

    def snapshot(self) -> int:
        return len(self._journal)

    def revert(self, snapshot: int) -> None:
        journal = self._journal
        if not 0 <= snapshot <= len(journal):
            raise ValueError(f"unknown snapshot {snapshot} (journal has {len(journal)} entries)")
        while len(journal) > snapshot:
            journal.pop()()

    def commit(self, snapshot: int) -> None:
        if not 0 <= snapshot <= len(self._journal):
            raise ValueError(f"unknown snapshot {snapshot}")

    # ---- block ----
    @property
    def block(self) -> BlockContext:
        return self._block

    def set_block(self, block: BlockContext) -> None:
        old = self._block
        self._block = block

        def undo() -> None:
            self._block = old
        self._journal.append(undo)

    # ---- transient storage ----
    def transient(self, address: bytes, key: StorageKey) -> bytes | None:
        return self.transient_map.get((address, key))

    def set_transient(self, address: bytes, key: StorageKey,
                      value: bytes | None) -> bytes | None:
        old = self._put(self.transient_map, (address, key), value)
        delta = (0 if value is None else len(key.key) + len(value)) - (
            0 if old is None else len(key.key) + len(old))
        self._add_transient_bytes(delta)
        return old

    def _add_transient_bytes(self, delta: int) -> None:
        if not delta:
            return
        self._transient_bytes += delta

        def undo() -> None:
            self._transient_bytes -= delta
        self._journal.append(undo)

    def transient_size(self) -> int:
        return self._transient_bytes

    def clear_transient(self) -> None:
        for address, key in list(self.transient_map):
            self.set_transient(address, key, None)

    # ---- events ----
    def emit(self, event: Event) -> None:
        log = self.event_log
        log.append(event)
        n = len(log) - 1

        def undo() -> None:
            del log[n:]
        self._journal.append(undo)

    @property
    def events(self) -> Sequence[Event]:
        return self.event_log


@dataclass
class InMemoryState(JournaledState):
    """A :class:`State` in Python dictionaries with an undo journal.

    Every write appends an undo action to one journal; a snapshot is the journal length,
    so snapshots nest and reverting to one also drops every later one."""

    _block: BlockContext = field(default_factory=BlockContext)
    block_hashes: dict[int, bytes] = field(default_factory=dict)
    balances: dict[bytes, int] = field(default_factory=dict)
    nonces: dict[bytes, int] = field(default_factory=dict)
    codes: dict[bytes, bytes] = field(default_factory=dict)
    contracts: dict[bytes, ContractInfo] = field(default_factory=dict)
    storage_map: dict[tuple[bytes, StorageKey], bytes] = field(default_factory=dict)
    transient_map: dict[tuple[bytes, StorageKey], bytes] = field(default_factory=dict)
    event_log: list[Event] = field(default_factory=list)
    _journal: list[Callable[[], None]] = field(default_factory=list)
    _transient_bytes: int = 0

    # ---- block ----
    def block_hash(self, number: int) -> bytes:
        return self.block_hashes.get(number) or default_block_hash(number)

    # ---- accounts ----
    def account_exists(self, address: bytes) -> bool:
        return address in self.balances or address in self.nonces or address in self.contracts

    def balance(self, address: bytes) -> int:
        return self.balances.get(address, 0)

    def set_balance(self, address: bytes, value: int) -> None:
        if value < 0:
            raise ValueError(f"negative balance {value}")
        self._put(self.balances, address, value)

    def nonce(self, address: bytes) -> int:
        return self.nonces.get(address, 0)

    def set_nonce(self, address: bytes, nonce: int) -> None:
        self._put(self.nonces, address, nonce)

    # ---- code and contracts ----
    def code(self, code_hash: bytes) -> bytes | None:
        return self.codes.get(code_hash)

    def put_code(self, code_hash: bytes, blob: bytes) -> None:
        if code_hash not in self.codes:
            self._put(self.codes, code_hash, blob)

    def contract(self, address: bytes) -> ContractInfo | None:
        return self.contracts.get(address)

    def set_contract(self, address: bytes, info: ContractInfo | None) -> None:
        self._put(self.contracts, address, info)

    # ---- storage ----
    def storage(self, address: bytes, key: StorageKey) -> bytes | None:
        return self.storage_map.get((address, key))

    def set_storage(self, address: bytes, key: StorageKey, value: bytes | None) -> bytes | None:
        return self._put(self.storage_map, (address, key), value)

    def clear_storage_of(self, address: bytes) -> None:
        for owner, key in [k for k in self.storage_map if k[0] == address]:
            self.set_storage(owner, key, None)
