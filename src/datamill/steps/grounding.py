"""Grounding (``hallucination_mitigation``): find supporting passages before the completion is written.

The step runs right before completion generation. It searches with the row's request (see `query_for`)
followed by the values of its context lines (``name: value`` minus the name, which
would only add noise words), keeps the best `DEFAULT_TOP_K` distinct passages that count as relevant (below),
and numbers them from 1 so the completion can cite them as [1], [2]:

- ``_passages`` (internal): ``[{"n": 1, "source": ..., "text": ...}, ...]``, what the completion prompt shows;
- ``grounding_sources`` (public): ``[{"n": 1, "source": ..., "snippet": ...}, ...]``, the first
  `SNIPPET_CHARS` characters of each passage, so a reader can check a citation;
- ``grounded`` (public): whether any passage was found. A row with none gets empty lists and is completed
  ungrounded; `GroundingCounts` tallies both kinds for the run's summary.

Which passages count. A passage is kept when its score is above ``min_score`` (backend units;
`DEFAULT_MIN_SCORE` 0: any match) and, where the backend says how much of the query it covers
(`Passage.relevance`), that share is at least ``min_relevance`` (`DEFAULT_MIN_RELEVANCE`). BM25 alone cannot
make that call: its magnitude depends on the corpus size, and in a small corpus a word found in most passages
scores about 0, so an unrelated question that shares one common word ("How do I plan a wedding?" against a
knowledge base that says "plan" everywhere) would get an irrelevant passage as its only source. The local
index therefore gives each hit the share of the query's word weight that the passage contains, from 0 to 1,
where a word weighs 1 + ln((N + 1) / (df + 0.5)) (N passages, df of them holding the word: rare words weigh
more, and a word the corpus lacks weighs most). Measured on a small support knowledge base: for nine
questions it answers, the best passage covered 0.32–1.0 of the query; for three unrelated questions, the
passages found through an incidental word ("reset", "home", "plan") covered 0.14–0.18. 0.25 keeps the first
and drops the second. A long question whose answer
shares few of its words can lose a passage; lower the minimum (``--grounding-min-relevance``) for such data.
A passage from a backend that reports no relevance (a search API that leaves ``relevance`` out) is measured
here, with `word_coverage`: the share of the query's search words the passage contains, unweighted and
unstemmed, so the same floor applies on every path. A semantic search API whose passages need not share the
query's words (synonyms, other languages) should return its own ``relevance``.

The step makes no model call. A search that fails is not hidden: a `ModelError` from a search API rejects the
row with its reason, and a `ConfigError` (a misconfigured endpoint) stops the run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import pyarrow as pa

from datamill.core.errors import ConfigError
from datamill.steps.base import Row, RowStep, StepContext
from datamill.steps.metadata_injection import CONTEXT_INJECTED
from datamill.text.fulltext import LocalFullTextIndex, word_coverage

if TYPE_CHECKING:
    from datamill.llm.types import ChatRequest
    from datamill.text.search import Passage, Search

#: Passages kept per row: enough to cover a multi-part question, few enough for a small model's prompt.
DEFAULT_TOP_K = 3
#: A passage must score above this (backend units) to be kept; see the module docstring.
DEFAULT_MIN_SCORE = 0.0
#: A passage whose backend reports coverage must cover at least this share of the query (module docstring).
DEFAULT_MIN_RELEVANCE = 0.25
#: Characters of a passage shown in the public ``grounding_sources`` column.
SNIPPET_CHARS = 240
#: Arrow type of ``grounding_sources``. A batch whose rows all found nothing holds only empty lists, which
#: Arrow infers as ``list<null>``; writers that fix the schema at the first batch need this type given.
GROUNDING_SOURCES_TYPE = pa.list_(
    pa.struct([("n", pa.int64()), ("source", pa.string()), ("snippet", pa.string())])
)


@dataclass
class GroundingCounts:
    """Rows grounded in at least one passage, and rows completed without any."""

    grounded: int = 0
    ungrounded: int = 0


class Ground(RowStep):
    """Retrieves passages for each row and writes ``_passages``, ``grounding_sources`` and ``grounded``.

    Args:
        search: where passages come from (the local index, a search API, a fake).
        top_k: most passages kept per row.
        min_score: a passage must score above this to be kept.
        min_relevance: a passage that reports its coverage of the query must cover at least this share.
    """

    name: ClassVar[str] = "grounding"
    input_columns = ("enhanced_prompt", "original_prompt", "_context", CONTEXT_INJECTED)
    output_columns = ("_passages", "grounding_sources", "grounded")

    def __init__(
        self,
        search: Search,
        *,
        top_k: int = DEFAULT_TOP_K,
        min_score: float = DEFAULT_MIN_SCORE,
        min_relevance: float = DEFAULT_MIN_RELEVANCE,
    ) -> None:
        if top_k < 1:
            raise ConfigError(f"grounding: top_k must be at least 1, got {top_k}")
        self.search = search
        # A local index is a local query: the estimate runs it, so later steps are quoted with the passages.
        # A search API would be paid for a quote, so it is left out.
        self.estimate_on_sample = isinstance(search, LocalFullTextIndex)
        self.top_k = top_k
        self.min_score = min_score
        self.min_relevance = min_relevance
        self.counts = GroundingCounts()

    async def process_row(self, row: Row, ctx: StepContext) -> None:
        query = query_for(row)
        # Ask for twice as many as kept: copies of one document must not crowd out the others.
        found = await self.search.search(query, self.top_k * 2) if query else []
        passages = self.pick(found, query)
        row["_passages"] = [{"n": n, "source": p.source, "text": p.text} for n, p in enumerate(passages, 1)]
        row["grounding_sources"] = [
            {"n": n, "source": p.source, "snippet": snippet(p.text)} for n, p in enumerate(passages, 1)
        ]
        row["grounded"] = bool(passages)
        if passages:
            self.counts.grounded += 1
        else:
            self.counts.ungrounded += 1

    def pick(self, found: list[Passage], query: str = "") -> list[Passage]:
        """The best ``top_k`` relevant passages (see the module docstring), best first, without repeats."""
        kept: list[Passage] = []
        seen: set[str] = set()
        for passage in sorted(found, key=lambda p: p.score, reverse=True):
            key = " ".join(passage.text.split())
            relevance = passage.relevance
            if relevance is None and query:
                relevance = word_coverage(query, passage.text)
            relevant = relevance is None or relevance >= self.min_relevance
            if passage.score > self.min_score and relevant and key and key not in seen:
                seen.add(key)
                kept.append(passage)
        return kept[: self.top_k]

    def requests_for(self, row: Row) -> list[ChatRequest]:
        """No model requests: grounding only searches."""
        return []


def query_for(row: Row) -> str:
    """The search text for a row: its request, then the values of its context lines.

    The request is the rephrased prompt (``enhanced_prompt``: "how reset pw" becomes words a document
    uses), except after metadata injection (``_context_injected``): then the enhanced prompt also holds the
    run's constraints ("Answer in about 30 to 112 words", the style), words no document is about that would
    dilute the query, and the row's own ``original_prompt`` is searched instead.
    """
    enhanced = "" if row.get(CONTEXT_INJECTED) else _text(row.get("enhanced_prompt"))
    prompt = enhanced or _text(row.get("original_prompt")) or _text(row.get("enhanced_prompt"))
    values = [line.split(": ", 1)[-1] for line in _text(row.get("_context")).splitlines()]
    return "\n".join(part for part in (prompt, *values) if part.strip()).strip()


def snippet(text: str, limit: int = SNIPPET_CHARS) -> str:
    """The start of ``text`` on one line, cut at a word boundary with an ellipsis past ``limit``."""
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    cut = flat.rfind(" ", 0, limit)
    return flat[: cut if cut > 0 else limit].rstrip(" ,;:") + "…"


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""
