"""Grounding (``hallucination_mitigation``): find supporting passages before the completion is written.

The step runs right before completion generation. It searches with the row's prompt (``enhanced_prompt``,
else ``original_prompt``) followed by the values of its context lines (``name: value`` minus the name, which
would only add noise words), keeps the best `DEFAULT_TOP_K` distinct passages whose score is above
``min_score``, and numbers them from 1 so the completion can cite them as [1], [2]:

- ``_passages`` (internal): ``[{"n": 1, "source": ..., "text": ...}, ...]``, what the completion prompt shows;
- ``grounding_sources`` (public): ``[{"n": 1, "source": ..., "snippet": ...}, ...]``, the first
  `SNIPPET_CHARS` characters of each passage, so a reader can check a citation;
- ``grounded`` (public): whether any passage was found. A row with none gets empty lists and is completed
  ungrounded; `GroundingCounts` tallies both kinds for the run's summary.

``min_score`` is in the search backend's units. `DEFAULT_MIN_SCORE` (0) keeps any passage that matched at all:
the local index's BM25 score is positive exactly when a passage shares a word with the query (stopwords are
not searched), and BM25 magnitudes depend on the corpus size, so no fixed positive threshold suits every
corpus. The step makes no model call. A search that fails is not hidden: a `ModelError` from a search API
rejects the row with its reason, and a `ConfigError` (a misconfigured endpoint) stops the run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import pyarrow as pa

from datamill.core.errors import ConfigError
from datamill.steps.base import Row, RowStep, StepContext

if TYPE_CHECKING:
    from datamill.llm.types import ChatRequest
    from datamill.text.search import Passage, Search

#: Passages kept per row: enough to cover a multi-part question, few enough for a small model's prompt.
DEFAULT_TOP_K = 3
#: A passage must score above this (backend units) to be kept; see the module docstring.
DEFAULT_MIN_SCORE = 0.0
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
    """

    name: ClassVar[str] = "grounding"
    input_columns = ("enhanced_prompt", "original_prompt", "_context")
    output_columns = ("_passages", "grounding_sources", "grounded")

    def __init__(
        self, search: Search, *, top_k: int = DEFAULT_TOP_K, min_score: float = DEFAULT_MIN_SCORE
    ) -> None:
        if top_k < 1:
            raise ConfigError(f"grounding: top_k must be at least 1, got {top_k}")
        self.search = search
        self.top_k = top_k
        self.min_score = min_score
        self.counts = GroundingCounts()

    async def process_row(self, row: Row, ctx: StepContext) -> None:
        query = query_for(row)
        # Ask for twice as many as kept: copies of one document must not crowd out the others.
        found = await self.search.search(query, self.top_k * 2) if query else []
        passages = self.pick(found)
        row["_passages"] = [{"n": n, "source": p.source, "text": p.text} for n, p in enumerate(passages, 1)]
        row["grounding_sources"] = [
            {"n": n, "source": p.source, "snippet": snippet(p.text)} for n, p in enumerate(passages, 1)
        ]
        row["grounded"] = bool(passages)
        if passages:
            self.counts.grounded += 1
        else:
            self.counts.ungrounded += 1

    def pick(self, found: list[Passage]) -> list[Passage]:
        """The best ``top_k`` passages above ``min_score``, best first, without repeated texts."""
        kept: list[Passage] = []
        seen: set[str] = set()
        for passage in sorted(found, key=lambda p: p.score, reverse=True):
            key = " ".join(passage.text.split())
            if passage.score > self.min_score and key and key not in seen:
                seen.add(key)
                kept.append(passage)
        return kept[: self.top_k]

    def requests_for(self, row: Row) -> list[ChatRequest]:
        """No model requests: grounding only searches."""
        return []


def query_for(row: Row) -> str:
    """The search text for a row: its prompt, then the values of its context lines."""
    prompt = _text(row.get("enhanced_prompt")) or _text(row.get("original_prompt"))
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
