"""The novelty gate: a candidate that nearly repeats a seed or a sample already delivered is regenerated.

Synthetic data drawn from a few seeds tends to copy them, and samples of one run tend to repeat each other;
copies add nothing to train on and make the seeds leak into the output. Self-Instruct and Alpaca keep a new
instruction only when its ROUGE-L similarity to every instruction in the pool is below 0.7. datamill applies
the same rule with the MinHash-LSH machinery of its near-duplicate dedup (`datamill.steps.near_dedup`): the
same normalisation and shingles (character 5-grams for texts under 32 words, word 3-grams from 24 words),
128-value signatures and LSH bands, with verified estimates of the Jaccard similarity of shingle sets.

A candidate is *not novel* when its estimated Jaccard similarity to a seed or to a sample already accepted
in the run reaches `NOVELTY_THRESHOLD` (0.7, the cut Alpaca uses, on a stricter measure: Jaccard of shingle
sets is lower than ROUGE-L for the same pair). The gate fails it under ``novelty`` with the text it repeats
(``a near copy of seed 'reviews.csv#3' (estimated Jaccard 0.91)``), and the slot is regenerated like any
other gate failure; the run's summary counts these under ``rejected_by_gate["novelty"]``.

Row samples (JSON objects) are compared on their values joined in field order, since every sample shares the
keys. Checking a candidate and recording it happen in one call without an await between them (`admit`), so
two samples written at the same time cannot both pass as each other's first occurrence.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np

from datamill.steps.lsh import LshIndex
from datamill.steps.minhash import NUM_PERM, MinHasher, band_keys, choose_bands, sign_texts

#: Estimated Jaccard similarity at or above which a candidate repeats a seed or an earlier sample.
NOVELTY_THRESHOLD = 0.7
#: Characters of a sample compared (as in near-duplicate dedup: bounds the memory one huge sample takes).
MAX_TEXT_CHARS = 100_000


class NoveltyFilter:
    """Remembers the seeds and the accepted samples of a run and refuses candidates that repeat them.

    Args:
        seeds: ``(name, text)`` of each seed; a row seed's text is its JSON object.
        threshold: estimated Jaccard similarity at or above which a candidate is a near copy.
        structured: samples are JSON objects, compared on their values.
    """

    def __init__(
        self,
        seeds: Sequence[tuple[str, str]] = (),
        *,
        threshold: float = NOVELTY_THRESHOLD,
        structured: bool = False,
        num_perm: int = NUM_PERM,
    ) -> None:
        self.threshold = threshold
        self.structured = structured
        self.bands, self.rows_per_band = choose_bands(threshold, num_perm)
        self._hasher = MinHasher(num_perm)
        self._indexes = {space: LshIndex(self.bands, num_perm) for space in ("characters", "words")}
        # Index entries are numbered: seeds -1, -2, ... and samples by their slot.
        self._seed_names: list[str] = []
        for name, text in seeds:
            self._seed_names.append(name)
            self._add(self._signed(text), -len(self._seed_names))

    def problem(self, text: str) -> str | None:
        """Why ``text`` is not novel, or None; nothing is recorded."""
        return self._describe(self._best(self._signed(text)))

    def admit(self, text: str, slot: int) -> str | None:
        """Record ``text`` as sample ``slot`` when it is novel; else return why it is not."""
        signed = self._signed(text)
        problem = self._describe(self._best(signed))
        if problem is None:
            self._add(signed, slot)
        return problem

    def _comparable(self, text: str) -> str:
        if self.structured:
            try:
                value = json.loads(text)
            except ValueError:
                value = None
            if isinstance(value, dict):
                return " ".join(_flat(v) for v in value.values())
        return text

    def _signed(self, text: str) -> list[tuple[str, Any, Any]]:
        spaces = sign_texts(self._hasher, [self._comparable(text)[:MAX_TEXT_CHARS]])
        out = []
        for signed in spaces:
            if signed.members.size:
                keys = band_keys(signed.signatures, self.bands, self.rows_per_band)
                out.append((signed.space, keys, signed.signatures.astype(np.uint16)))
        return out

    def _best(self, signed: list[tuple[str, Any, Any]]) -> tuple[float, int] | None:
        best: tuple[float, int] | None = None
        for space, keys, sigs in signed:
            _, refs, scores = self._indexes[space].matches(keys, sigs, self.threshold)
            for ref, score in zip(refs.tolist(), scores.tolist(), strict=True):
                if best is None or score > best[0]:
                    best = (float(score), int(ref))
        return best

    def _add(self, signed: list[tuple[str, Any, Any]], number: int) -> None:
        for space, keys, sigs in signed:
            self._indexes[space].add(keys, sigs, np.array([number], dtype=np.int64))

    def _describe(self, best: tuple[float, int] | None) -> str | None:
        if best is None:
            return None
        score, ref = best
        what = f"seed {self._seed_names[-ref - 1]!r}" if ref < 0 else f"sample {ref}"
        return f"a near copy of {what} (estimated Jaccard {score:.2f}, at least {self.threshold:g})"


def _flat(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True)
