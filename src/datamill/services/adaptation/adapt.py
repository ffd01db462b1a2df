"""Adapt a dataset file: validate, plan, estimate, stream through the steps, write the outputs, evaluate.

Outputs beside ``output_path`` (``<stem>`` is its name without the extension):
``<stem>.rejected.jsonl`` (rows removed, with step and reason), ``<stem>.evaluation.json`` and
``<stem>.report.html`` (before/after grade, when evaluation is on).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson

from datamill.core.adapt_request import AdaptRequest, parse_adapt_request
from datamill.core.errors import RunFailedError, ValidationError
from datamill.core.mapping import check_columns
from datamill.core.run_options import RunOptions
from datamill.dataio import check_writable, count_rows, open_dataset, open_writer
from datamill.llm import event_loop
from datamill.llm.budget import ConcurrencyBudget
from datamill.llm.cache import SqliteResponseCache
from datamill.llm.gateway import Gateway, ModelHandle
from datamill.llm.routing import Routing
from datamill.pipelines.adapt import AdaptResult, RunCounters, run_adaptation
from datamill.pipelines.checkpoint import DirectoryCheckpoint
from datamill.pipelines.estimate import Estimate, estimate_plan, take_sample
from datamill.pipelines.estimate_compare import compare
from datamill.pipelines.plan import AdaptPlan, PlanServices, plan_adaptation
from datamill.services.adaptation.evaluate import evaluate_run
from datamill.services.adaptation.step_services import build_services, services_fingerprint
from datamill.services.settings.entry import Settings
from datamill.steps.base import StepContext
from datamill.steps.mapping import MapColumns


@dataclass
class AdaptJob:
    """Everything one adaptation of a file needs besides the wire-shaped request body."""

    input_path: Path
    output_path: Path
    model: str | None = None
    input_format: str | None = None
    output_format: str | None = None
    use_cache: bool = True
    options: RunOptions = field(default_factory=RunOptions)
    #: Image cells may name files on this machine (the command line, the library); False on the server.
    local_image_files: bool = True


@dataclass
class AdaptSummary:
    """What a finished adaptation reports: rows, calls, cache hits, tokens, cost, time, and the estimate."""

    input_path: str
    output_path: str
    rejected_path: str | None
    report_path: str | None
    model: str
    steps: list[str]
    rows_in: int
    rows_selected: int
    rows_out: int
    rows_rejected: int
    batches_resumed: int
    rejections_by_step: dict[str, int]
    calls: int
    cache_hits: int
    input_tokens: int
    output_tokens: int
    thinking_tokens: int
    cost_usd: float
    elapsed_s: float
    usage_by_step: dict[str, Any] = field(default_factory=dict)
    cached_input_tokens: int = 0
    estimate: dict[str, Any] | None = None
    estimate_vs_actual: dict[str, Any] | None = None
    quality: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class PreparedRun:
    """A validated, planned and estimated run, ready to execute."""

    request: AdaptRequest
    plan: AdaptPlan
    model: ModelHandle
    judge: ModelHandle
    services: PlanServices
    estimate: Estimate
    notes: list[str]


def make_gateway(
    settings: Settings,
    *,
    use_cache: bool = True,
    routes: Path | None = None,
    cache_commit_every: int | None = None,
    budget: ConcurrencyBudget | None = None,
) -> Gateway:
    """A gateway on the routing file and the persistent response cache in the data directory.

    The gateway's default model, used by every command and job that names none, is ``settings.model``
    (``DATAMILL_MODEL``), else the routing file's ``default_model``.

    `cache_commit_every` writes the cache every that many replies (1: each reply is on disk before the call
    returns, so a killed process pays again only for the calls it had in flight); None keeps the cache's
    batching. `budget` shares each route's ``max_concurrency`` with every other user of the budget.
    """
    routing = Routing.load(routes or settings.routes_path)
    cache = None
    if use_cache:
        settings.cache_path.parent.mkdir(parents=True, exist_ok=True)
        if cache_commit_every is None:
            cache = SqliteResponseCache(settings.cache_path)
        else:
            cache = SqliteResponseCache(settings.cache_path, commit_every=cache_commit_every)
    return Gateway(routing, cache=cache, budget=budget, default_model=settings.model)


async def estimate_file_async(
    job: AdaptJob,
    body: Mapping[str, Any],
    *,
    settings: Settings | None = None,
    gateway: Gateway | None = None,
) -> Estimate:
    """Plan ``job`` and quote it (calls, tokens, rows, credits, cost, minutes) without running anything."""
    settings = settings or Settings.from_env()
    own = gateway is None
    gateway = gateway or make_gateway(settings, use_cache=job.use_cache)
    try:
        return (await prepare_adaptation(job, body, settings, gateway)).estimate
    finally:
        if own:
            await gateway.aclose()


async def adapt_file_async(
    job: AdaptJob,
    body: Mapping[str, Any],
    *,
    settings: Settings | None = None,
    gateway: Gateway | None = None,
    counters: RunCounters | None = None,
) -> AdaptSummary:
    """Adapt ``job.input_path`` into ``job.output_path`` as the run/adapt ``body`` describes.

    ``body`` has the wire shape of the Adaption API's run/adapt request and goes through the same validation
    as every other entry point. Finished batches are checkpointed under the data directory; running the same
    job again after an interruption resumes from the last finished batch.

    Raises:
        ValidationError: a bad request, or a mapping that names columns the file does not have.
        DataFormatError: an unreadable input file, or an output format or path that cannot be written
            (checked before any model call).
        ModelError / ConfigError: a model problem that would fail every row.
    """
    check_writable(job.output_path, format=job.output_format)
    settings = settings or Settings.from_env()
    own = gateway is None
    gateway = gateway or make_gateway(settings, use_cache=job.use_cache)
    try:
        prepared = await prepare_adaptation(job, body, settings, gateway)
        fingerprint = run_fingerprint(job, prepared, gateway)
        checkpoint = DirectoryCheckpoint(settings.data_dir / "runs" / fingerprint[:24], fingerprint)
        with open_dataset(
            job.input_path, format=job.input_format, batch_size=job.options.batch_size
        ) as reader:
            result = await run_adaptation(reader, prepared.plan, checkpoint, counters=counters)
        if result.failure is not None:
            raise _nothing_delivered(job, checkpoint, result.failure)
        _export(checkpoint, job)
        rejected_path = _write_rejections(job.output_path, checkpoint)
        summary = _summary(job, prepared, result, rejected_path, gateway)
        if job.options.evaluate:
            summary.quality, summary.report_path = await evaluate_run(
                job, prepared.request, prepared.plan, prepared.judge, checkpoint, summary
            )
            _count_usage(summary, gateway)  # the judge's calls are billed too
        checkpoint.remove()
        return summary
    finally:
        if own:
            await gateway.aclose()


def _nothing_delivered(job: AdaptJob, checkpoint: DirectoryCheckpoint, failure: str) -> RunFailedError:
    """The error of a run whose every row was rejected: no output file, the rejected rows written.

    The checkpoint goes too: the run is over, and a rerun after fixing the cause must not replay it.
    """
    rejected_path = _write_rejections(job.output_path, checkpoint)
    checkpoint.remove()
    return RunFailedError(
        f"{failure}. No output was written; the rejected rows and their reasons are in {rejected_path}"
    )


def adapt_file(job: AdaptJob, body: Mapping[str, Any], **kwargs: Any) -> AdaptSummary:
    """Blocking form of :func:`adapt_file_async`."""
    return event_loop.run(adapt_file_async(job, body, **kwargs))


async def prepare_adaptation(
    job: AdaptJob, body: Mapping[str, Any], settings: Settings, gateway: Gateway
) -> PreparedRun:
    """Validate ``body``, check the mapping against the file, build the services and the plan, estimate it."""
    request = parse_adapt_request(body)
    with open_dataset(job.input_path, format=job.input_format) as reader:
        if request.column_mapping is not None:
            check_columns(request.column_mapping, reader.columns)
        rename_note = reader.rename_note
    total = count_rows(job.input_path, format=job.input_format)
    model = gateway.model(job.model or settings.model or gateway.default_model)
    judge = gateway.model(job.options.judge_model) if job.options.judge_model else model
    services, notes = await build_services(request, job.options, settings.data_dir)
    if rename_note is not None:
        notes.insert(0, rename_note)
    plan = plan_adaptation(
        request,
        model,
        total_rows=total,
        options=job.options,
        services=services,
        judge=judge,
        base_dir=job.input_path.parent,
        local_image_files=job.local_image_files,
    )
    with open_dataset(job.input_path, format=job.input_format) as reader:
        sample = take_sample(reader, plan)
    if not sample and plan.rows_selected > 0:
        raise _unmappable(job, plan)
    estimate = await estimate_plan(plan, sample, request=request)
    return PreparedRun(request, plan, model, judge, services, estimate, notes)


def _unmappable(job: AdaptJob, plan: AdaptPlan) -> ValidationError:
    """The error of a file whose first rows the column mapping all rejects, with the first row's reason."""
    with open_dataset(job.input_path, format=job.input_format) as reader:
        first = next(iter(reader)).slice(0, 1).to_pylist()
    ctx = StepContext()
    for step in plan.batch_steps:
        if isinstance(step, MapColumns):
            step.process_batch([{"_row": 1, **row} for row in first], ctx)
    reason = ctx.rejected[0].reason if ctx.rejected else "it was rejected"
    return ValidationError.of(
        "column_mapping", f"every row sampled for the estimate is rejected by the mapping (row 1: {reason})"
    )


