"""The evaluation's view of every row, gathered in passes over the rows with memory flat in their number.

The evaluation judges a sample of rows but reports figures over all of them (lengths, languages, the empty,
truncated and duplicate penalties, the population's strata). None of that needs the rows kept: each side's
`SideTally` takes the rows one at a time and keeps, per row, only two lengths (8 bytes each, for the length
percentiles and charts) and a 64-bit hash of its normalised request (for exact duplicates), plus the
MinHash-LSH index of its distinct requests for near duplicates (`datamill.steps.lsh`, a few hundred bytes a
row, independent of text length). Those are the O(rows) structures of an evaluation; nothing else grows
with the rows.

`gather` reads the rows in passes over sources that can be read again (a callable giving a fresh iterable,
or a list): a pass over the output rows (which source rows have an output row, the after side's figures),
a pass over the source rows (pairing, strata, the before side's figures), then one more pass over each for
the few sampled rows, which alone are kept whole. The pairing and the sample are those of `pair_rows` and
`stratified_sample` row for row: the same rows are judged whichever way the rows arrive.
"""

from __future__ import annotations

import hashlib
import random
from array import array
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from datamill.pipelines.evaluation_penalties import is_empty_or_truncated, request_key
from datamill.pipelines.evaluation_sample import (
    UNKNOWN_LANGUAGE,
    Row,
    RowPair,
    SideText,
    _match_columns,
    _pair,
    _signature,
    after_side,
    allocate,
    approx_tokens,
    before_side,
    row_id_of,
    stratum_of,
    text_of,
)
from datamill.steps.base import StepContext
from datamill.steps.dedup import normalize_text
from datamill.steps.near_dedup import NearDedup

#: Rows a source gives: a callable answering a fresh iterable for each pass, or a collection.
RowSource = Iterable[Row] | Callable[[], Iterable[Row]]

#: Distinct requests signed and looked up together by the near-duplicate count.
NEAR_BATCH = 1024
_NO_MATCH, _BY_ID, _BY_SIGNATURE = 0, 1, 2


def reopenable(source: RowSource) -> Callable[[], Iterable[Row]]:
    """A callable giving the rows for each pass; a one-shot iterator is kept in a list (read once)."""
    if callable(source):
        return source
    if isinstance(source, Iterator):
        rows = list(source)
        return lambda: rows
    return lambda: source


def _hash(text: str) -> int:
    return int.from_bytes(
        hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "little"
    )


class DuplicateCounter:
    """Counts keys that repeat an earlier key exactly (normalised) or nearly (MinHash, as near dedup).

    Keeps a hash per distinct key and the near-dedup index; distinct keys are checked for near duplicates
    `NEAR_BATCH` at a time, in order.
    """

    def __init__(self) -> None:
        self._seen: set[int] = set()
        self._pending: list[Row] = []
        self._near = NearDedup(("key",))
        self._number = 0
        self.count = 0

    def add(self, key: str) -> None:
        self._number += 1
        normal = _hash(normalize_text(key))
        if normal in self._seen:
            self.count += 1
            return
        self._seen.add(normal)
        self._pending.append({"_row": self._number, "key": key})
        if len(self._pending) == NEAR_BATCH:
            self._check()

    def finish(self) -> int:
        """The duplicates counted; releases the index."""
        self._check()
        self._seen.clear()
        self._near = NearDedup(("key",))
        return self.count

    def _check(self) -> None:
        if self._pending:
            ctx = StepContext()
            self._near.process_batch(self._pending, ctx)
            self.count += len(ctx.rejected)
            self._pending = []


@dataclass
class SideTally:
    """One side's figures over all its rows, from one row at a time (module docstring)."""

    language_column: str
    length_range: tuple[int, int] | None = None
    rows: int = 0
    prompt_tokens: array[int] = field(default_factory=lambda: array("q"))
    answer_tokens: array[int] = field(default_factory=lambda: array("q"))
    #: Rows per value of the language column (`UNKNOWN_LANGUAGE` for none), and whether any row has one.
    languages: Counter[str] = field(default_factory=Counter)
    has_language: bool = False
    empty_or_truncated: int = 0
    duplicates: DuplicateCounter = field(default_factory=DuplicateCounter)
    #: Answers within the length range, and answers checked (non-empty), when a range is set.
    within: int = 0
    answered: int = 0

    def add(self, row: Row, side: SideText) -> None:
        self.rows += 1
        self.prompt_tokens.append(approx_tokens(side.prompt))
        answer_tokens = approx_tokens(side.answer)
        self.answer_tokens.append(answer_tokens)
        language = text_of(row.get(self.language_column)).strip()
        self.languages[language or UNKNOWN_LANGUAGE] += 1
        self.has_language = self.has_language or bool(language)
        self.empty_or_truncated += is_empty_or_truncated(side)
        self.duplicates.add(request_key(row, side))
        if self.length_range is not None and side.answer.strip():
            low, high = self.length_range
            self.answered += 1
            self.within += low <= answer_tokens <= high


