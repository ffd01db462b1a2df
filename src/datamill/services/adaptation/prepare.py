"""Preparing and executing a run: the one path of the command line, the Python API, the server and its worker.

- `plan_run` is what a launch (and the command line) does once: check the mapping against the input, count
  its rows, choose the models, build the services and the steps, and estimate the run on a sample of rows.
  Its `RunPlan` is what the server stores with the run.
- `build_run` is what executing a stored plan needs: the services and the steps, rebuilt from the
  `RunPlan` without reading the input, sampling it or estimating again (the worker, each Ray actor).
- `execute` streams the input through the steps into the run's checkpoint.

A translate or localize run is the adaptation pipeline over the source dataset's mapping with every recipe
off and language expansion on, and only the expansion row step kept: the new dataset holds the source rows
as they were plus one new row per target for a seeded sample of rows. Its estimate is made on that plan. An
extend run is the same pipeline with its one row step `ExtendTrajectory` (the user's next turn per row).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from datamill.core.adapt_request import AdaptRequest
from datamill.core.errors import ModelError, ValidationError
from datamill.core.mapping import check_columns
from datamill.core.run_options import RunOptions
from datamill.dataio import count_rows, open_dataset
from datamill.llm.gateway import Gateway, ModelHandle
from datamill.llm.judge_choice import judge_handle
from datamill.pipelines.adapt import AdaptResult, BatchRunnerFactory, RunCounters, run_adaptation
from datamill.pipelines.checkpoint import BatchCheckpoint
from datamill.pipelines.estimate import DEDUP_SAMPLE_ROWS, Estimate, estimate_plan, take_sample
from datamill.pipelines.plan import AdaptPlan, PlanServices, plan_adaptation
from datamill.services.adaptation.plans import ADAPT, EXTEND
from datamill.services.adaptation.run_plan import RunPlan
from datamill.services.adaptation.step_services import build_services, services_fingerprint
from datamill.steps.base import StepContext
from datamill.steps.dedup import ExactDedup
from datamill.steps.expansion import LanguageExpansionStep
from datamill.steps.extend_trajectory import ExtendTrajectory
from datamill.steps.mapping import MapColumns
from datamill.steps.near_dedup import NearDedup
from datamill.steps.prompt_step import PromptStep, place, steps_from_specs
from datamill.steps.templates import add_templates, compile_documents
from datamill.text.fetch_policy import FetchPolicy
from datamill.text.langid import FastLangDetector
from datamill.text.tokenizer import Tokenizer


@dataclass(frozen=True)
class RunSource:
    """The file a run reads.

    Attributes:
        path: a local file with the input rows.
        format: its format; None detects it from the name.
        local_image_files: whether image cells may name files on this machine (the command line and the
            library); False on the server, where a tenant's dataset must not read the server's disk.
    """

    path: Path
    format: str | None = None
    local_image_files: bool = True


@dataclass
class PreparedRun:
    """A run ready to execute: its plan, its steps and models, and (when it was planned here) its estimate."""

    plan: RunPlan
    steps: AdaptPlan
    model: ModelHandle
    judge: ModelHandle
    services: PlanServices
    notes: list[str] = field(default_factory=list)
    estimate: Estimate | None = None

    @property
    def documents(self) -> str | None:
        """What identifies the grounding documents the run searches (None without grounding)."""
        return services_fingerprint(self.services)


async def plan_run(
    kind: str,
    source: RunSource,
    request: AdaptRequest,
    model: str,
    options: RunOptions,
    gateway: Gateway,
    data_dir: Path,
    *,
    tokenizer: Tokenizer | None = None,
    fetch_policy: FetchPolicy | None = None,
    search_key: str | None = None,
    custom_steps: Sequence[PromptStep] = (),
) -> PreparedRun:
    """Validate `request` against the input and the models, plan it and estimate it (module docstring).

    `tokenizer` counts the prompts' tokens; None loads the default one for this estimate only (a server
    keeps one loaded for all its estimates). `fetch_policy` is what the image fetcher may reach (the
    ``DATAMILL_FETCH_ALLOW`` setting); None allows no internal address.

    Raises:
        ValidationError: a bad request, or one this data or model cannot serve.
        DataFormatError: the input cannot be read.
        ModelError / ConfigError: the model cannot be used at all.
    """
    with open_dataset(source.path, format=source.format) as reader:
        if request.column_mapping is not None:
            check_columns(request.column_mapping, reader.columns)
        rename_note = reader.rename_note
    if request.model is not None:
        model = request.model
    if request.judge_model is not None:
        options = dataclasses.replace(options, judge_model=request.judge_model)
    if request.translation_judge is not None:
        options = dataclasses.replace(options, translation_judge=request.translation_judge)
    handle = _request_model(gateway, "model", model) if request.model else gateway.model(model)
    if request.judge_model is not None:
        _request_model(gateway, "judge_model", request.judge_model)
    judge = judge_handle(gateway, handle, options.judge_model)
    plan = RunPlan(
        kind=kind,
        request=dataclasses.replace(request, estimate=False),
        model=handle.name,
        judge=judge.name,
        options=options,
        total_rows=count_rows(source.path, format=source.format),
    )
    prepared = await build_run(
        plan,
        source,
        gateway,
        data_dir,
        fetch_policy=fetch_policy,
        search_key=search_key,
        custom_steps=custom_steps,
    )
    if rename_note is not None:
        prepared.notes.insert(0, rename_note)
    with open_dataset(source.path, format=source.format) as reader:
        sample = take_sample(reader, prepared.steps)
    filter_rows = None
    if any(isinstance(step, ExactDedup | NearDedup) for step in prepared.steps.batch_steps):
        # The dedup steps measure their drop rate on many more rows than the prompts are rendered for.
        with open_dataset(source.path, format=source.format) as reader:
            filter_rows = take_sample(reader, prepared.steps, limit=DEDUP_SAMPLE_ROWS)
    if not sample and prepared.steps.rows_selected > 0:
        raise _unmappable(source, prepared.steps)
    estimate = await estimate_plan(
        prepared.steps,
        sample,
        request=request,
        tokenizer=tokenizer,
        batched=gateway.batch,
        filter_rows=filter_rows,
    )
    prepared.plan = dataclasses.replace(plan, multimodal=estimate.multimodal_pricing_applied)
    prepared.estimate = estimate
    return prepared


async def build_run(
    plan: RunPlan,
    source: RunSource,
    gateway: Gateway,
    data_dir: Path,
    *,
    fetch_policy: FetchPolicy | None = None,
    search_key: str | None = None,
    custom_steps: Sequence[PromptStep] = (),
) -> PreparedRun:
    """The services, models and steps of a planned run; reads nothing of the input.

    `fetch_policy` is what the image fetcher and a grounding search API may reach (the
    ``DATAMILL_FETCH_ALLOW`` setting); `search_key` is the search API's key (``grounding_search_url``).
    Release the services with `close_services` when the run ends.
    """
    model = gateway.model(plan.model)
    judge = judge_handle(gateway, model, plan.options.judge_model)
    # The request's own steps and templates are checked before anything is built (a 400, not a 500).
    own_steps = [*custom_steps, *steps_from_specs(plan.request.custom_steps)]
    templates = compile_documents(plan.request.prompt_templates)
    services, notes = await build_services(
        plan.request, plan.options, data_dir, fetch_policy=fetch_policy, search_key=search_key
    )
    services.fetch_policy = fetch_policy
    with add_templates(templates):
        steps = plan_adaptation(
            plan.request,
            model,
            total_rows=plan.total_rows,
            options=plan.options,
            services=services,
            judge=judge,
            base_dir=source.path.parent,
            local_image_files=source.local_image_files,
        )
    if plan.kind == EXTEND:
        steps.row_steps = [ExtendTrajectory(model, FastLangDetector())]
    elif plan.kind != ADAPT:
        steps.row_steps = [step for step in steps.row_steps if isinstance(step, LanguageExpansionStep)]
    elif own_steps:
        # A user's own steps, each calling its own model or the run's, in the documented order.
        bound = [s.bind(_step_model(gateway, s) if s.model_name else model) for s in own_steps]
        steps.row_steps = place(steps.row_steps, bound)
    # A stored plan names the judge the run asked for; the one chosen here (another family's, when the
    # routing offers one) is what the report must name.
    plan = dataclasses.replace(plan, judge=judge.name)
    return PreparedRun(plan, steps, model, judge, services, notes)


async def execute(
    prepared: PreparedRun,
    source: RunSource,
    checkpoint: BatchCheckpoint,
    *,
    counters: RunCounters | None = None,
    batches_in_flight: int = 4,
    batch_runner: BatchRunnerFactory | None = None,
) -> AdaptResult:
    """Stream the input through the run's steps into `checkpoint` (finished batches are skipped)."""
    batch_size = prepared.plan.options.batch_size
    with open_dataset(source.path, format=source.format, batch_size=batch_size) as reader:
        return await run_adaptation(
            reader,
            prepared.steps,
            checkpoint,
            counters=counters,
            batches_in_flight=batches_in_flight,
            batch_runner=batch_runner,
        )


