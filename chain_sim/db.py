"""Where a chain lives: committed state, blocks, receipts and undo records.

:class:`SqliteDB` (the default; one file, WAL journal) and :class:`MemoryDB` (tests)
have one interface.  :meth:`ChainDB.commit_block` writes a block's state changes, the
block itself, the undo records (each changed key's previous value, so older states can
be rebuilt for :meth:`~chain_sim.chain.Chain.verify`) and the new head in **one
transaction**: a process killed at any point leaves the previous head and its state
intact.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from chain_sim.merkle import MerkleIndex
from chain_sim.storage_keys import prefix_end


class DBError(RuntimeError):
    """The database is missing, corrupt, or not a chain database."""


@dataclass(frozen=True)
class StoredBlock:
    """A block as stored: its hash and SCALE-encoded header, body and receipts."""

    number: int
    hash: bytes
    header: bytes
    body: bytes
    receipts: bytes


class ChainDB:
    """The interface both databases implement."""

    index: MerkleIndex

    def get(self, key: bytes) -> bytes | None:
        raise NotImplementedError

    def scan(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        """Committed ``(key, value)`` pairs whose key starts with ``prefix``, in key order."""
        raise NotImplementedError

    def items(self) -> Iterator[tuple[bytes, bytes]]:
        return self.scan(b"")

    def meta(self, name: str) -> bytes | None:
        raise NotImplementedError

    def head(self) -> int | None:
        """The number of the last committed block (``None``: no genesis yet)."""
        raw = self.meta("head")
        return None if raw is None else int.from_bytes(raw, "little")

    def block(self, number: int) -> StoredBlock | None:
        raise NotImplementedError

    def block_number(self, block_hash: bytes) -> int | None:
        raise NotImplementedError

    def undo(self, number: int) -> dict[bytes, bytes | None]:
        """The previous values of the keys block ``number`` changed."""
        raise NotImplementedError

    def commit_block(self, block: StoredBlock, changes: Mapping[bytes, bytes | None],
                     undo: Mapping[bytes, bytes | None],
                     meta: Mapping[str, bytes] | None = None) -> None:
        raise NotImplementedError

    def rewind(self, number: int) -> None:
        """Drops the blocks after ``number`` and restores the state of block ``number``
        from the undo records, atomically (a dev node's ``evm_revert``)."""
        raise NotImplementedError

    def close(self) -> None:
        pass


def _rewound(db: ChainDB, number: int) -> dict[bytes, bytes | None]:
    """The state changes that take ``db`` from its head back to block ``number``."""
    head = db.head()
    if head is None or not 0 <= number <= head:
        raise DBError(f"cannot rewind to block {number} (head is {head})")
    changes: dict[bytes, bytes | None] = {}
    for n in range(head, number, -1):
        changes.update(db.undo(n))
    return changes


class MemoryDB(ChainDB):
    """Everything in dictionaries (nothing survives the process)."""

    def __init__(self) -> None:
        self._state: dict[bytes, bytes] = {}
        self._meta: dict[str, bytes] = {}
        self._blocks: dict[int, StoredBlock] = {}
        self._by_hash: dict[bytes, int] = {}
        self._undo: dict[int, dict[bytes, bytes | None]] = {}
        self.index = MerkleIndex()

    def get(self, key: bytes) -> bytes | None:
        return self._state.get(key)

    def scan(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        for k in sorted(k for k in self._state if k.startswith(prefix)):
            yield k, self._state[k]

    def meta(self, name: str) -> bytes | None:
        return self._meta.get(name)

    def block(self, number: int) -> StoredBlock | None:
        return self._blocks.get(number)

    def block_number(self, block_hash: bytes) -> int | None:
        return self._by_hash.get(block_hash)

    def undo(self, number: int) -> dict[bytes, bytes | None]:
        return dict(self._undo.get(number, {}))

    def commit_block(self, block: StoredBlock, changes: Mapping[bytes, bytes | None],
                     undo: Mapping[bytes, bytes | None],
                     meta: Mapping[str, bytes] | None = None) -> None:
        for k, v in changes.items():
            if v is None:
                self._state.pop(k, None)
            else:
                self._state[k] = v
        self._blocks[block.number] = block
        self._by_hash[block.hash] = block.number
        self._undo[block.number] = dict(undo)
        self._meta.update(meta or {})
        self._meta["head"] = block.number.to_bytes(8, "little")
        self.index.apply(changes)

    def rewind(self, number: int) -> None:
        changes = _rewound(self, number)
        head = self.head()
        assert head is not None
        for k, v in changes.items():
            if v is None:
                self._state.pop(k, None)
            else:
                self._state[k] = v
        for n in range(number + 1, head + 1):
            gone = self._blocks.pop(n)
            self._by_hash.pop(gone.hash, None)
            self._undo.pop(n, None)
        self._meta["head"] = number.to_bytes(8, "little")
        self.index.apply(changes)


_SCHEMA = """
CREATE TABLE IF NOT EXISTS state  (key BLOB PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS blocks (number INTEGER PRIMARY KEY, hash BLOB NOT NULL UNIQUE,
                                   header BLOB NOT NULL, body BLOB NOT NULL,
                                   receipts BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS undo   (number INTEGER NOT NULL, key BLOB NOT NULL, value BLOB,
                                   PRIMARY KEY (number, key)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta   (name TEXT PRIMARY KEY, value BLOB NOT NULL);
"""

_MAGIC = b"pvm-executor chain_sim db v1"


class SqliteDB(ChainDB):
    """A chain in one SQLite file (WAL journal, full sync at each block commit)."""

    def __init__(self, path: str | Path, *, create: bool = True) -> None:
        self.path = Path(path)
        if not create and not self.path.exists():
            raise DBError(f"no chain database at {self.path}")
        try:
            self._db = sqlite3.connect(str(self.path), isolation_level=None,
                                       check_same_thread=False)
            if not create and not self._is_chain_db():
                # a read-only open never writes into a file that is not one of ours
                self._db.close()
                raise DBError(f"{self.path} is not a chain_sim database")
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
            magic = self.meta("magic")
            if magic is None:
                self._db.execute("INSERT INTO meta VALUES ('magic', ?)", (_MAGIC,))
            elif magic != _MAGIC:
                raise DBError(f"{self.path} is not a chain_sim database ({magic!r})")
        except sqlite3.DatabaseError as exc:
            raise DBError(f"cannot open chain database {self.path}: {exc}") from None
        self._lock = threading.Lock()
        self.index = MerkleIndex(self.scan(b""))

    def _is_chain_db(self) -> bool:
        tables = {r[0] for r in self._db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")}
        return "meta" in tables and self.meta("magic") == _MAGIC

    def get(self, key: bytes) -> bytes | None:
        row = self._db.execute("SELECT value FROM state WHERE key = ?", (key,)).fetchone()
        return None if row is None else bytes(row[0])

    def scan(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        end = prefix_end(prefix)
        if end is None:
            rows = self._db.execute("SELECT key, value FROM state WHERE key >= ? ORDER BY key",
                                    (prefix,)).fetchall()
        else:
            rows = self._db.execute(
                "SELECT key, value FROM state WHERE key >= ? AND key < ? ORDER BY key",
                (prefix, end)).fetchall()
        for k, v in rows:
            yield bytes(k), bytes(v)

    def meta(self, name: str) -> bytes | None:
        row = self._db.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        return None if row is None else bytes(row[0])

    def block(self, number: int) -> StoredBlock | None:
        row = self._db.execute("SELECT number, hash, header, body, receipts FROM blocks "
                               "WHERE number = ?", (number,)).fetchone()
        if row is None:
            return None
        return StoredBlock(row[0], bytes(row[1]), bytes(row[2]), bytes(row[3]), bytes(row[4]))

    def block_number(self, block_hash: bytes) -> int | None:
        row = self._db.execute("SELECT number FROM blocks WHERE hash = ?",
                               (block_hash,)).fetchone()
        return None if row is None else int(row[0])

    def undo(self, number: int) -> dict[bytes, bytes | None]:
        rows = self._db.execute("SELECT key, value FROM undo WHERE number = ?", (number,))
        return {bytes(k): None if v is None else bytes(v) for k, v in rows}

    def commit_block(self, block: StoredBlock, changes: Mapping[bytes, bytes | None],
                     undo: Mapping[bytes, bytes | None],
                     meta: Mapping[str, bytes] | None = None) -> None:
        with self._lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                self._write_state(changes)
                db.executemany("INSERT INTO undo VALUES (?, ?, ?)",
                               [(block.number, k, v) for k, v in undo.items()])
                db.execute("INSERT INTO blocks VALUES (?, ?, ?, ?, ?)",
                           (block.number, block.hash, block.header, block.body, block.receipts))
                rows = dict(meta or {})
                rows["head"] = block.number.to_bytes(8, "little")
                db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", list(rows.items()))
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        self.index.apply(changes)

    def rewind(self, number: int) -> None:
        changes = _rewound(self, number)
        with self._lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                self._write_state(changes)
                db.execute("DELETE FROM undo WHERE number > ?", (number,))
                db.execute("DELETE FROM blocks WHERE number > ?", (number,))
                db.execute("INSERT OR REPLACE INTO meta VALUES ('head', ?)",
                           (number.to_bytes(8, "little"),))
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        self.index.apply(changes)

    def _write_state(self, changes: Mapping[bytes, bytes | None]) -> None:
        db = self._db
        db.executemany("DELETE FROM state WHERE key = ?",
                       [(k,) for k, v in changes.items() if v is None])
        db.executemany("INSERT OR REPLACE INTO state VALUES (?, ?)",
                       [(k, v) for k, v in changes.items() if v is not None])

    def close(self) -> None:
        self._db.close()
