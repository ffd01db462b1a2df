"""Which steps an adaptation runs, in the documented order, built from a validated AdaptRequest.

Batch steps (file order): column mapping → ``max_rows`` sampling → exact dedup → near-duplicate dedup
(MinHash-LSH) → semantic dedup (optional).
Row steps (concurrent): image fetch (an image column's URLs, through the safe fetcher) → language expansion →
prompt metadata injection → prompt rephrase → rephrase meaning check → grounding
(``hallucination_mitigation``) → completion (or chat turns) → citation check (with grounding) → reasoning
traces → preference pairs (``training_type=preference_pairs``) → safety review (``safety_categories``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from datamill.core.errors import ValidationError
from datamill.core.recipes import TrainingType
from datamill.core.run_options import RunOptions
from datamill.steps.base import BatchStep, RowStep
from datamill.steps.chat import ChatCompletion
from datamill.steps.citations import CitationCheck
from datamill.steps.completion import GenerateCompletion
from datamill.steps.dedup import ExactDedup
from datamill.steps.expansion import LanguageExpansionStep
from datamill.steps.grounding import Ground
from datamill.steps.image_fetch import FetchImages
from datamill.steps.mapping import MapColumns
from datamill.steps.metadata_injection import MetadataInjection
from datamill.steps.near_dedup import NearDedup
from datamill.steps.preference import PreferencePairs
from datamill.steps.reasoning import ReasoningTraces
from datamill.steps.rephrase import Rephrase
from datamill.steps.rephrase_check import MULTILINGUAL_MIN_SIMILARITY, RephraseMeaningCheck
from datamill.steps.safety import SafetyReview
from datamill.steps.sample import SampleRows, choose_rows
from datamill.steps.semantic_dedup import SemanticDedup

if TYPE_CHECKING:
    from datamill.core.adapt_request import AdaptRequest
    from datamill.llm.gateway import ModelHandle
    from datamill.text.embeddings import Embedder
    from datamill.text.fetch_policy import FetchPolicy
    from datamill.text.langid import LanguageDetector
    from datamill.text.search import Search


@dataclass
class PlanServices:
    """The non-LLM models and services some steps need; None where the run does not use them."""

    embedder: Embedder | None = None
    detector: LanguageDetector | None = None
    search: Search | None = None
    fetch_policy: FetchPolicy | None = None
    #: A multilingual embedder for the translation meaning check (`datamill.text.multilingual`).
    multilingual: Embedder | None = None


@dataclass
class AdaptPlan:
    """The steps of one run: batch steps in file order, then per-row model steps."""

    batch_steps: list[BatchStep]
    row_steps: list[RowStep]
    rows_total: int
    rows_selected: int
    notes: list[str] = field(default_factory=list)

    @property
    def step_names(self) -> list[str]:
        return [s.name for s in (*self.batch_steps, *self.row_steps)]


def plan_adaptation(
    request: AdaptRequest,
    model: ModelHandle,
    *,
    total_rows: int,
    options: RunOptions | None = None,
    services: PlanServices | None = None,
    judge: ModelHandle | None = None,
    base_dir: Path | None = None,
    local_image_files: bool = True,
) -> AdaptPlan:
    """Build the steps for ``request``.

    ``base_dir`` is where relative image file paths are read from; with ``local_image_files`` False (server
    runs) an image cell holding a file path rejects its row instead of being read.

    Raises:
        ValidationError: a request this run cannot serve (no mapping, images on a model without vision,
            grounding without a search index).
    """
    options = options or RunOptions()
    services = services or PlanServices()
    mapping = request.column_mapping
    if mapping is None:
        raise ValidationError.of("column_mapping", "a column mapping is required to run an adaptation")
    if mapping.image is not None and not model.route.vision:
        raise ValidationError.of(
            "column_mapping.image",
            f"model {model.name!r} cannot read images; choose a vision-capable model "
            "(a route with vision: true)",
        )
    mapper = MapColumns(mapping, base_dir=base_dir, local_files=local_image_files)
    batch, selected = _batch_steps(request, options, services, total_rows, mapper)
    rows = _row_steps(request, model, judge or model, options, services)
    return AdaptPlan(batch, rows, total_rows, selected)


def _batch_steps(
    request: AdaptRequest,
    options: RunOptions,
    services: PlanServices,
    total_rows: int,
    mapper: MapColumns,
) -> tuple[list[BatchStep], int]:
    mapping = request.column_mapping
    assert mapping is not None
    steps: list[BatchStep] = [mapper]
    selected = total_rows
    max_rows = request.job.max_rows
    if max_rows is not None and max_rows < total_rows:
        steps.append(SampleRows(choose_rows(total_rows, max_rows, options.seed)))
        selected = max_rows
    if request.recipe_specification.recipes.deduplication:
        # Duplicates are judged on what the model is asked, not on the old answers: two rows asking the
        # same thing would teach two answers to one question. A chat is judged as a whole.
        keys = ("_chat_text",) if mapping.chat is not None else ("original_prompt", "_context")
        if mapping.image is not None:
            # The same question about another image is another example: exact dedup keys on the image too,
            # and the text-similarity dedups, which cannot see images, are left out.
            steps.append(ExactDedup((*keys, "_image_key")))
            return steps, selected
        steps.append(ExactDedup(keys))
        if options.near_dedup:
            steps.append(NearDedup(keys))
        if options.semantic_dedup:
            if services.embedder is None:
                raise ValidationError.of("semantic_dedup", "semantic dedup needs the embedding model")
            steps.append(SemanticDedup(keys, services.embedder))
    return steps, selected


def _row_steps(
    request: AdaptRequest,
    model: ModelHandle,
    judge: ModelHandle,
    options: RunOptions,
    services: PlanServices,
) -> list[RowStep]:
    mapping = request.column_mapping
    assert mapping is not None
    recipes = request.recipe_specification.recipes
    brand = request.brand_controls
    token_range = brand.length.token_range if brand.length is not None else None
    chat = mapping.chat is not None
    steps: list[RowStep] = [FetchImages(services.fetch_policy)] if mapping.image is not None else []
    if request.language_expansion is not None:
        if services.detector is None:
            raise ValidationError.of("language_expansion", "language expansion needs a language detector")
        steps.append(
            LanguageExpansionStep(
                model,
                request.language_expansion,
                services.detector,
                seed=options.seed,
                meaning=services.multilingual,
                detail_judge=judge if options.translation_judge else None,
            )
        )
    has_constraints = bool(mapping.context) or brand.length is not None or bool(brand.blueprint)
    if recipes.prompt_metadata_injection and not chat and has_constraints:
        steps.append(MetadataInjection(token_range=token_range, blueprint=brand.blueprint))
    if recipes.prompt_rephrase and not chat:
        steps.append(Rephrase(model))
        if options.rephrase_check and services.multilingual is not None:
            steps.append(
                RephraseMeaningCheck(services.multilingual, min_similarity=MULTILINGUAL_MIN_SIMILARITY)
            )
        elif options.rephrase_check and services.embedder is not None:
            steps.append(RephraseMeaningCheck(services.embedder))
    if brand.hallucination_mitigation:
        if services.search is None:
            raise ValidationError.of(
                "brand_controls.hallucination_mitigation",
                "grounding needs documents to search: give grounding_docs (--grounding-docs DIR)",
            )
        steps.append(
            Ground(
                services.search,
                top_k=options.grounding_top_k,
                min_relevance=options.grounding_min_relevance,
            )
        )
    if chat:
        steps.append(ChatCompletion(model, blueprint=brand.blueprint, token_range=token_range))
    else:
        # With grounding, the answer rests on the sources found (or, without any, on the request alone): the
        # original answer is ungrounded and is not shown as a draft to improve on.
        steps.append(
            GenerateCompletion(
                model,
                blueprint=brand.blueprint,
                token_range=token_range,
                show_draft=not brand.hallucination_mitigation,
            )
        )
    if brand.hallucination_mitigation and not chat:
        steps.append(CitationCheck(judge))
    if recipes.reasoning_traces:
        steps.append(ReasoningTraces(model, judge=judge))
    if request.training_type == TrainingType.PREFERENCE_PAIRS:
        steps.append(
            PreferencePairs(
                model,
                judge=judge,
                blueprint=brand.blueprint,
                token_range=token_range,
                seed=options.seed,
                mode=options.preference_mode,
                candidates=options.preference_candidates,
                candidate_models=[model.gateway.model(name) for name in options.preference_models],
                min_margin=options.preference_min_margin,
            )
        )
    if brand.safety_categories:
        steps.append(
            SafetyReview(
                judge, categories=brand.safety_categories, remove_violations=options.remove_unsafe_rows
            )
        )
    return steps
