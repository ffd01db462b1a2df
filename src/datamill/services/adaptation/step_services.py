"""The non-LLM services a run needs (embedder, language detector, search index), built only when used."""

from __future__ import annotations

import hashlib
from pathlib import Path

from datamill.core.adapt_request import AdaptRequest
from datamill.core.errors import ConfigError, ValidationError
from datamill.core.run_options import RunOptions
from datamill.pipelines.plan import PlanServices
from datamill.text.embeddings import MiniLMEmbedder, minilm_model_path
from datamill.text.fulltext import LocalFullTextIndex
from datamill.text.langid import FastLangDetector


async def build_services(
    request: AdaptRequest, options: RunOptions, data_dir: Path
) -> tuple[PlanServices, list[str]]:
    """The services for ``request``, and notes on what was left out (e.g. no embeddings installed)."""
    notes: list[str] = []
    services = PlanServices()
    recipes = request.recipe_specification.recipes
    wants_check = recipes.prompt_rephrase and options.rephrase_check
    wants_semantic = recipes.deduplication and options.semantic_dedup
    if wants_check or wants_semantic:
        try:
            minilm_model_path()
            services.embedder = MiniLMEmbedder()
        except ConfigError:
            if wants_semantic:
                raise
            notes.append("rephrase meaning check skipped: the embeddings extra is not installed")
    if request.language_expansion is not None:
        services.detector = FastLangDetector()
    if request.brand_controls.hallucination_mitigation:
        if not options.grounding_docs:
            raise ValidationError.of(
                "brand_controls.hallucination_mitigation",
                "grounding needs documents to search: give grounding_docs (--grounding-docs DIR)",
            )
        index = Path(options.grounding_index) if options.grounding_index else None
        services.search = await LocalFullTextIndex.abuild(
            [Path(p) for p in options.grounding_docs],
            index or _index_path(options.grounding_docs, data_dir),
            text_column=options.grounding_text_column,
            source_column=options.grounding_source_column,
        )
    return services, notes


def _index_path(docs: tuple[str, ...], data_dir: Path) -> Path:
    """One index file per set of document paths, under the data directory."""
    key = hashlib.sha256("\n".join(sorted(str(Path(p).resolve()) for p in docs)).encode()).hexdigest()
    return data_dir / "grounding" / f"{key[:24]}.sqlite3"


def services_fingerprint(services: PlanServices) -> str | None:
    """What about the services changes results: the grounding index's documents."""
    search = services.search
    return getattr(search, "fingerprint", None)
