"""A compact set of 64-bit fingerprints: about 17 bytes of RAM per URL.

A Python ``set`` of ints costs about 80 bytes per member (a 32-byte int
object plus a 16-byte slot at a load of 1/3 to 2/3); a crawl of ten million
URLs would hold most of a gigabyte for its seen set alone. Here the
fingerprints themselves are the table: open addressing with linear probing
over ``array('Q')``, 8 bytes a slot, kept between 1/4 and 1/2 full.

Fingerprints are XXH3 digests, uniform in every bit, so the low bits pick
the slot and the top byte picks one of 256 shards. Each shard grows (doubles
and rehashes) on its own, so the event loop stalls ~1/256 of a full rehash at
a time (a few milliseconds at a million URLs) instead of once for the whole
table (a few hundred).

It is slower than ``set`` (~0.4 µs more per lookup, the price of probing in
bytecode rather than C), which is why ``MemoryFrontier`` keeps ``set`` and
only the persistent frontier, built for big crawls, uses this.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Iterator

__all__ = ["SeenSet"]

_SHARD_BITS = 8
_SHARD_SHIFT = 64 - _SHARD_BITS
_MIN_SLOTS = 256  # per shard: 2 KiB each, 512 KiB for an empty set
# A free slot holds 0; fingerprint 0 itself is kept aside in a flag.


def _table(slots: int) -> array[int]:
    return array("Q", bytes(8 * slots))


class SeenSet:
    """A set of non-negative 64-bit ints with ``add``, ``in`` and ``len``.

    ``add`` answers "was it new?" in one probe sequence, the one question a
    frontier asks per link. Members cannot be removed: a crawl never unsees.
    """

    __slots__ = ("_has_zero", "_limits", "_masks", "_n", "_sizes", "_tabs")

    def __init__(self, expected: int = 0) -> None:
        """``expected``: how many members to size the table for up front (a
        resumed crawl knows), so loading them does not rehash on the way."""
        shards = 1 << _SHARD_BITS
        slots = _MIN_SLOTS
        while slots * shards < expected * 5 // 2:  # some headroom over 1/2 full
            slots *= 2
        self._tabs = [_table(slots) for _ in range(shards)]
        self._masks = [slots - 1] * shards
        self._limits = [slots // 2] * shards
        self._sizes = [0] * shards
        self._n = 0
        self._has_zero = False

    def add(self, fp: int) -> bool:
        """Insert ``fp``; True if it was not a member before."""
        if not fp:
            return self._add_zero()
        s = fp >> _SHARD_SHIFT
        t = self._tabs[s]
        m = self._masks[s]
        i = fp & m
        v = t[i]
        while v:
            if v == fp:
                return False
            i = (i + 1) & m
            v = t[i]
        t[i] = fp
        self._n += 1
        sizes = self._sizes
        sizes[s] += 1
        if sizes[s] > self._limits[s]:
            self._grow(s)
        return True

    def __contains__(self, fp: object) -> bool:
        # The probe loop is written out here and in add() on purpose: it runs
        # ~30 times a page, and a shared helper would add a call to each.
        if not isinstance(fp, int):
            return False
        if not fp:
            return self._has_zero
        s = fp >> _SHARD_SHIFT
        t = self._tabs[s]
        m = self._masks[s]
        i = fp & m
        v = t[i]
        while v:
            if v == fp:
                return True
            i = (i + 1) & m
            v = t[i]
        return False

    def __len__(self) -> int:
        return self._n

    def __iter__(self) -> Iterator[int]:
        if self._has_zero:
            yield 0
        for t in self._tabs:
            for v in t:
                if v:
                    yield v

    def update(self, fps: Iterable[int]) -> int:
        """Add every fingerprint; return how many were new."""
        add = self.add
        return sum(1 for fp in fps if add(fp))

    def nbytes(self) -> int:
        """Bytes held by the tables (the list and int overheads aside)."""
        return sum(t.itemsize * len(t) for t in self._tabs)

    def _add_zero(self) -> bool:
        if self._has_zero:
            return False
        self._has_zero = True
        self._n += 1
        return True

    def _grow(self, s: int) -> None:
        old = self._tabs[s]
        slots = 2 * len(old)
        t = _table(slots)
        m = slots - 1
        for fp in old:
            if fp:
                i = fp & m
                while t[i]:
                    i = (i + 1) & m
                t[i] = fp
        self._tabs[s] = t
        self._masks[s] = m
        self._limits[s] = slots // 2
