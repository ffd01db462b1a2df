"""Which steps an adaptation runs, in the documented order, built from a validated AdaptRequest."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from datamill.core.errors import ValidationError
from datamill.steps.base import BatchStep, RowStep
from datamill.steps.completion import GenerateCompletion
from datamill.steps.dedup import ExactDedup
from datamill.steps.mapping import MapColumns
from datamill.steps.rephrase import Rephrase
from datamill.steps.sample import SampleRows, choose_rows

if TYPE_CHECKING:
    from datamill.core.adapt_request import AdaptRequest
    from datamill.llm.gateway import ModelHandle


@dataclass
class AdaptPlan:
    """The steps of one run: batch steps in file order, then per-row model steps."""

    batch_steps: list[BatchStep]
    row_steps: list[RowStep]
    rows_total: int
    rows_selected: int

    @property
    def step_names(self) -> list[str]:
        return [s.name for s in (*self.batch_steps, *self.row_steps)]


def plan_adaptation(
    request: AdaptRequest, model: ModelHandle, *, total_rows: int, seed: int = 0
) -> AdaptPlan:
    """Build the steps for ``request``.

    Raises:
        ValidationError: when the request asks for something this version cannot run.
    """
    mapping = request.column_mapping
    if mapping is None:
        raise ValidationError.of("column_mapping", "a column mapping is required to run an adaptation")
    if mapping.chat is not None:
        raise ValidationError.of("column_mapping.chat", "chat mode is not supported by this version yet")
    batch: list[BatchStep] = [MapColumns(mapping)]
    max_rows = request.job.max_rows
    selected = total_rows
    if max_rows is not None and max_rows < total_rows:
        batch.append(SampleRows(choose_rows(total_rows, max_rows, seed)))
        selected = max_rows
    recipes = request.recipe_specification.recipes
    if recipes.deduplication:
        # Duplicates are judged on what the model is asked (prompt and context), not on the old answers:
        # two rows asking the same thing would teach two answers to one question.
        batch.append(ExactDedup(("original_prompt", "_context")))
    rows: list[RowStep] = []
    if recipes.prompt_rephrase:
        rows.append(Rephrase(model))
    brand = request.brand_controls
    token_range = brand.length.token_range if brand.length is not None else None
    rows.append(GenerateCompletion(model, blueprint=brand.blueprint, token_range=token_range))
    return AdaptPlan(batch, rows, total_rows, selected)
