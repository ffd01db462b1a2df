"""The non-LLM services a run needs (embedder, language detector, search index), built only when used."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

from datamill.core.adapt_request import AdaptRequest
from datamill.core.errors import ConfigError, ValidationError
from datamill.core.run_options import RunOptions
from datamill.pipelines.plan import PlanServices
from datamill.services.adaptation.grounding_sources import local_documents
from datamill.text.embeddings import MiniLMEmbedder, minilm_model_path
from datamill.text.fetch_policy import FetchPolicy
from datamill.text.fulltext import LocalFullTextIndex
from datamill.text.langid import FastLangDetector
from datamill.text.multilingual import E5Embedder, e5_available
from datamill.text.search import HttpSearch

#: What a run that asks for grounding with nothing to search is told.
NO_GROUNDING_SOURCE = (
    "grounding needs something to search: give grounding_docs (--grounding-docs DIR); on a server, the "
    "operator configures DATAMILL_GROUNDING_DOCS or DATAMILL_GROUNDING_SEARCH_URL, and this one has neither"
)


async def build_services(
    request: AdaptRequest,
    options: RunOptions,
    data_dir: Path,
    *,
    fetch_policy: FetchPolicy | None = None,
    search_key: str | None = None,
) -> tuple[PlanServices, list[str]]:
    """The services for ``request``, and notes on what was left out (e.g. no embeddings installed).

    Grounding asks the search API of ``options.grounding_search_url`` when it is set (through the safe
    fetcher under `fetch_policy`, sending `search_key` as a bearer key), else the local index of
    ``options.grounding_docs`` (fsspec URLs among them mirrored locally first, `grounding_sources`).
    """
    notes: list[str] = []
    services = PlanServices()
    recipes = request.recipe_specification.recipes
    wants_check = recipes.prompt_rephrase and options.rephrase_check
    wants_semantic = recipes.deduplication and options.semantic_dedup
    if (wants_check or request.language_expansion is not None) and e5_available():
        services.multilingual = E5Embedder()  # the meaning checks of rephrases and translations
    if wants_semantic or (wants_check and services.multilingual is None):
        try:
            minilm_model_path()
            services.embedder = MiniLMEmbedder()
        except ConfigError:
            if wants_semantic:
                raise
            notes.append("rephrase meaning check skipped: the embeddings extra is not installed")
    if request.language_expansion is not None:
        services.detector = FastLangDetector()
        if services.multilingual is None:
            notes.append("translation meaning check skipped: the embeddings extra is not installed")
    if request.brand_controls.hallucination_mitigation and options.grounding_search_url:
        services.search = HttpSearch(options.grounding_search_url, policy=fetch_policy, api_key=search_key)
    elif request.brand_controls.hallucination_mitigation:
        if not options.grounding_docs:
            raise ValidationError.of("brand_controls.hallucination_mitigation", NO_GROUNDING_SOURCE)
        index = Path(options.grounding_index) if options.grounding_index else None
        docs = await asyncio.to_thread(local_documents, options.grounding_docs, data_dir)
        services.search = await LocalFullTextIndex.abuild(
            [Path(p) for p in docs],
            index or _index_path(docs, data_dir),
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


async def close_services(services: PlanServices) -> None:
    """Release what the services hold open (the search API's connections)."""
    if isinstance(services.search, HttpSearch):
        await services.search.aclose()
