"""The ``file_search`` tool of the responses endpoint: rows of the tenant's datasets that match the question.

When a request lists ``{"type": "file_search", "dataset_ids": [...]}`` in ``tools`` (and ``tool_choice`` is
not ``none``, nor ``max_tool_calls`` 0), the server searches before it calls the model: the query is the last
user message, the rows searched are those of the named datasets (default: the tenant's datasets that have
been read, newest first, up to `MAX_DATASETS`; `MAX_ROWS` rows in all), each row's text is its string
columns joined, and the `TOP_K` best by full-text relevance (SQLite FTS5, BM25) are given to the model in
the system message, each with its dataset and row number. A row counts only when it holds at least
`MIN_RELEVANCE` of the question's search words (`datamill.text.fulltext.word_coverage`, the floor grounding
applies to passages): BM25 ranks whatever shares a word, and a row found through one incidental word is no
support for an answer. The answer's ``output`` starts with a
``file_search_call`` item listing the query and these results. A dataset id the tenant does not have answers
404, as it does everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pyarrow as pa
from sqlalchemy import select

from datamill.services.datasets.catalog import DatasetService, DatasetView
from datamill.services.datasets.output import DatasetOutputs
from datamill.services.datasets.retrieval import search_rows
from datamill.steps.grounding import DEFAULT_MIN_RELEVANCE
from datamill.store import Dataset, Store
from datamill.text.fulltext import word_coverage

MAX_DATASETS = 50
MAX_ROWS = 100_000
TOP_K = 5
#: Least share of the question's search words a row must hold to be given to the model (grounding's floor).
MIN_RELEVANCE = DEFAULT_MIN_RELEVANCE
READY = ("succeeded", "awaiting_input")
#: Characters of a row's text given to the model and shown in the results.
MAX_TEXT = 2_000


@dataclass(frozen=True)
class SearchHit:
    dataset_id: str
    dataset_name: str
    row: int
    score: float
    text: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "file_id": self.dataset_id,
            "filename": self.dataset_name,
            "row": self.row,
            "score": round(self.score, 6),
            "text": self.text,
        }


class FileSearch:
    """Searches a tenant's datasets; see the module docstring."""

    def __init__(self, store: Store, outputs: DatasetOutputs) -> None:
        self._store, self._outputs = store, outputs
        self._datasets = DatasetService(store)

    def views(self, tenant_id: str, dataset_ids: list[str] | None) -> list[DatasetView]:
        """The datasets a search reads.

        Raises:
            NotFoundError: an id that is not one of the tenant's datasets (404, as everywhere).
        """
        if dataset_ids is not None:
            views = [self._datasets.get(tenant_id, dataset_id) for dataset_id in dataset_ids]
            return [v for v in views if v.row_count is not None]
        with self._store.session() as session:
            rows = session.scalars(
                select(Dataset)
                .where(
                    Dataset.tenant_id == tenant_id,
                    Dataset.deleted_at.is_(None),
                    Dataset.status.in_(READY),
                    Dataset.row_count.is_not(None),
                )
                .order_by(Dataset.created_at.desc(), Dataset.id)
                .limit(MAX_DATASETS)
            ).all()
            return [DatasetView.of(row) for row in rows]

    def search(self, views: list[DatasetView], query: str) -> list[SearchHit]:
        """The `TOP_K` rows of `views` that best match `query`."""
        texts: list[str] = []
        where: list[tuple[DatasetView, int]] = []
        for view in views:
            number = 0
            for table in self._outputs.own_rows(view).tables():
                columns = [
                    f.name
                    for f in table.schema
                    if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)
                ]
                for row in table.select(columns).to_pylist():
                    texts.append(" ".join(str(v) for v in row.values() if v))
                    where.append((view, number))
                    number += 1
                    if len(texts) >= MAX_ROWS:
                        break
        hits = []
        for ranked in search_rows(query, texts, TOP_K):
            if word_coverage(query, texts[ranked.index]) < MIN_RELEVANCE:
                continue
            view, number = where[ranked.index]
            hits.append(SearchHit(view.id, view.name, number, ranked.score, texts[ranked.index][:MAX_TEXT]))
        return hits


def grounding_text(hits: list[SearchHit]) -> str:
    """The system-message block that gives the model the rows found."""
    if not hits:
        return "A search of the user's datasets found nothing relevant to the question."
    lines = ["Rows from the user's datasets that match the question; use them when they help answer it:"]
    lines += [f"[{i}] ({hit.dataset_name}, row {hit.row}) {hit.text}" for i, hit in enumerate(hits, 1)]
    return "\n".join(lines)
