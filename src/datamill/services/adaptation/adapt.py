"""Adapt a dataset file: validate, plan, estimate, stream through the steps, write the outputs, evaluate.

Outputs beside ``output_path`` (``<stem>`` is its name without the extension):
``<stem>.rejected.jsonl`` (rows removed, with step and reason), ``<stem>.evaluation.json`` and
``<stem>.report.html`` (before/after grade, when evaluation is on).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from datamill.core.adapt_request import parse_adapt_request
from datamill.core.errors import RunFailedError
from datamill.core.run_options import RunOptions
from datamill.dataio import check_writable
from datamill.dataio.folder import Folder, Location, is_remote
from datamill.llm import event_loop
from datamill.llm.cache import SqliteResponseCache
from datamill.llm.gateway import Gateway
from datamill.llm.limits.shared import ConcurrencyBudget
from datamill.llm.routing import Routing
from datamill.pipelines.adapt import AdaptResult, RunCounters
from datamill.pipelines.checkpoint import Checkpoint
from datamill.pipelines.estimate import Estimate
from datamill.pipelines.estimate_compare import compare
from datamill.pipelines.evaluation import overridden_prompts_note
from datamill.pipelines.export import write_output, write_rejections
from datamill.pipelines.grounding_report import grounding_report
from datamill.services.adaptation.evaluate import grade_run, plan_summary, write_report
from datamill.services.adaptation.plans import ADAPT
from datamill.services.adaptation.prepare import PreparedRun, RunSource, execute, plan_run
from datamill.services.adaptation.run_plan import file_identity, run_fingerprint
from datamill.services.settings.entry import Settings
from datamill.steps.prompt_step import PromptStep, steps_identity
from datamill.steps.templates import compile_documents, templates_digest, use_templates
from datamill.text.fetch_policy import FetchPolicy


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
    #: Send the model calls through the providers' batch APIs (at their batch discount, answered later).
    batch: bool = False
    #: Image cells may name files on this machine (the command line, the library); False on the server.
    local_image_files: bool = True
    #: The user's own model steps (`datamill.steps.prompt_step.PromptStep`), placed by their ``after``.
    steps: tuple[PromptStep, ...] = ()
    #: A folder of prompt templates overriding the built-in ones by name; None: ``settings.templates_dir``.
    templates: Path | None = None


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
    #: ``succeeded``, ``failed`` (no judged row was scored: no grade), ``skipped``; None with evaluation off.
    evaluation_status: str | None = None
    notes: list[str] = field(default_factory=list)
    #: With grounding on: rows grounded and not, and the citations' recall and precision
    #: (`datamill.pipelines.grounding_report`); None without grounding.
    grounding: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def make_gateway(
    settings: Settings,
    *,
    use_cache: bool = True,
    routes: Path | None = None,
    cache_commit_every: int | None = None,
    budget: ConcurrencyBudget | None = None,
    batch: bool = False,
) -> Gateway:
    """A gateway on the routing file and the persistent response cache in the data directory.

    The gateway's default model, used by every command and job that names none, is ``settings.model``
    (``DATAMILL_MODEL``), else the routing file's ``default_model``.

    `cache_commit_every` writes the cache every that many replies (1: each reply is on disk before the call
    returns, so a killed process pays again only for the calls it had in flight); None keeps the cache's
    batching. `budget` shares each route's ``max_concurrency`` with every other user of the budget.
    `batch` sends the calls of every route whose provider has a batch API through batches.
    """
    routing = Routing.load(routes or settings.routes_path, environ=settings.environ)
    cache = None
    if use_cache:
        settings.cache_path.parent.mkdir(parents=True, exist_ok=True)
        if cache_commit_every is None:
            cache = SqliteResponseCache(settings.cache_path)
        else:
            cache = SqliteResponseCache(settings.cache_path, commit_every=cache_commit_every)
    return Gateway(routing, cache=cache, budget=budget, default_model=settings.model, batch=batch)


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
        documents = compile_documents(parse_adapt_request(body).prompt_templates)
        with use_templates(_templates(job, settings), documents):
            prepared = await _plan(job, body, settings, gateway)
        assert prepared.estimate is not None  # plan_run always estimates
        return prepared.estimate
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
        ModelError / ConfigError: a model problem that would fail every row (the judge's included).
    """
    check_writable(job.output_path, format=job.output_format)
    documents = compile_documents(parse_adapt_request(body).prompt_templates)
    settings = settings or Settings.from_env()
    own = gateway is None
    gateway = gateway or make_gateway(settings, use_cache=job.use_cache)
    if job.batch:
        gateway.use_batches(enabled=True)
    templates = _templates(job, settings)
    try:
        with use_templates(templates, documents):
            return await _adapt(job, body, settings, gateway, templates, counters)
    finally:
        if own:
            await gateway.aclose()


def _templates(job: AdaptJob, settings: Settings) -> Path | None:
    return job.templates if job.templates is not None else settings.templates_dir


async def _adapt(
    job: AdaptJob,
    body: Mapping[str, Any],
    settings: Settings,
    gateway: Gateway,
    templates: Path | None,
    counters: RunCounters | None,
) -> AdaptSummary:
    prepared = await _plan(job, body, settings, gateway)
    source = _source(job)
    custom = {"steps": steps_identity(job.steps), "templates": templates_digest(templates)}
    fingerprint = run_fingerprint(
        file_identity(job.input_path, job.input_format), prepared.plan, prepared.documents, custom=custom
    )
    checkpoint = Checkpoint(settings.data_dir / "runs" / fingerprint[:24], fingerprint)
    # Beside the checkpoint: a restarted run polls the batches it had submitted instead of paying twice.
    gateway.use_batches(journal=batch_journal_path(checkpoint.location, settings.data_dir))
    result = await execute(prepared, source, checkpoint, counters=counters)
    if result.failure is not None:
        raise _nothing_delivered(job, checkpoint, result.failure)
    write_output(checkpoint, job.output_path, job.output_format)
    rejected_path = _write_rejections(checkpoint, job.output_path)
    summary = _summary(job, prepared, result, rejected_path, gateway)
    summary.grounding = grounding_report(checkpoint)
    if job.options.evaluate:
        summary.quality, summary.report_path = await _grade(job, prepared, checkpoint, summary, counters)
        _count_usage(summary, gateway)  # the judge's calls are billed too
    checkpoint.remove()
    return summary


