"""A MinHash-LSH index of kept texts, in flat numpy arrays so memory per row is small and known.

Each kept text stores:

- its signature truncated to 16 bits per value (``num_perm`` × 2 bytes, 256 B at 128 values): two different
  minima agree on their low 16 bits with probability 2^-16, so the similarity estimate moves by less than
  0.0001 (b-bit minwise hashing, Li and König, 2010);
- one hash-table cell per LSH band: the band key's low 32 bits and a 32-bit slot number, 8 B in a table
  kept 35–70% full (11–23 B per band, 240–480 B for 21 bands);
- its source row number (8 B).

About 500–750 B per kept row, whatever the text's length. The table (`BandTable`) is open addressing with
linear probing: a batch of look-ups or inserts reads a few neighbouring cells per key, so both cost the same
whatever the number of rows kept, and time grows linearly with the corpus.

A bucket (one band key) shared by many kept rows, as happens with templated prompts that are similar but
under the threshold, would make every later query verify all of them; a band key keeps at most
`MAX_BUCKET_CANDIDATES` rows, the earliest kept. A true near-duplicate agrees on several bands at once, so the
cap costs recall only on such heavily templated data. The cap also bounds a look-up's temporary memory:
queries are looked up `_QUERY_CHUNK` texts at a time and their candidates verified `_VERIFY_CHUNK` pairs at
a time, so a batch of any size over an index of any size needs a few MB beside the index.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from numpy.typing import NDArray

#: Kept rows stored for one band key.
MAX_BUCKET_CANDIDATES = 32
#: Candidate pairs verified per numpy chunk (chunk × num_perm × 2 bytes of temporary memory).
_VERIFY_CHUNK = 8192
#: Query texts looked up together: their candidates (at most bands × `MAX_BUCKET_CANDIDATES` each, some
#: 40 bytes of index arrays per candidate) are the temporary memory of a look-up, whatever the batch size.
_QUERY_CHUNK = 128
#: Largest fraction of the hash table's cells in use before it doubles.
_MAX_LOAD = 0.7
#: Cells of the smallest table, as a power of two.
_MIN_BITS = 12
#: Cells read per probe round, in turn; the last repeats. The table always ends with this many empty cells.
_FIRST_WIDTHS = (4, 16, 64, 256)
_TAIL = _FIRST_WIDTHS[-1]
#: Entries laid out per numpy pass when the table doubles.
_REBUILD_CHUNK = 1 << 20
_LOW32 = np.uint64(0xFFFFFFFF)
_SHIFT = np.uint64(32)

U64 = NDArray[np.uint64]
Matches = tuple[NDArray[np.intp], NDArray[np.intp], NDArray[np.float64]]


def agreement(
    left: NDArray[np.uint16],
    left_rows: NDArray[np.intp],
    right: NDArray[np.uint16],
    right_rows: NDArray[np.intp],
) -> NDArray[np.float64]:
    """Estimated Jaccard similarity of each pair ``left[left_rows[i]]``, ``right[right_rows[i]]``.

    The estimate is the fraction of values that agree. The signature rows are gathered `_VERIFY_CHUNK`
    pairs at a time, so the temporary memory stays the same however many candidate pairs there are.
    """
    out = np.empty(left_rows.size, dtype=np.float64)
    for lo in range(0, left_rows.size, _VERIFY_CHUNK):
        hi = lo + _VERIFY_CHUNK
        out[lo:hi] = (left[left_rows[lo:hi]] == right[right_rows[lo:hi]]).mean(axis=1)
    return out


def best_per_query(query: NDArray[np.intp], ref: NDArray[np.intp], score: NDArray[np.float64]) -> Matches:
    """For each query, its highest-scoring reference (the lowest reference on ties)."""
    if query.size == 0:
        return query, ref, score
    order = np.lexsort((ref, -score, query))
    query, ref, score = query[order], ref[order], score[order]
    first = np.concatenate(([True], query[1:] != query[:-1]))
    return query[first], ref[first], score[first]


def batch_pairs(keys: U64, sigs: NDArray[np.uint16], threshold: float) -> Matches:
    """Pairs (i < j) of texts in one batch that share a band key and whose estimate reaches ``threshold``."""
    bands = keys.shape[1]
    flat = keys.ravel()
    order = np.argsort(flat, kind="stable")
    ordered = flat[order]
    boundary = np.flatnonzero(ordered[1:] != ordered[:-1]) + 1
    starts = np.concatenate(([0], boundary))
    ends = np.concatenate((boundary, [flat.size]))
    shared = np.flatnonzero(ends - starts > 1)
    pairs: set[tuple[int, int]] = set()
    for g in shared.tolist():
        members = sorted({int(i) // bands for i in order[starts[g] : ends[g]]})[:MAX_BUCKET_CANDIDATES]
        pairs.update((a, b) for k, a in enumerate(members) for b in members[k + 1 :])
    if not pairs:
        empty = np.empty(0, np.intp)
        return empty, empty, np.empty(0, np.float64)
    pair_arr = np.array(sorted(pairs), dtype=np.intp)
    first, second = pair_arr[:, 0], pair_arr[:, 1]
    score = agreement(sigs, first, sigs, second)
    hit = score >= threshold
    return first[hit], second[hit], score[hit]


class BandTable:
    """Band keys with the slot of the row they belong to, in one open-addressing hash table.

    Each cell is one ``uint64``: the key's low 32 bits (its fingerprint, never 0) above the 32-bit slot; 0 is
    an empty cell. A key's home cell is given by the top bits of its fingerprint and it sits in the first free
    cell from there on (linear probing, no wrap-around: a tail of empty cells follows the last one used), so
    a look-up reads a few neighbouring cells and stops at an empty one. Reads go a window of cells at a time
    for the whole batch of queries, so numpy does the work.

    Look-ups and inserts cost the same at any size (the table is at most `_MAX_LOAD` full); when it fills
    up it doubles, and the cells are laid out again in one sorted pass. Two keys with the same fingerprint
    only add a candidate that verification rejects.
    """

    def __init__(self) -> None:
        self._bits = _MIN_BITS
        self._cells = np.zeros((1 << _MIN_BITS) + _TAIL, dtype=np.uint64)
        self._size = 0

    @property
    def nbytes(self) -> int:
        return self._cells.nbytes

    def lookup(self, queries: U64) -> tuple[NDArray[np.intp], NDArray[np.uint32]]:
        """(index into ``queries``, slot) for every stored key equal to a query key."""
        fp = _fingerprints(queries)
        found_q: list[NDArray[np.intp]] = []
        found_s: list[NDArray[np.uint32]] = []
        active = np.arange(fp.size)
        pos = self._home(fp)
        for width in _widths():
            if active.size == 0:
                break
            cells, chain = self._window(pos, width)
            col, row = np.nonzero(chain & ((cells >> _SHIFT) == fp))
            if row.size:
                found_q.append(active[row])
                found_s.append((cells[col, row] & _LOW32).astype(np.uint32))
            live = chain[-1]
            active, pos, fp = active[live], pos[live] + width, fp[live]
        if not found_q:
            return np.empty(0, np.intp), np.empty(0, np.uint32)
        return np.concatenate(found_q), np.concatenate(found_s)

    def add(self, keys: U64, slots: NDArray[np.uint32]) -> None:
        """Store (key, slot) pairs; a key that already has `MAX_BUCKET_CANDIDATES` slots gets no more."""
        fp = _fingerprints(keys)
        self._grow(self._size + fp.size)
        self._size += self._insert((fp << _SHIFT) | slots.astype(np.uint64))

    def _home(self, fp: U64) -> NDArray[np.intp]:
        return (fp >> np.uint64(32 - self._bits)).astype(np.intp)

    def _insert(self, entries: U64) -> int:
        """Put each entry in the first empty cell from its home, counting same-key cells passed on the way.

        Entries racing for one cell all offer a marker there and the largest stays: the earliest entry takes
        the cell, and the others go on from the next cell, counting the winner if it has their key. Entries
        with one key start from one home and so move together, so a key keeps exactly its earliest
        `MAX_BUCKET_CANDIDATES` entries. Returns the entries stored.
        """
        count = entries.size
        fp = entries >> _SHIFT
        pending = np.arange(count)
        pos = self._home(fp)
        seen = np.zeros(count, dtype=np.intp)
        marker = np.arange(count, 0, -1, dtype=np.uint64)  # earlier is larger; below 2**32, so never an entry
        stored = 0
        for width in _widths():
            if pending.size == 0:
                break
            self._keep_tail(int(pos.max()) + width)
            cells, chain = self._window(pos, width)
            first = np.count_nonzero(chain, axis=0)
            found = first < width
            seen[pending] += np.count_nonzero(chain & ((cells >> _SHIFT) == fp[pending]), axis=0)
            full = seen[pending] >= MAX_BUCKET_CANDIDATES
            go = np.flatnonzero(found & ~full)
            target, claim = pos[go] + first[go], pending[go]
            np.maximum.at(self._cells, target, marker[claim])
            won = self._cells[target] == marker[claim]
            self._cells[target[won]] = entries[claim[won]]
            stored += int(np.count_nonzero(won))
            lost_at, lost = target[~won], claim[~won]
            seen[lost] += (self._cells[lost_at] >> _SHIFT) == fp[lost]
            onward = ~found & ~full
            pending = np.concatenate((pending[onward], lost))
            pos = np.concatenate((pos[onward] + width, lost_at + 1))
        return stored

    def _window(self, pos: NDArray[np.intp], width: int) -> tuple[U64, NDArray[np.bool_]]:
        """The ``width`` cells from each position (one column per position), and which lie in the chain.

        A cell is in the chain when it and every cell before it in the column are in use.
        """
        cells = self._cells[pos + np.arange(width)[:, None]]
        return cells, np.logical_and.accumulate(cells != 0, axis=0)

    def _keep_tail(self, reach: int) -> None:
        """Make the table long enough that cells up to ``reach`` exist with `_TAIL` empty cells after."""
        if reach + _TAIL > self._cells.size:
            grown = np.zeros(reach + 2 * _TAIL, dtype=np.uint64)
            grown[: self._cells.size] = self._cells
            self._cells = grown

    def _grow(self, needed: int) -> None:
        """Double the table until ``needed`` entries keep it at most `_MAX_LOAD` full."""
        bits = self._bits
        while needed > (1 << bits) * _MAX_LOAD:
            bits += 1
        if bits == self._bits:
            return
        entries = self._cells[self._cells != 0]
        self._cells = np.empty(0, dtype=np.uint64)
        # Sorted by value is sorted by home; each entry then goes to max(home, previous cell + 1).
        entries.sort()
        self._bits = bits
        self._cells = np.zeros((1 << bits) + _TAIL, dtype=np.uint64)
        reach = np.iinfo(np.intp).min
        for lo in range(0, entries.size, _REBUILD_CHUNK):
            chunk = entries[lo : lo + _REBUILD_CHUNK]
            ramp = np.arange(lo, lo + chunk.size)
            offset = np.maximum.accumulate(self._home(chunk >> _SHIFT) - ramp)
            np.maximum(offset, reach, out=offset)
            reach = int(offset[-1])
            cells = ramp + offset
            self._keep_tail(int(cells[-1]) + 1)
            self._cells[cells] = chunk


def _fingerprints(keys: U64) -> U64:
    fp = keys & _LOW32
    fp[fp == 0] = 1
    return fp


def _widths() -> Iterator[int]:
    """Cells read per probe round: most keys are settled by the first few cells."""
    yield from _FIRST_WIDTHS
    while True:
        yield _FIRST_WIDTHS[-1]


class LshIndex:
    """Kept texts of one shingle space: band keys, 16-bit signatures and source row numbers.

    Args:
        bands: LSH bands (keys per text).
        num_perm: signature length.
    """

    def __init__(self, bands: int, num_perm: int) -> None:
        self.bands = bands
        self.num_perm = num_perm
        self._keys = BandTable()
        self._sigs = np.empty((0, num_perm), dtype=np.uint16)
        self._rows = np.empty(0, dtype=np.int64)
        self._size = 0

    def __len__(self) -> int:
        return self._size

    @property
    def nbytes(self) -> int:
        """Bytes held for the kept rows (signature arrays at their current capacity)."""
        return self._keys.nbytes + self._sigs.nbytes + self._rows.nbytes

    def matches(self, keys: U64, sigs: NDArray[np.uint16], threshold: float) -> Matches:
        """Best kept row per query text whose estimated similarity reaches ``threshold``.

        Returns:
            (query index, source row number, estimate), one entry per matched query.
        """
        if self._size == 0:
            empty = np.empty(0, np.intp)
            return empty, empty, np.empty(0, np.float64)
        found = [
            self._matches(keys[lo : lo + _QUERY_CHUNK], sigs[lo : lo + _QUERY_CHUNK], threshold, lo)
            for lo in range(0, keys.shape[0], _QUERY_CHUNK)
        ]
        best_q, best_slot, best_score = (np.concatenate(part) for part in zip(*found, strict=True))
        return best_q, self._rows[best_slot].astype(np.intp), best_score

    def _matches(self, keys: U64, sigs: NDArray[np.uint16], threshold: float, first: int) -> Matches:
        """`matches` for a chunk of queries numbered from ``first``: (query index, slot, estimate)."""
        flat_index, slots = self._keys.lookup(keys.ravel())
        code = (flat_index // self.bands).astype(np.uint64) << np.uint64(32) | slots.astype(np.uint64)
        code = np.unique(code)
        query = (code >> np.uint64(32)).astype(np.intp)
        slot = (code & np.uint64(0xFFFFFFFF)).astype(np.intp)
        score = agreement(sigs, query, self._sigs, slot)
        hit = score >= threshold
        best_q, best_slot, best_score = best_per_query(query[hit], slot[hit], score[hit])
        return best_q + first, best_slot, best_score

    def add(self, keys: U64, sigs: NDArray[np.uint16], rows: NDArray[np.int64]) -> None:
        """Index kept texts: their band keys, signatures and source row numbers."""
        count = rows.size
        if count == 0:
            return
        self._reserve(self._size + count)
        slots = np.arange(self._size, self._size + count, dtype=np.uint32)
        self._sigs[self._size : self._size + count] = sigs
        self._rows[self._size : self._size + count] = rows
        self._size += count
        self._keys.add(keys.ravel(), np.repeat(slots, self.bands))

    def _reserve(self, needed: int) -> None:
        capacity = self._rows.size
        if needed <= capacity:
            return
        capacity = max(needed, capacity + capacity // 2, 1024)
        sigs = np.empty((capacity, self.num_perm), dtype=np.uint16)
        sigs[: self._size] = self._sigs[: self._size]
        rows = np.empty(capacity, dtype=np.int64)
        rows[: self._size] = self._rows[: self._size]
        self._sigs, self._rows = sigs, rows
