"""Schemas of the run routes of the Adaption API (Adaption API), as pydantic models.

Request models only document the body in the OpenAPI description: every field is loosely typed and unknown
keys are kept, because `datamill.core` validates the body (`parse_adapt_request`, `parse_translate_request`)
and names each bad field the same way for every entry point. ``model_dump(exclude_unset=True)`` gives the
body back as sent, so an explicit ``"language_expansion": null`` stays distinguishable from leaving it out.

The run response mixes casings on the wire (``run_id`` beside ``estimatedMinutes``); ``creditMultiplier``
is sent only for multimodal runs, so these responses are built from the keys the service returns.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Body(BaseModel):
    model_config = ConfigDict(extra="allow")


class RunCreate(_Body):
    column_mapping: Any = Field(None, description="prompt/completion/chat/context/universal_prompt/image.")
    recipe_specification: Any = Field(None, description="{version?, recipes: {deduplication, ...}}.")
    job_specification: Any = Field(None, description="{max_rows?, idempotency_key?}.")
    brand_controls: Any = Field(None, description="{length?, safety_categories?, blueprint?, ...}.")
    training_type: Any = Field(None, description="instruction_dataset (default) or preference_pairs.")
    estimate: Any = Field(None, description="true: quote only, start nothing.")
    language_expansion: Any = Field(None, description="Left out: keep; null: clear; object: replace.")
    custom_steps: Any = Field(
        None,
        description="datamill: your own model steps, [{name, template, output, schema?, after?, ...}].",
    )
    prompt_templates: Any = Field(
        None, description="datamill: built-in prompts replaced by name, {name: {version, messages}}."
    )


class ExpandCreate(_Body):
    sample_rate: Any = Field(None, description="Fraction of rows expanded per target, 0.01 to 1.")
    languages: Any = Field(None, description="translate: ISO 639-1 language codes.")
    pairs: Any = Field(None, description="localize: [{country, language}].")
    estimate: Any = Field(None, description="true: quote only, create nothing.")
    idempotency_key: Any = Field(None, description="A replay returns the dataset the first call made.")


class RunPublic(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    run_id: str | None
    estimated_minutes: float = Field(alias="estimatedMinutes")
    estimated_credits_consumed: float = Field(alias="estimatedCreditsConsumed")
    estimate: bool
    multimodal_pricing_applied: bool = Field(alias="multimodalPricingApplied")
    credit_multiplier: float | None = Field(None, alias="creditMultiplier")


class ExpandPublic(BaseModel):
    dataset_id: str | None
    status: str | None
    estimated_credits_consumed: float
    estimate: bool
    estimated_new_rows: float


class QualityPublic(BaseModel):
    grade_before: str | None = None
    grade_after: str | None = None
    score_before: float | None = None
    score_after: float | None = None
    percentile_after: float | None = None
    improvement_percent: float | None = None


class EvaluationPublic(BaseModel):
    dataset_id: str
    status: str | None
    quality: QualityPublic | None
    raw_results: dict[str, Any] | None
