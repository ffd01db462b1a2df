"""Rephrase meaning check: is the rewritten prompt still about what the original asked?

Runs right after the prompt rephrase step. It embeds the text the rephrase was made from
(``_rephrase_source``: after metadata injection that is the prompt with the row's context and the run's
constraints folded in; else ``original_prompt``) and the rewrite (``enhanced_prompt``), and writes their
cosine similarity to ``rephrase_similarity``. Comparing with the bare original prompt instead would score a
faithful rewrite that weaves in the context as a drift. Below `REPHRASE_MIN_SIMILARITY` the rephrase is
discarded: ``enhanced_prompt`` goes back to the text it was made from, context and constraints included, and
``rephrase_reverted`` is True (else False). The row itself always stays: losing a row over a bad rephrase
would be worse than keeping its original wording.

Why 0.7. Measured with the bundled all-MiniLM-L6-v2 on ten good rephrases of terse prompts ("fix my wifi" →
"How can I fix my Wi-Fi connection?") and twelve typical failures of small models. Good rephrases scored
0.77–0.98. Failures scored: answers instead of rephrases 0.17–0.58 ("recommend book like dune" → "Hyperion by
Dan Simmons." 0.25), a changed subject 0.62 (laptop → phone), refusals and meta replies ("Sure! Here is a
rewritten request:") about 0. At 0.7 every good rephrase passes and 10 of the 12 failures are reverted; the
two that pass are answers that restate the question ("What is the capital of France?" → "The capital of
France is Paris." 0.88), which no similarity threshold can tell from a rephrase.

Across languages. MiniLM is English-only, so a run with the embeddings extra checks with the multilingual
model instead (`datamill.text.multilingual`, multilingual-e5-small), whose similarities sit higher and closer
together, with its own cut-off, `MULTILINGUAL_MIN_SIMILARITY` 0.89. Measured on sixteen pairs in English,
French, Spanish and German: eight good rephrases of terse prompts scored 0.91–0.98; answers instead of
rephrases, a refusal, a meta reply and a changed subject scored 0.78–0.87, and the answer that restates
the question ("capital of france" → "The capital of France is Paris.") 0.95, which again no threshold can
tell from a rephrase. MiniLM and 0.7 remain for installs without the multilingual model.

Rows run concurrently; their embedding requests are gathered into batches by `BatchingEmbedder` and run in
a worker thread. A rephrase identical to the original (after trimming) scores 1.0 without the model; a row
without ``enhanced_prompt`` gets ``rephrase_similarity`` None and is left as it is.
"""

from __future__ import annotations

from typing import ClassVar

from datamill.llm.types import ChatRequest
from datamill.steps.base import Row, RowStep, StepContext
from datamill.steps.rephrase import REPHRASE_SOURCE
from datamill.text.embeddings import BatchingEmbedder, Embedder

#: Cosine similarity between original and rephrased prompt below which the rephrase is discarded (MiniLM).
REPHRASE_MIN_SIMILARITY = 0.7
#: The same cut-off on multilingual-e5-small's scale (module docstring).
MULTILINGUAL_MIN_SIMILARITY = 0.89


class RephraseMeaningCheck(RowStep):
    """Scores each rephrase against its original and reverts the ones that drifted.

    Args:
        embedder: turns texts into normalised vectors (the bundled MiniLM in production).
        min_similarity: cosine similarity below which the original prompt is restored.
        max_batch: most texts embedded in one call.
    """

    name: ClassVar[str] = "rephrase_check"
    input_columns = ("original_prompt", "enhanced_prompt", REPHRASE_SOURCE)
    output_columns = ("enhanced_prompt", "rephrase_similarity", "rephrase_reverted")

    def __init__(
        self, embedder: Embedder, *, min_similarity: float = REPHRASE_MIN_SIMILARITY, max_batch: int = 64
    ) -> None:
        self.embedder = BatchingEmbedder(embedder, max_batch=max_batch)
        self.min_similarity = min_similarity

    def requests_for(self, row: Row) -> list[ChatRequest]:
        """No model calls: the check uses the embedding model only."""
        return []

    async def process_row(self, row: Row, ctx: StepContext) -> None:
        source = row.get(REPHRASE_SOURCE)
        original = _as_text(source if source is not None else row.get("original_prompt"))
        enhanced = row.get("enhanced_prompt")
        row["rephrase_reverted"] = False
        if enhanced is None:
            row["rephrase_similarity"] = None
            return
        enhanced = _as_text(enhanced)
        if enhanced.strip() == original.strip():
            similarity = 1.0
        else:
            vectors = await self.embedder.embed([original, enhanced])
            similarity = float(vectors[0] @ vectors[1])
        row["rephrase_similarity"] = round(similarity, 4)
        if similarity < self.min_similarity:
            row["enhanced_prompt"] = original
            row["rephrase_reverted"] = True


def _as_text(value: object) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else str(value)