def run_fingerprint(job: AdaptJob, prepared: PreparedRun, gateway: Gateway) -> str:
    """What identifies a run for resuming: input file, request, models, options and grounding documents."""
    stat = job.input_path.stat()
    identity = {
        "input": str(job.input_path.resolve()),
        "size": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
        "input_format": job.input_format,
        "request": prepared.request.to_dict(),
        "model": prepared.model.name,
        "judge": prepared.judge.name,
        "options": asdict(job.options),
        "documents": services_fingerprint(prepared.services),
    }
    return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()


def rejected_path_for(output_path: Path) -> Path:
    """Where the rejected rows of an output file go: ``<name>.rejected.jsonl`` beside it."""
    return output_path.with_name(f"{output_path.stem}.rejected.jsonl")


def _export(checkpoint: DirectoryCheckpoint, job: AdaptJob) -> None:
    """Write the checkpointed parts, in order, to the output file (atomically)."""
    with open_writer(job.output_path, format=job.output_format) as writer:
        for table in checkpoint.iter_output():
            writer.write_batch(table)


def _write_rejections(output_path: Path, checkpoint: DirectoryCheckpoint) -> str | None:
    path = rejected_path_for(output_path)
    rows = list(checkpoint.iter_rejections())
    if not rows:
        path.unlink(missing_ok=True)
        return None
    tmp = path.with_name(f".{path.name}.partial")
    tmp.write_bytes(b"".join(orjson.dumps(r, default=str) + b"\n" for r in rows))
    tmp.replace(path)
    return str(path)


