"""Semantic dedup (optional): rows that ask the same thing in other words, by sentence-embedding similarity.

Runs after near-duplicate dedup, which has already removed rows with nearly the same words. Each row's key
columns are embedded (the bundled MiniLM in production); a row whose cosine similarity to an earlier *kept*
row is at least `SEMANTIC_DUP_THRESHOLD` is rejected with the most similar one, e.g.
``semantic duplicate of row 12 (cosine 0.962)``. The first occurrence is kept.

Why 0.95. Measured with the bundled all-MiniLM-L6-v2 on ten pairs of rewordings of one request and twelve
pairs of requests that differ in one detail that changes the answer. Rewordings scored 0.78–0.99 ("How do I
reset my password?" / "How can I reset my password?" 0.99; "Tell me a joke about cats" / "Tell me a cat
joke" 0.94); the different requests scored up to 0.95 ("Summarize this email in one sentence" / "... in two
sentences" 0.954, "boiling point of water in Celsius" / "... in Fahrenheit" 0.91, "World War I" / "World
War II" 0.88). At 0.95, 5 of the 10 rewordings and 1 of the 12 different requests are removed; at 0.90, 8
and 2. Dropping a distinct request costs more than keeping a paraphrase, so the default removes close
rewordings only; lower it (``threshold=``) for more aggressive dedup.

Memory and time. Kept rows are stored as float16 vectors (384 × 2 bytes, plus 8 bytes for the row number:
776 bytes per kept row for MiniLM); nothing of the text is kept. Each batch is compared with every kept row
by matrix products over blocks of `_BLOCK_ROWS` rows, so the search is exact and costs O(kept rows) per
row: 1,000 rows against 100,000 kept rows is 77 GFLOP, about 1–2 s on two cores, as long as embedding those
1,000 rows. Time therefore grows with the square of the dataset; past about 100,000 rows the search, not the
model, sets the pace.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from numpy.typing import NDArray

from datamill.steps.base import BatchStep, Row, StepContext
from datamill.text.embeddings import Embedder

#: Cosine similarity at or above which a later row is a semantic duplicate of a kept row.
SEMANTIC_DUP_THRESHOLD = 0.95
# Kept vectors compared per matrix product (65,536 × 384 float32 = 96 MB of temporary memory).
_BLOCK_ROWS = 65_536


class SemanticDedup(BatchStep):
    """Drops rows whose embedded key columns are within ``threshold`` cosine of an earlier kept row.

    Args:
        key_columns: the columns whose joined text is embedded (the pipeline passes prompt and context).
        embedder: turns texts into normalised vectors.
        threshold: cosine similarity at or above which a row is a duplicate.
    """

    name: ClassVar[str] = "semantic_deduplication"

    def __init__(
        self, key_columns: tuple[str, ...], embedder: Embedder, *, threshold: float = SEMANTIC_DUP_THRESHOLD
    ) -> None:
        self.input_columns = key_columns
        self.embedder = embedder
        self.threshold = threshold
        self.forget()

    def forget(self) -> None:
        self._vectors = np.empty((0, self.embedder.dim), dtype=np.float16)
        self._rows = np.empty(0, dtype=np.int64)
        self._size = 0

    @property
    def index_nbytes(self) -> int:
        """Bytes held for the rows kept so far (at the arrays' current capacity)."""
        return self._vectors.nbytes + self._rows.nbytes

    def process_batch(self, rows: list[Row], ctx: StepContext) -> list[Row]:
        texts = ["\n".join(_as_text(row.get(col)) for col in self.input_columns).strip() for row in rows]
        members = np.array([i for i, text in enumerate(texts) if text], dtype=np.intp)
        if members.size == 0:
            return rows
        vectors = self.embedder.embed([texts[i] for i in members])
        best_score, best_ref = self._best_kept(vectors)
        kept_local = self._decide(rows, members, vectors, best_score, best_ref, ctx)
        self._append(vectors[kept_local], np.array([rows[i]["_row"] for i in members[kept_local]], np.int64))
        dropped = set(members[~kept_local].tolist())
        return [row for i, row in enumerate(rows) if i not in dropped]

    def _best_kept(self, vectors: NDArray[np.float32]) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
        """For each vector, the highest similarity to a kept row and that row's number (-1: none)."""
        best = np.full(vectors.shape[0], -np.inf, dtype=np.float32)
        ref = np.full(vectors.shape[0], -1, dtype=np.int64)
        for lo in range(0, self._size, _BLOCK_ROWS):
            hi = min(lo + _BLOCK_ROWS, self._size)
            sims = vectors @ self._vectors[lo:hi].astype(np.float32).T
            arg = sims.argmax(axis=1)
            top = sims[np.arange(sims.shape[0]), arg]
            better = top > best  # strictly: on a tie the earlier kept row stays
            best[better] = top[better]
            ref[better] = self._rows[lo + arg[better]]
        return best, ref

    def _decide(
        self,
        rows: list[Row],
        members: NDArray[np.intp],
        vectors: NDArray[np.float32],
        best: NDArray[np.float32],
        ref: NDArray[np.int64],
        ctx: StepContext,
    ) -> NDArray[np.bool_]:
        """In file order: a row close to a kept row (earlier batches, or this batch) is rejected."""
        sims = vectors @ vectors.T
        np.fill_diagonal(sims, -np.inf)
        kept = np.ones(members.size, dtype=np.bool_)
        suspects = np.flatnonzero(
            (best >= self.threshold) | (np.tril(sims, -1) >= self.threshold).any(axis=1)
        )
        for j in suspects.tolist():
            score, row_number = float(best[j]), int(ref[j])
            earlier = np.flatnonzero(kept[:j] & (sims[j, :j] >= self.threshold))
            if earlier.size:
                i = int(earlier[np.argmax(sims[j, earlier])])
                if sims[j, i] > score:
                    score, row_number = float(sims[j, i]), int(rows[members[i]]["_row"])
            if score >= self.threshold:
                kept[j] = False
                ctx.reject(
                    rows[members[j]],
                    self.name,
                    f"semantic duplicate of row {row_number} (cosine {score:.3f})",
                )
        return kept

    def _append(self, vectors: NDArray[np.float32], rows: NDArray[np.int64]) -> None:
        needed = self._size + rows.size
        if needed > self._rows.size:
            capacity = max(needed, self._rows.size + self._rows.size // 2, 1024)
            grown = np.empty((capacity, self._vectors.shape[1]), dtype=np.float16)
            grown[: self._size] = self._vectors[: self._size]
            numbers = np.empty(capacity, dtype=np.int64)
            numbers[: self._size] = self._rows[: self._size]
            self._vectors, self._rows = grown, numbers
        self._vectors[self._size : needed] = vectors
        self._rows[self._size : needed] = rows
        self._size = needed


def _as_text(value: object) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else str(value)
