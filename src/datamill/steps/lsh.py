"""A MinHash-LSH index of kept texts, in flat numpy arrays so memory per row is small and known.

Each kept text stores:

- its signature truncated to 16 bits per value (``num_perm`` × 2 bytes, 256 B at 128 values): two different
  minima agree on their low 16 bits with probability 2^-16, so the similarity estimate moves by less than
  0.0001 (b-bit minwise hashing, Li and König, 2010);
- one 64-bit key per LSH band with a 32-bit slot number (12 B × 21 bands = 252 B);
- its source row number (8 B).

About 520 B per kept row, whatever the text's length. Band keys live in *sorted runs*, merged when a run
grows to the size of the one before it (as in a log-structured merge tree): adding n rows costs
O(n log n) in all, and a batch of queries is answered with ``np.searchsorted`` on each of the O(log n) runs.

A bucket (one band key) shared by many kept rows, as happens with templated prompts that are similar but
under the threshold, would make every later query verify all of them; each run contributes at most
`MAX_BUCKET_CANDIDATES` rows per bucket, the earliest kept. A true near-duplicate agrees on several bands at
once, so the cap costs recall only on such heavily templated data.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

#: Rows one run contributes for one band key of a query.
MAX_BUCKET_CANDIDATES = 32
#: Candidate pairs verified per numpy chunk (chunk × num_perm × 2 bytes of temporary memory).
_VERIFY_CHUNK = 8192

U64 = NDArray[np.uint64]
Matches = tuple[NDArray[np.intp], NDArray[np.intp], NDArray[np.float64]]


def agreement(left: NDArray[np.uint16], right: NDArray[np.uint16]) -> NDArray[np.float64]:
    """Estimated Jaccard similarity of paired signature rows: the fraction of values that agree."""
    out = np.empty(left.shape[0], dtype=np.float64)
    for lo in range(0, left.shape[0], _VERIFY_CHUNK):
        hi = lo + _VERIFY_CHUNK
        out[lo:hi] = (left[lo:hi] == right[lo:hi]).mean(axis=1)
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
    score = agreement(sigs[first], sigs[second])
    hit = score >= threshold
    return first[hit], second[hit], score[hit]


class _SortedRuns:
    """Band keys with the slot of the row they belong to, as a few sorted arrays."""

    def __init__(self) -> None:
        self.keys: list[U64] = []
        self.slots: list[NDArray[np.uint32]] = []

    @property
    def nbytes(self) -> int:
        return sum(k.nbytes for k in self.keys) + sum(s.nbytes for s in self.slots)

    def add(self, keys: U64, slots: NDArray[np.uint32]) -> None:
        order = np.argsort(keys, kind="stable")
        self.keys.append(keys[order])
        self.slots.append(slots[order])
        while len(self.keys) > 1 and self.keys[-2].size <= 2 * self.keys[-1].size:
            # Older run first, stable sort: equal keys stay in insertion order, so capped buckets keep
            # the earliest rows.
            keys = np.concatenate(self.keys[-2:])
            slots = np.concatenate(self.slots[-2:])
            order = np.argsort(keys, kind="stable")
            self.keys[-2:] = [keys[order]]
            self.slots[-2:] = [slots[order]]

    def lookup(self, queries: U64) -> tuple[NDArray[np.intp], NDArray[np.uint32]]:
        """(index into ``queries``, slot) for every stored key equal to a query key, capped per bucket."""
        found_q: list[NDArray[np.intp]] = []
        found_s: list[NDArray[np.uint32]] = []
        # Sorted queries make the binary searches walk the run in order (numpy narrows each search with
        # the previous result), several times faster than random order on large runs.
        order = np.argsort(queries)
        ordered = queries[order]
        for keys, slots in zip(self.keys, self.slots, strict=True):
            lo = np.searchsorted(keys, ordered, side="left")
            hit = np.flatnonzero(keys[np.minimum(lo, keys.size - 1)] == ordered)
            if hit.size == 0:
                continue
            lo = lo[hit]
            counts = np.minimum(np.searchsorted(keys, ordered[hit], side="right") - lo, MAX_BUCKET_CANDIDATES)
            total = int(counts.sum())
            query_index = np.repeat(order[hit], counts)
            within = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
            found_q.append(query_index)
            found_s.append(slots[np.repeat(lo, counts) + within])
        if not found_q:
            return np.empty(0, np.intp), np.empty(0, np.uint32)
        return np.concatenate(found_q), np.concatenate(found_s)


class LshIndex:
    """Kept texts of one shingle space: band keys, 16-bit signatures and source row numbers.

    Args:
        bands: LSH bands (keys per text).
        num_perm: signature length.
    """

    def __init__(self, bands: int, num_perm: int) -> None:
        self.bands = bands
        self.num_perm = num_perm
        self._runs = _SortedRuns()
        self._sigs = np.empty((0, num_perm), dtype=np.uint16)
        self._rows = np.empty(0, dtype=np.int64)
        self._size = 0

    def __len__(self) -> int:
        return self._size

    @property
    def nbytes(self) -> int:
        """Bytes held for the kept rows (signature arrays at their current capacity)."""
        return self._runs.nbytes + self._sigs.nbytes + self._rows.nbytes

    def matches(self, keys: U64, sigs: NDArray[np.uint16], threshold: float) -> Matches:
        """Best kept row per query text whose estimated similarity reaches ``threshold``.

        Returns:
            (query index, source row number, estimate), one entry per matched query.
        """
        if self._size == 0:
            empty = np.empty(0, np.intp)
            return empty, empty, np.empty(0, np.float64)
        flat_index, slots = self._runs.lookup(keys.ravel())
        code = (flat_index // self.bands).astype(np.uint64) << np.uint64(32) | slots.astype(np.uint64)
        code = np.unique(code)
        query = (code >> np.uint64(32)).astype(np.intp)
        slot = (code & np.uint64(0xFFFFFFFF)).astype(np.intp)
        score = agreement(sigs[query], self._sigs[slot])
        hit = score >= threshold
        best_q, best_slot, best_score = best_per_query(query[hit], slot[hit], score[hit])
        return best_q, self._rows[best_slot].astype(np.intp), best_score

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
        self._runs.add(keys.ravel(), np.repeat(slots, self.bands))

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