def _summary(
    job: AdaptJob, prepared: PreparedRun, result: AdaptResult, rejected_path: str | None, gateway: Gateway
) -> AdaptSummary:
    total = gateway.usage.total
    summary = AdaptSummary(
        input_path=str(job.input_path),
        output_path=str(job.output_path),
        rejected_path=rejected_path,
        report_path=None,
        model=prepared.model.name,
        steps=prepared.plan.step_names,
        rows_in=result.rows_in,
        rows_selected=result.rows_selected,
        rows_out=result.rows_out,
        rows_rejected=result.rows_rejected,
        batches_resumed=result.batches_resumed,
        rejections_by_step=result.rejections_by_step,
        calls=total.calls,
        cache_hits=total.cache_hits,
        input_tokens=total.usage.input_tokens,
        output_tokens=total.usage.output_tokens,
        thinking_tokens=total.usage.thinking_tokens,
        cost_usd=total.cost_usd,
        elapsed_s=result.elapsed_s,
        estimate=prepared.estimate.to_dict(),
        notes=list(prepared.notes),
    )
    _count_usage(summary, gateway)
    summary.estimate_vs_actual = compare(prepared.estimate, summary.to_dict(), rows_out=result.rows_out)
    return summary


def _count_usage(summary: AdaptSummary, gateway: Gateway) -> None:
    """Set the summary's calls, tokens and cost to what the gateway's ledger holds now."""
    total = gateway.usage.total
    summary.calls, summary.cache_hits = total.calls, total.cache_hits
    summary.input_tokens = total.usage.input_tokens
    summary.cached_input_tokens = total.usage.cached_input_tokens
    summary.output_tokens = total.usage.output_tokens
    summary.thinking_tokens = total.usage.thinking_tokens
    summary.cost_usd = total.cost_usd
    summary.usage_by_step = gateway.usage.snapshot().get("by_tag", {})
