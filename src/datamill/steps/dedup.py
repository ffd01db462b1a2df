"""Exact deduplication on a normalised text hash.

Normalisation: Unicode NFKC, case folding, punctuation removed, runs of whitespace collapsed. Two rows are
duplicates when their normalised key columns all match (the adaptation pipeline keys on prompt and context);
the first occurrence is kept and every later one is rejected with the row number of the one it repeats.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from typing import ClassVar

from datamill.steps.base import BatchStep, Row, StepContext

_NON_WORD = re.compile(r"[^\w\s]+")
_SPACES = re.compile(r"\s+")


def normalize_text(text: str) -> str:
    """The form two texts must share to count as exact duplicates."""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = _NON_WORD.sub(" ", text)
    return _SPACES.sub(" ", text).strip()


class ExactDedup(BatchStep):
    """Drops rows whose normalised key columns repeat an earlier row."""

    name: ClassVar[str] = "deduplication"

    def __init__(self, key_columns: tuple[str, ...]) -> None:
        self.input_columns = key_columns
        self._seen: dict[bytes, int] = {}

    def forget(self) -> None:
        self._seen = {}

    def estimate_sample(self, rows: list[Row]) -> list[Row]:
        """The sample rows a fresh dedup (one that has seen no earlier batch) keeps."""
        return ExactDedup(tuple(self.input_columns)).process_batch([dict(r) for r in rows], StepContext())

    def process_batch(self, rows: list[Row], ctx: StepContext) -> list[Row]:
        kept = []
        for row in rows:
            digest = self._digest(row)
            first = self._seen.get(digest)
            if first is None:
                self._seen[digest] = row["_row"]
                kept.append(row)
            else:
                ctx.reject(row, self.name, f"exact duplicate of row {first}")
        return kept

    def _digest(self, row: Row) -> bytes:
        parts = (normalize_text(_as_text(row.get(col))) for col in self.input_columns)
        return hashlib.blake2b("\x1f".join(parts).encode(), digest_size=16).digest()


def _as_text(value: object) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else str(value)
