"""Near-duplicate dedup with MinHash-LSH: rows whose key text is almost the same as an earlier kept row.

Runs right after exact dedup. Two rows are near-duplicates when the Jaccard similarity of their shingle sets
(see `datamill.steps.minhash`: character 5-grams under 32 words, word 3-grams from 24 words) is at least
`NEAR_DUP_THRESHOLD` = 0.8. For a 14-word prompt that allows a typo, a plural or one added word ("play the
guitar" → "play the guitars" scores 0.85) but not a changed noun ("guitar" → "piano" scores 0.70); a 100-word
text may differ in a few words.

How a batch is processed, all in numpy:

1. Each row's key columns are joined and normalised, shingled and turned into 128-value MinHash signatures.
2. Candidates are rows sharing an LSH band (21 bands of 6 values, from `choose_bands`: a pair at 0.8 shares
   one with probability 0.998), looked up among the kept rows of earlier batches and within the batch.
3. Each candidate is verified: the fraction of agreeing signature values estimates the Jaccard similarity
   (standard error about 0.035 at 0.8), and only an estimate at or above the threshold counts, so a band
   shared by chance never removes a row. Pairs within about 0.1 of the threshold (three standard errors)
   can go either way; on the benchmark corpora (``bench/dedup.py``) precision and recall are both above 0.99.
4. In file order, a row that matches a *kept* row is rejected with the row it repeats, e.g.
   ``near duplicate of row 12 (estimated Jaccard 0.86)``; the first occurrence is always kept. Rows whose
   key text is empty are left to exact dedup.

State across batches is the LSH index of kept rows (`datamill.steps.lsh`): 500–750 bytes per kept row
(twice that for 24–31-word rows, indexed in both spaces), independent of text length; nothing of the text is
kept. Look-ups and inserts cost the same at any size, so time grows linearly with the corpus.
Signatures are computed from a fixed seed, so results are the same on every run and after a resume (the
pipeline replays finished batches through batch steps to rebuild this state).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from numpy.typing import NDArray

from datamill.steps.base import BatchStep, Row, StepContext
from datamill.steps.lsh import LshIndex, batch_pairs
from datamill.steps.minhash import (
    CHAR_NGRAM,
    NUM_PERM,
    WORD_NGRAM,
    MinHasher,
    band_keys,
    choose_bands,
    sign_texts,
)

#: Jaccard similarity of shingle sets at or above which a later row is a near-duplicate.
NEAR_DUP_THRESHOLD = 0.8
#: Characters of a row's key text that are compared: more than any prompt with its context needs, and a
#: bound on the temporary memory one huge cell takes while its batch is signed (about 30 bytes a character).
MAX_TEXT_CHARS = 100_000

# Best match found for a row: (estimate, row number of the kept row it repeats).
_Match = tuple[float, int]


class NearDedup(BatchStep):
    """Drops rows whose key columns nearly repeat an earlier kept row (MinHash-LSH, verified estimates).

    Args:
        key_columns: the columns whose joined text is compared (the pipeline passes prompt and context).
        threshold: Jaccard similarity at or above which a row is a near-duplicate.
        num_perm: MinHash values per signature.
        word_ngram: words per shingle for longer texts.
        char_ngram: characters per shingle for short texts.
    """

    name: ClassVar[str] = "near_deduplication"
    estimate_on_sample = True  # local MinHash over the sample: cheap, and it measures the drop rate

    def __init__(
        self,
        key_columns: tuple[str, ...],
        *,
        threshold: float = NEAR_DUP_THRESHOLD,
        num_perm: int = NUM_PERM,
        word_ngram: int = WORD_NGRAM,
        char_ngram: int = CHAR_NGRAM,
    ) -> None:
        self.input_columns = key_columns
        self.threshold = threshold
        self.bands, self.rows_per_band = choose_bands(threshold, num_perm)
        self.word_ngram = word_ngram
        self.char_ngram = char_ngram
        self._hasher = MinHasher(num_perm)
        self._indexes = {space: LshIndex(self.bands, num_perm) for space in ("characters", "words")}

    def forget(self) -> None:
        self._indexes = {space: LshIndex(self.bands, self._hasher.num_perm) for space in self._indexes}

    @property
    def index_nbytes(self) -> int:
        """Bytes of state held for the rows kept so far."""
        return sum(index.nbytes for index in self._indexes.values())

    def process_batch(self, rows: list[Row], ctx: StepContext) -> list[Row]:
        texts = [
            " ".join(_as_text(row.get(col)) for col in self.input_columns)[:MAX_TEXT_CHARS] for row in rows
        ]
        row_numbers = np.array([row["_row"] for row in rows], dtype=np.int64)
        earlier: dict[int, _Match] = {}
        within: dict[int, list[tuple[int, float]]] = {}
        pending = []
        spaces = sign_texts(self._hasher, texts, word_ngram=self.word_ngram, char_ngram=self.char_ngram)
        for signed in spaces:
            members = signed.members
            if members.size == 0:
                continue
            keys = band_keys(signed.signatures, self.bands, self.rows_per_band)
            sigs16 = signed.signatures.astype(np.uint16)
            index = self._indexes[signed.space]
            for q, ref, score in zip(*index.matches(keys, sigs16, self.threshold), strict=True):
                _keep_best(earlier, int(members[q]), (float(score), int(ref)))
            for a, b, score in zip(*batch_pairs(keys, sigs16, self.threshold), strict=True):
                within.setdefault(int(members[b]), []).append((int(members[a]), float(score)))
            pending.append((index, members, keys, sigs16))
        kept = self._decide(rows, earlier, within, ctx)
        for index, members, keys, sigs16 in pending:
            mask = kept[members]
            index.add(keys[mask], sigs16[mask], row_numbers[members[mask]])
        return [row for row, keep in zip(rows, kept.tolist(), strict=True) if keep]

    def _decide(
        self,
        rows: list[Row],
        earlier: dict[int, _Match],
        within: dict[int, list[tuple[int, float]]],
        ctx: StepContext,
    ) -> NDArray[np.bool_]:
        """In file order: a row matching an earlier batch's kept row, or a kept row of this batch, goes."""
        kept = np.ones(len(rows), dtype=np.bool_)
        for j in sorted(earlier.keys() | within.keys()):
            best = earlier.get(j)
            for i, score in within.get(j, ()):
                if kept[i]:
                    best = _better(best, (score, int(rows[i]["_row"])))
            if best is not None:
                kept[j] = False
                score, ref = best
                ctx.reject(rows[j], self.name, f"near duplicate of row {ref} (estimated Jaccard {score:.2f})")
        return kept


def _better(current: _Match | None, other: _Match) -> _Match:
    """The higher estimate; on a tie, the earlier row."""
    if current is None or (other[0], -other[1]) > (current[0], -current[1]):
        return other
    return current


def _keep_best(best: dict[int, _Match], row: int, match: _Match) -> None:
    best[row] = _better(best.get(row), match)


def _as_text(value: object) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else str(value)
