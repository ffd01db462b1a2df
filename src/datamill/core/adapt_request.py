"""The body of a run/adapt request (Adaption API), parsed once for every entry point.

The CLI, the Python API and both wire APIs hand the same JSON-shaped dict to `parse_adapt_request`, which
returns an `AdaptRequest` or raises one `ValidationError` listing every issue with its dotted field path
(``column_mapping.chat``, ``language_expansion.pairs[1].country``, ``job_specification.max_rows``).

``language_expansion`` has three states: left out (keep the dataset's existing configuration:
``language_expansion_given`` is False), ``null`` (clear it: given, value None) and an object (replace it).
Every other optional object left out or null takes its defaults. ``column_mapping`` may be left out only
for an estimate. ``custom_steps`` and ``prompt_templates`` are datamill's own fields, a run's own model steps
and prompt templates (`datamill.core.custom_request`); ``model`` and ``judge_model`` are datamill's own
too, the public names of the models the run writes and judges with (the server's default when left out;
the server checks them against its routing file), and so is ``translation_judge`` (the run option of that
name: the judge checks each translation for changed details). ``to_dict`` writes these only when set.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from datamill.core.brand import BrandControls, read_brand_controls
from datamill.core.custom_request import CustomStepSpec, read_custom_steps, read_prompt_templates
from datamill.core.expansion import LanguageExpansion, read_language_expansion
from datamill.core.fields import Issues, parse_with, read_bool, read_enum, read_object, read_str
from datamill.core.job import JobSpecification, read_job_specification
from datamill.core.mapping import ColumnMapping, read_column_mapping
from datamill.core.recipes import RecipeSpecification, TrainingType, read_recipe_specification

ADAPT_FIELDS = (
    "column_mapping",
    "recipe_specification",
    "job_specification",
    "brand_controls",
    "training_type",
    "estimate",
    "language_expansion",
    "custom_steps",
    "prompt_templates",
    "model",
    "judge_model",
    "translation_judge",
)


@dataclass(frozen=True, slots=True)
class AdaptRequest:
    """A validated run/adapt request; build one with `parse_adapt_request`.

    Attributes:
        column_mapping: the mapping; None only for an estimate.
        recipe_specification: the recipes, defaults filled in.
        job: the ``job_specification`` (max_rows, idempotency_key).
        brand_controls: length, safety review, grounding and blueprint.
        training_type: instruction data or preference pairs.
        estimate: quote only, run nothing.
        language_expansion: the new expansion, or None (see `language_expansion_given`).
        language_expansion_given: whether the request set ``language_expansion`` at all; when False the
            dataset keeps its existing expansion, when True a None value clears it.
        custom_steps: the run's own model steps (`datamill.core.custom_request`), in order.
        prompt_templates: built-in prompts the run replaces, as (name, template document) pairs.
        model: the model the run writes with; None uses the server's default model.
        judge_model: the model that grades the run; None lets the server choose.
        translation_judge: whether the judge checks translations for changed details; None leaves it to
            the run's options (off unless set there).
    """

    column_mapping: ColumnMapping | None = None
    recipe_specification: RecipeSpecification = dataclasses.field(default_factory=RecipeSpecification)
    job: JobSpecification = dataclasses.field(default_factory=JobSpecification)
    brand_controls: BrandControls = dataclasses.field(default_factory=BrandControls)
    training_type: TrainingType = TrainingType.INSTRUCTION_DATASET
    estimate: bool = False
    language_expansion: LanguageExpansion | None = None
    language_expansion_given: bool = False
    custom_steps: tuple[CustomStepSpec, ...] = ()
    prompt_templates: tuple[tuple[str, dict[str, Any]], ...] = ()
    model: str | None = None
    judge_model: str | None = None
    translation_judge: bool | None = None

    def __post_init__(self) -> None:
        # An expansion object is always an explicit replacement, so "given" cannot be False beside one.
        if self.language_expansion is not None and not self.language_expansion_given:
            object.__setattr__(self, "language_expansion_given", True)

    def to_dict(self) -> dict[str, object]:
        """The wire body; ``parse_adapt_request(r.to_dict()) == r`` for every valid request."""
        out: dict[str, object] = {}
        if self.column_mapping is not None:
            out["column_mapping"] = self.column_mapping.to_dict()
        out["recipe_specification"] = self.recipe_specification.to_dict()
        job = self.job.to_dict()
        if job:
            out["job_specification"] = job
        out["brand_controls"] = self.brand_controls.to_dict()
        out["training_type"] = self.training_type.value
        out["estimate"] = self.estimate
        if self.language_expansion_given:
            expansion = self.language_expansion
            out["language_expansion"] = expansion.to_dict() if expansion is not None else None
        if self.custom_steps:
            out["custom_steps"] = [step.to_dict() for step in self.custom_steps]
        if self.prompt_templates:
            out["prompt_templates"] = dict(self.prompt_templates)
        if self.model is not None:
            out["model"] = self.model
        if self.judge_model is not None:
            out["judge_model"] = self.judge_model
        if self.translation_judge is not None:
            out["translation_judge"] = self.translation_judge
        return out


def parse_adapt_request(body: object) -> AdaptRequest:
    """Validate a run/adapt body, or raise a `ValidationError` with every issue.

    Args:
        body: the JSON-shaped request body (a mapping from field names to JSON values).

    Raises:
        ValidationError: one `Issue` per broken rule; unknown top-level keys included.
    """
    return parse_with(read_adapt_request, body, "")


def read_adapt_request(value: object, field: str, issues: Issues) -> AdaptRequest | None:
    """Reader form of `parse_adapt_request` (see `core.fields`)."""
    before = len(issues)
    obj = read_object(value, field, ADAPT_FIELDS, issues)
    if obj is None:
        return None
    estimate = read_bool(obj.get("estimate"), "estimate", issues)
    mapping = None
    if obj.get("column_mapping") is not None:
        mapping = read_column_mapping(obj["column_mapping"], "column_mapping", issues)
    elif not estimate and (estimate is not None or obj.get("estimate") is None):
        issues.add(
            "column_mapping",
            "column_mapping is required to start a run (it may be left out only when estimate is true)",
        )
    recipes = read_recipe_specification(obj.get("recipe_specification"), "recipe_specification", issues)
    job = read_job_specification(obj.get("job_specification"), "job_specification", issues)
    brand = read_brand_controls(obj.get("brand_controls"), "brand_controls", issues)
    training = read_enum(obj.get("training_type"), "training_type", issues, TrainingType)
    given = "language_expansion" in obj
    expansion = None
    if obj.get("language_expansion") is not None:
        expansion = read_language_expansion(obj["language_expansion"], "language_expansion", issues)
    custom_steps = read_custom_steps(obj.get("custom_steps"), "custom_steps", issues)
    templates = read_prompt_templates(obj.get("prompt_templates"), "prompt_templates", issues)
    model = read_str(obj.get("model"), "model", issues, max_length=200)
    judge_model = read_str(obj.get("judge_model"), "judge_model", issues, max_length=200)
    translation_judge = read_bool(obj.get("translation_judge"), "translation_judge", issues)
    if (
        len(issues) > before
        or recipes is None
        or job is None
        or brand is None
        or custom_steps is None
        or templates is None
    ):
        return None
    return AdaptRequest(
        column_mapping=mapping,
        recipe_specification=recipes,
        job=job,
        brand_controls=brand,
        training_type=training or TrainingType.INSTRUCTION_DATASET,
        estimate=bool(estimate),
        language_expansion=expansion,
        language_expansion_given=given,
        custom_steps=custom_steps,
        prompt_templates=templates,
        model=model,
        judge_model=judge_model,
        translation_judge=translation_judge,
    )
