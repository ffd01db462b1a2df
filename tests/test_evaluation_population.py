"""The evaluation reads every row but keeps only the sampled ones: its pairing, sample and figures match
the whole-list reference (`pair_rows`, `stratified_sample`), and after gathering no row of a large population
is still alive except the sampled few (the rows are read in passes from callables, never listed)."""

from __future__ import annotations

import gc
import random
import weakref
from collections.abc import Iterator

from datamill.pipelines.evaluation_population import DuplicateCounter, gather
from datamill.pipelines.evaluation_sample import pair_rows, stratified_sample


class TrackedRow(dict):  # type: ignore[type-arg]
    """A row that a weak reference can watch (plain dicts cannot be)."""

    __slots__ = ("__weakref__",)


def _before(n: int, alive: list[weakref.ref[TrackedRow]] | None = None) -> Iterator[TrackedRow]:
    for i in range(1, n + 1):
        row = TrackedRow(
            _row=i,
            original_prompt=f"Question {i}: " + "word " * (i % 40) + f"tail {i * 7919}?",
            original_completion=f"Answer {i}." if i % 11 else "",
            _context="",
            language="en" if i % 3 else "fr",
        )
        if alive is not None:
            alive.append(weakref.ref(row))
        yield row


def _after(n: int, alive: list[weakref.ref[TrackedRow]] | None = None) -> Iterator[TrackedRow]:
    for row in _before(n):
        if row["_row"] % 5 == 0:
            continue  # removed by the run
        out = TrackedRow(
            row, enhanced_prompt=row["original_prompt"] + " Explain.", enhanced_completion="Yes."
        )
        if alive is not None:
            alive.append(weakref.ref(out))
        yield out


def test_the_sample_and_pairs_match_the_whole_list_reference() -> None:
    before, after = list(_before(300)), list(_after(300))
    reference = stratified_sample(pair_rows(before, after), 40, seed=7)
    got = gather(
        lambda: iter(before),
        lambda: iter(after),
        sample_size=40,
        seed=7,
        language_column="language",
        length_range=None,
    )
    assert got.sample == reference
    assert (got.paired_rows, got.removed_rows) == (240, 60)
    assert got.before.rows == 300
    assert got.after.rows == 240


def test_pairing_without_row_numbers_matches_by_columns_and_skips_repeated_source_rows() -> None:
    before = [{k: v for k, v in row.items() if k != "_row"} for row in _before(50)]
    before.append(dict(before[3]))  # a repeat of row 4: its duplicate, never its match
    after = [{k: v for k, v in row.items() if k != "_row"} for row in _after(50)]
    reference = stratified_sample(pair_rows(before, after), 51, seed=1)
    got = gather(before, after, sample_size=51, seed=1, language_column="language", length_range=None)
    assert got.sample == reference
    assert sum(p.removed for p in got.sample) == 11  # 10 removed by the run, and the repeat


def test_only_the_sampled_rows_stay_alive_after_gathering() -> None:
    alive: list[weakref.ref[TrackedRow]] = []
    rows = 5000
    got = gather(
        lambda: _before(rows, alive),
        lambda: _after(rows, alive),
        sample_size=30,
        seed=0,
        language_column="language",
        length_range=(1, 5),
    )
    gc.collect()
    assert len(got.sample) == 30
    assert got.before.rows == rows
    assert len(got.before.prompt_tokens) == rows
    # The pairs hold texts, not rows: no row of either side outlives the passes.
    assert len(alive) > 2 * rows  # every row was read (in passes)
    assert sum(ref() is not None for ref in alive) == 0


def test_duplicates_are_counted_exactly_and_nearly_across_batches() -> None:
    words = [
        f"{a}{b}" for a in ("ka", "lo", "mi", "nu", "po", "ri", "su", "te") for b in ("x", "y", "z", "w")
    ]
    texts = [" ".join(random.Random(i).sample(words, 12)) for i in range(3000)]
    counter = DuplicateCounter()
    for text in texts:
        counter.add(text)
    distinct = counter.count
    counter.add(texts[5].upper() + "!")  # an exact repeat once normalised
    counter.add(texts[2999] + " kax")  # a near repeat of a row in the last batch: one word added
    counter.add(texts[10] + " kax")  # and of a row in the first batch
    assert counter.finish() == distinct + 3