@dataclass
class Population:
    """What the evaluation knows of all rows: both sides' tallies, the strata, and the sampled pairs."""

    before: SideTally
    after: SideTally
    sample: list[RowPair]
    paired_rows: int = 0
    removed_rows: int = 0
    strata: dict[str, int] = field(default_factory=dict)

    @property
    def source_rows(self) -> int:
        return self.paired_rows + self.removed_rows


def gather(
    before_rows: RowSource,
    after_rows: RowSource,
    *,
    sample_size: int,
    seed: int,
    language_column: str,
    length_range: tuple[int, int] | None,
) -> Population:
    """Tally both sides and draw the stratified sample, in passes over the rows (module docstring)."""
    before_pass, after_pass = reopenable(before_rows), reopenable(after_rows)
    first = next(iter(before_pass()), None)
    columns = _match_columns([first] if first is not None else [])
    after = SideTally(language_column, length_range)
    after_ids: set[int] = set()
    after_signatures: set[int] = set()
    for row in after_pass():
        after.add(row, after_side(row))
        key = row_id_of(row)
        if key is not None:
            after_ids.add(key)
        else:
            after_signatures.add(_signature_hash(row, columns))
    after.duplicates.finish()
    before = SideTally(language_column, length_range)
    strata: dict[str, array[int]] = {}  # positions of the source rows of each stratum, in row order
    pair_ids = array("q")
    matched = bytearray()
    seen: set[int] = set()
    for row in before_pass():
        side = before_side(row)
        before.add(row, side)
        row_id = row_id_of(row)
        how = _BY_ID if row_id is not None and row_id in after_ids else _NO_MATCH
        if how == _NO_MATCH:
            signature = _signature_hash(row, columns)
            if signature not in seen and signature in after_signatures:
                how = _BY_SIGNATURE
            seen.add(signature)
        pair_ids.append(row_id or before.rows)
        matched.append(how)
        language = text_of(row.get(language_column)).strip() or None
        stratum = stratum_of(side.prompt, text_of(row.get("_context")), language)
        strata.setdefault(stratum, array("q")).append(before.rows - 1)
    before.duplicates.finish()
    seen.clear()
    after_ids.clear()
    after_signatures.clear()
    population = Population(before, after, [])
    if not after.rows:
        return population
    population.paired_rows = sum(1 for how in matched if how != _NO_MATCH)
    population.removed_rows = len(matched) - population.paired_rows
    population.strata = {name: len(members) for name, members in strata.items()}
    chosen = _draw(strata, pair_ids, sample_size, seed)
    population.sample = _sampled_pairs(
        chosen, pair_ids, matched, columns, before_pass, after_pass, language_column
    )
    return population


def _draw(strata: dict[str, array[int]], pair_ids: array[int], size: int, seed: int) -> list[int]:
    """`stratified_sample`'s choice, as source-row positions ordered by pair id."""
    quotas = allocate(size, {name: len(members) for name, members in strata.items()})
    chosen: list[int] = []
    for name, quota in quotas.items():
        members = sorted(strata[name], key=lambda position: pair_ids[position])
        chosen.extend(random.Random(f"{seed}:{name}").sample(members, quota))
    return sorted(chosen, key=lambda position: pair_ids[position])


def _sampled_pairs(
    chosen: list[int],
    pair_ids: array[int],
    matched: bytearray,
    columns: tuple[str, ...],
    before_pass: Callable[[], Iterable[Row]],
    after_pass: Callable[[], Iterable[Row]],
    language_column: str,
) -> list[RowPair]:
    """The sampled source rows with the output rows they became, read in one more pass over each side."""
    wanted = set(chosen)
    rows: dict[int, Row] = {}
    ids: set[int] = set()
    signatures: set[int] = set()
    for position, row in enumerate(before_pass()):
        if position in wanted:
            rows[position] = row
            if matched[position] == _BY_ID:
                ids.add(_row_id(row))
            elif matched[position] == _BY_SIGNATURE:
                signatures.add(_signature_hash(row, columns))
    by_id: dict[int, Row] = {}
    by_signature: dict[int, Row] = {}
    for row in after_pass():
        key = row_id_of(row)
        if key is not None:
            if key in ids:
                by_id.setdefault(key, row)
        elif signatures:
            signature = _signature_hash(row, columns)
            if signature in signatures:
                by_signature.setdefault(signature, row)
    pairs = []
    for position in chosen:
        row = rows[position]
        match = None
        if matched[position] == _BY_ID:
            match = by_id.get(_row_id(row))
        elif matched[position] == _BY_SIGNATURE:
            match = by_signature.get(_signature_hash(row, columns))
        pairs.append(_pair(pair_ids[position], row, match, language_column))
    return pairs


def _row_id(row: Row) -> int:
    found = row_id_of(row)
    assert found is not None
    return found


def _signature_hash(row: Row, columns: tuple[str, ...]) -> int:
    return _hash(repr(_signature(row, columns)))