def _step_model(gateway: Gateway, step: PromptStep) -> ModelHandle:
    """The model a custom step names, or a `ValidationError` naming the step's ``model`` field."""
    assert step.model_name is not None
    try:
        return gateway.model(step.model_name)
    except ModelError as exc:
        raise ValidationError.of(f"{step.field}.model", str(exc)) from None


def _request_model(gateway: Gateway, field: str, name: str) -> ModelHandle:
    """The model a request names (``model``, ``judge_model``), or a `ValidationError` naming the field.

    Only a name the routing file serves is accepted; the error lists the routed names.
    """
    try:
        return gateway.model(name)
    except ModelError as exc:
        raise ValidationError.of(
            field,
            f"{exc}; name a model the routing file serves (GET /api/v1/models lists them) "
            "or leave the field out to use the default model",
        ) from None


def _unmappable(source: RunSource, steps: AdaptPlan) -> ValidationError:
    """The error of a file whose first rows the column mapping all rejects, with the first row's reason."""
    with open_dataset(source.path, format=source.format) as reader:
        first = next(iter(reader)).slice(0, 1).to_pylist()
    ctx = StepContext()
    for step in steps.batch_steps:
        if isinstance(step, MapColumns):
            step.process_batch([{"_row": 1, **row} for row in first], ctx)
    reason = ctx.rejected[0].reason if ctx.rejected else "it was rejected"
    return ValidationError.of(
        "column_mapping", f"every row sampled for the estimate is rejected by the mapping (row 1: {reason})"
    )
