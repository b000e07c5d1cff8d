"""The state root: a binary Merkle tree over every ``(key, value)`` pair of the state,
in key order.

* leaf  = blake2_256(``0x00`` ++ u32 LE key length ++ key ++ blake2_256(value))
* node  = blake2_256(``0x01`` ++ left ++ right); an odd node at the end of a level
  moves up unchanged
* the root of the empty state is blake2_256(``b""``)

The domain bytes keep leaves and inner nodes apart (no second-preimage by reading a
node as a leaf); the key length keeps ``(key, value)`` splits unambiguous.
:class:`MerkleIndex` keeps the sorted keys and their leaf hashes in memory so a new
root costs one pass over the leaves, without reading values again.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping
from hashlib import blake2b

EMPTY_ROOT = blake2b(b"", digest_size=32).digest()


def leaf_hash(key: bytes, value: bytes) -> bytes:
    return blake2b(b"\x00" + len(key).to_bytes(4, "little") + key
                   + blake2b(value, digest_size=32).digest(), digest_size=32).digest()


def merkle_root(leaves: list[bytes]) -> bytes:
    """The root over leaf hashes in order."""
    if not leaves:
        return EMPTY_ROOT
    level = leaves
    while len(level) > 1:
        nxt = [blake2b(b"\x01" + level[i] + level[i + 1], digest_size=32).digest()
               for i in range(0, len(level) - 1, 2)]
        if len(level) & 1:
            nxt.append(level[-1])
        level = nxt
    return level[0]


def state_root(items: Iterable[tuple[bytes, bytes]]) -> bytes:
    """The root of a state given as ``(key, value)`` pairs (any order, keys unique)."""
    return merkle_root([leaf_hash(k, v) for k, v in sorted(items)])


class MerkleIndex:
    """Sorted keys with their leaf hashes."""

    def __init__(self, items: Iterable[tuple[bytes, bytes]] = ()) -> None:
        self._leaf: dict[bytes, bytes] = {k: leaf_hash(k, v) for k, v in items}
        self._keys = sorted(self._leaf)

    def __len__(self) -> int:
        return len(self._keys)

    def root(self, changes: Mapping[bytes, bytes | None] | None = None) -> bytes:
        """The root after applying ``changes`` (``None`` deletes), without keeping them."""
        if not changes:
            return merkle_root([self._leaf[k] for k in self._keys])
        leaf = self._leaf
        new = {k: leaf_hash(k, v) for k, v in changes.items() if v is not None}
        added = sorted(k for k in new if k not in leaf)
        out: list[bytes] = []
        j = 0
        for k in self._keys:
            while j < len(added) and added[j] < k:
                out.append(new[added[j]])
                j += 1
            if k in changes:
                lh = new.get(k)
                if lh is not None:
                    out.append(lh)
            else:
                out.append(leaf[k])
        out.extend(new[k] for k in added[j:])
        return merkle_root(out)

    def apply(self, changes: Mapping[bytes, bytes | None]) -> None:
        """Keeps ``changes``."""
        for k, v in changes.items():
            if v is None:
                if self._leaf.pop(k, None) is not None:
                    i = bisect.bisect_left(self._keys, k)
                    del self._keys[i]
            else:
                if k not in self._leaf:
                    bisect.insort(self._keys, k)
                self._leaf[k] = leaf_hash(k, v)
