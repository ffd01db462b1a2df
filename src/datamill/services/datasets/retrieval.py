"""Rows relevant to a dataset, from a pool of other rows: what ``augment`` adds as ``domain_rows``.

Relevance is full-text relevance, with SQLite's FTS5 and its BM25 ranking (the engine of datamill's local
grounding index, `datamill.text.fulltext`): the pool's rows are indexed in memory, the text of each source
row (up to `MAX_QUERIES` of them, spread evenly over the dataset) is a query of its distinct words less
stopwords, and a pool row's score is the sum of its BM25 scores over the queries that found it among their
`TOP_K` best. Rows no query found are not relevant. A pool row is left out when it is a near-duplicate of a
source row that found it (the same words after case folding and NFKC, or a Jaccard similarity of word
3-shingles of at least `NEAR_DUPLICATE`), by its whole text or by its key (the prompt: the same question with
another answer is a duplicate too), or when a pool row ranked above it has the same words.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from datamill.steps.minhash import canonical_text
from datamill.text.fulltext import build_query, require_fts5

MAX_QUERIES = 2_000
TOP_K = 50
NEAR_DUPLICATE = 0.8


@dataclass(frozen=True)
class Ranked:
    """A relevant pool row: its position in the pool and its score."""

    index: int
    score: float


def _shingles(canonical: str) -> frozenset[str]:
    words = canonical.split()
    if len(words) < 3:
        return frozenset([canonical])
    return frozenset(" ".join(words[i : i + 3]) for i in range(len(words) - 2))


def _similar(a: frozenset[str], b: frozenset[str]) -> bool:
    union = len(a | b)
    return union > 0 and len(a & b) / union >= NEAR_DUPLICATE


def _near_duplicate(canonical: str, others: list[str]) -> bool:
    shingles = _shingles(canonical)
    return any(_similar(shingles, _shingles(other)) for other in others)


def relevant_rows(
    source: Sequence[str],
    pool: Sequence[str],
    limit: int,
    *,
    source_keys: Sequence[str] | None = None,
    pool_keys: Sequence[str] | None = None,
) -> list[Ranked]:
    """Up to `limit` pool rows relevant to the source rows, best first (module docstring).

    `source_keys` and `pool_keys` (one per row, e.g. the prompts) are compared too when given: a pool row
    whose key is a near-duplicate of a finding source row's key is left out as well, even when the rest of
    its text differs (the same question with another answer).

    Raises:
        ConfigError: this Python's SQLite has no FTS5.
    """
    if limit <= 0 or not source or not pool:
        return []
    conn = sqlite3.connect(":memory:")
    try:
        require_fts5(conn)
        conn.execute(
            "CREATE VIRTUAL TABLE pool USING fts5(text, tokenize = 'porter unicode61 remove_diacritics 2')"
        )
        conn.executemany("INSERT INTO pool(rowid, text) VALUES (?, ?)", ((i, t) for i, t in enumerate(pool)))
        step = max(1, len(source) // MAX_QUERIES)
        scores: dict[int, float] = defaultdict(float)
        finders: dict[int, list[int]] = defaultdict(list)
        for position in range(0, len(source), step)[:MAX_QUERIES]:
            query = build_query(source[position])
            if not query:
                continue
            found = conn.execute(
                "SELECT rowid, -bm25(pool) FROM pool WHERE pool MATCH ? ORDER BY bm25(pool) LIMIT ?",
                (query, TOP_K),
            )
            for rowid, score in found:
                scores[rowid] += score
                finders[rowid].append(position)
    finally:
        conn.close()
    source_canonical = {canonical_text(text) for text in source}
    source_key_set = {canonical_text(text) for text in source_keys} if source_keys is not None else set()
    kept: list[Ranked] = []
    seen: set[str] = set()
    for index in sorted(scores, key=lambda i: (-scores[i], i)):
        canonical = canonical_text(pool[index])
        if not canonical or canonical in source_canonical or canonical in seen:
            continue
        if _near_duplicate(canonical, [canonical_text(source[p]) for p in finders[index]]):
            continue
        if source_keys is not None and pool_keys is not None:
            key = canonical_text(pool_keys[index])
            if key and (
                key in source_key_set
                or _near_duplicate(key, [canonical_text(source_keys[p]) for p in finders[index]])
            ):
                continue
        kept.append(Ranked(index, scores[index]))
        seen.add(canonical)
        if len(kept) == limit:
            break
    return kept


def search_rows(query: str, pool: Sequence[str], limit: int) -> list[Ranked]:
    """Up to `limit` pool rows that match the words of `query`, best BM25 score first.

    Raises:
        ConfigError: this Python's SQLite has no FTS5.
    """
    match = build_query(query)
    if limit <= 0 or not pool or not match:
        return []
    conn = sqlite3.connect(":memory:")
    try:
        require_fts5(conn)
        conn.execute(
            "CREATE VIRTUAL TABLE pool USING fts5(text, tokenize = 'porter unicode61 remove_diacritics 2')"
        )
        conn.executemany("INSERT INTO pool(rowid, text) VALUES (?, ?)", ((i, t) for i, t in enumerate(pool)))
        found = conn.execute(
            "SELECT rowid, -bm25(pool) FROM pool WHERE pool MATCH ? ORDER BY bm25(pool) LIMIT ?",
            (match, limit),
        )
        return [Ranked(rowid, score) for rowid, score in found]
    finally:
        conn.close()
