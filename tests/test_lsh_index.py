"""The LSH band table: every stored (key, slot) is found at any size, and a key keeps its earliest slots.

The index's look-up finds each query's best match whatever the number of queries looked up at once.
"""

from __future__ import annotations

import numpy as np
import pytest

from datamill.steps.lsh import MAX_BUCKET_CANDIDATES, BandTable, LshIndex

LOW32 = 0xFFFFFFFF


def _fp(key: int) -> int:
    return (key & LOW32) or 1


def _found(table: BandTable, queries: list[int]) -> set[tuple[int, int]]:
    index, slots = table.lookup(np.array(queries, dtype=np.uint64))
    pairs = list(zip(index.tolist(), slots.tolist(), strict=True))
    assert len(pairs) == len(set(pairs)), "a slot was returned twice for one query"
    return set(pairs)


def _expected(stored: dict[int, list[int]], queries: list[int]) -> set[tuple[int, int]]:
    return {(i, slot) for i, key in enumerate(queries) for slot in stored.get(_fp(key), [])}


def test_every_stored_slot_is_found_through_many_doublings() -> None:
    rng = np.random.default_rng(3)
    table = BandTable()
    stored: dict[int, list[int]] = {}
    keys_seen: list[int] = []
    slot = 0
    for _ in range(60):
        size = int(rng.integers(1, 3000))
        fresh = rng.integers(0, 2**64, size=size, dtype=np.uint64).tolist()
        # A third of each batch repeats keys stored before (a band shared with an earlier row).
        picks = rng.integers(0, max(len(keys_seen), 1), size=size // 3 if keys_seen else 0)
        repeats = [keys_seen[int(i)] for i in picks]
        batch = [k for k in fresh + repeats if len(stored.get(_fp(k), [])) < MAX_BUCKET_CANDIDATES - 4]
        slots = np.arange(slot, slot + len(batch), dtype=np.uint32)
        table.add(np.array(batch, dtype=np.uint64), slots)
        for key, s in zip(batch, slots.tolist(), strict=True):
            stored.setdefault(_fp(key), []).append(s)
        keys_seen.extend(fresh)
        slot += len(batch)
    absent = rng.integers(0, 2**64, size=2000, dtype=np.uint64).tolist()
    queries = keys_seen + absent
    assert table.nbytes >= 8 * slot / 0.7
    assert _found(table, queries) == _expected(stored, queries)


@pytest.mark.parametrize("top", [0x80000000, 0xFFFFF000], ids=["middle", "end-of-table"])
def test_keys_crowded_into_one_home_are_found_past_many_probe_windows(top: int) -> None:
    """2,000 keys with one home make a run of cells longer than any probe window, at the table's end too."""
    table = BandTable()
    keys = [(7 << 32) | (top + i) for i in range(2000)]
    for lo in range(0, 2000, 500):
        table.add(np.array(keys[lo : lo + 500], dtype=np.uint64), np.arange(lo, lo + 500, dtype=np.uint32))
    assert _found(table, keys) == {(i, i) for i in range(2000)}
    assert _found(table, [(7 << 32) | (top + 2500)]) == set()


def test_a_key_whose_low_bits_are_zero_is_stored() -> None:
    table = BandTable()
    table.add(np.array([5 << 32, 9], dtype=np.uint64), np.array([11, 12], dtype=np.uint32))
    assert _found(table, [5 << 32, 9, 6]) == {(0, 11), (1, 12)}


def test_a_key_keeps_its_earliest_slots_up_to_the_cap() -> None:
    rng = np.random.default_rng(5)
    table = BandTable()
    key = 0x1234_5678_9ABC_DEF0
    # One batch with the key 50 times among other keys, then a later batch with it 10 more times.
    others = rng.integers(0, 2**64, size=450, dtype=np.uint64)
    batch = np.concatenate((np.full(50, key, dtype=np.uint64), others))
    order = rng.permutation(batch.size)
    table.add(batch[order], np.arange(batch.size, dtype=np.uint32)[order])
    table.add(np.full(10, key, dtype=np.uint64), np.arange(1000, 1010, dtype=np.uint32))
    earliest = np.flatnonzero(batch[order] == key)[:MAX_BUCKET_CANDIDATES]
    assert sorted(s for _, s in _found(table, [key])) == sorted(order[earliest].tolist())


def test_a_large_batch_of_queries_gets_each_querys_best_match() -> None:
    # 1,000 queries (looked up in chunks) against 400 stored texts sharing band keys from a small range, so
    # most queries have several candidates; each query's answer is its best candidate found by brute force.
    rng = np.random.default_rng(11)
    bands, num_perm, threshold = 4, 16, 0.3
    index = LshIndex(bands, num_perm)
    stored_keys = rng.integers(1, 2000, size=(400, bands), dtype=np.uint64)
    stored_sigs = rng.integers(0, 3, size=(400, num_perm), dtype=np.uint16)
    index.add(stored_keys, stored_sigs, np.arange(400, dtype=np.int64) * 10)
    keys = rng.integers(1, 2000, size=(1000, bands), dtype=np.uint64)
    sigs = rng.integers(0, 3, size=(1000, num_perm), dtype=np.uint16)
    query, row, score = index.matches(keys, sigs, threshold)
    expected = {}
    for q in range(keys.shape[0]):
        candidates = [s for s in range(400) if set(keys[q].tolist()) & set(stored_keys[s].tolist())]
        scored = [(float((sigs[q] == stored_sigs[s]).mean()), -s) for s in candidates]
        best = max((pair for pair in scored if pair[0] >= threshold), default=None)
        if best is not None:
            expected[q] = (-best[1] * 10, best[0])
    assert len(expected) > 300
    assert query.tolist() == sorted(expected)
    found = zip(query.tolist(), row.tolist(), score.tolist(), strict=True)
    assert {q: (r, s) for q, r, s in found} == expected