def _nothing_delivered(job: AdaptJob, checkpoint: Checkpoint, failure: str) -> RunFailedError:
    """The error of a run whose every row was rejected: no output file, the rejected rows written.

    The checkpoint goes too: the run is over, and a rerun after fixing the cause must not replay it.
    """
    rejected_path = _write_rejections(checkpoint, job.output_path)
    checkpoint.remove()
    return RunFailedError(
        f"{failure}. No output was written; the rejected rows and their reasons are in {rejected_path}"
    )


#: The batch journal's file name in a run's checkpoint folder (`datamill.llm.batch.journal`).
BATCH_JOURNAL = "batches.sqlite"


def batch_journal_path(location: Location, data_dir: Path) -> Path:
    """Where a run's batch journal lives: in its checkpoint folder, or in the data folder for a remote one.

    SQLite needs a local file, so a checkpoint at an fsspec URL gets a journal named after its URL.
    """
    if not is_remote(location):
        return Path(str(location).removeprefix("file://")) / BATCH_JOURNAL
    digest = hashlib.sha256(str(location).encode()).hexdigest()[:24]
    return data_dir / "batches" / f"run-{digest}.sqlite"


def adapt_file(
    job: AdaptJob, body: Mapping[str, Any], *, settings: Settings | None = None, **kwargs: Any
) -> AdaptSummary:
    """Blocking form of :func:`adapt_file_async`, on the event loop the settings choose."""
    settings = settings or Settings.from_env()
    return event_loop.run(adapt_file_async(job, body, settings=settings, **kwargs), settings.event_loop)


async def _plan(job: AdaptJob, body: Mapping[str, Any], settings: Settings, gateway: Gateway) -> PreparedRun:
    request = parse_adapt_request(body)
    model = job.model or settings.model or gateway.default_model
    policy = FetchPolicy.with_allowed(settings.fetch_allow)
    return await plan_run(
        ADAPT,
        _source(job),
        request,
        model,
        job.options,
        gateway,
        settings.data_dir,
        fetch_policy=policy,
        custom_steps=job.steps,
    )


def _source(job: AdaptJob) -> RunSource:
    return RunSource(job.input_path, job.input_format, job.local_image_files)


def rejected_path_for(output_path: Path) -> Path:
    """Where the rejected rows of an output file go: ``<name>.rejected.jsonl`` beside it."""
    return output_path.with_name(f"{output_path.stem}.rejected.jsonl")


def report_paths(output_path: Path) -> tuple[Path, Path]:
    """``<stem>.evaluation.json`` and ``<stem>.report.html`` beside the output file."""
    return (
        output_path.with_name(f"{output_path.stem}.evaluation.json"),
        output_path.with_name(f"{output_path.stem}.report.html"),
    )


def _write_rejections(checkpoint: Checkpoint, output_path: Path) -> str | None:
    path = rejected_path_for(output_path)
    if write_rejections(checkpoint, path):
        return str(path)
    path.unlink()
    return None


async def _grade(
    job: AdaptJob,
    prepared: PreparedRun,
    checkpoint: Checkpoint,
    summary: AdaptSummary,
    counters: RunCounters | None = None,
) -> tuple[dict[str, Any] | None, str]:
    """Grade the run, write the JSON results and the HTML report; return the quality and the page's path."""
    source = _source(job)
    grade = await grade_run(prepared, source, checkpoint, summary.rejections_by_step, counters)
    if grade.error is not None:
        raise grade.error
    json_path, html_path = report_paths(job.output_path)
    rows = {"in": summary.rows_in, "out": summary.rows_out, "rejected": summary.rows_rejected}
    write_report(
        Folder(job.output_path.parent),
        (json_path.name, html_path.name),
        grade,
        title=f"datamill: {job.input_path.name} → {job.output_path.name}",
        plan_summary=plan_summary(prepared, source, rows, grade),
        estimate_vs_actual=summary.estimate_vs_actual,
    )
    summary.evaluation_status = grade.status
    if grade.evaluation is not None:  # a local user may grade with judge prompts of their own: say so
        note = overridden_prompts_note(grade.evaluation.judge.get("overridden_prompts") or {})
        summary.notes += [note] if note else []
    quality = grade.report.get("quality")
    return (quality if isinstance(quality, dict) else None), str(html_path)


def _summary(
    job: AdaptJob, prepared: PreparedRun, result: AdaptResult, rejected_path: str | None, gateway: Gateway
) -> AdaptSummary:
    total = gateway.usage.total
    estimate = prepared.estimate
    summary = AdaptSummary(
        input_path=str(job.input_path),
        output_path=str(job.output_path),
        rejected_path=rejected_path,
        report_path=None,
        model=prepared.model.name,
        steps=prepared.steps.step_names,
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
        estimate=estimate.to_dict() if estimate is not None else None,
        notes=list(prepared.notes),
    )
    _count_usage(summary, gateway)
    if estimate is not None:
        summary.estimate_vs_actual = compare(estimate, summary.to_dict(), rows_out=result.rows_out)
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
