"""Adapt a dataset file: validate, plan, stream through the steps, write the output and the rejected rows."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from datamill.api.settings import Settings
from datamill.core.adapt_request import parse_adapt_request
from datamill.core.errors import ValidationError
from datamill.core.mapping import check_columns
from datamill.dataio import count_rows, open_dataset, open_writer
from datamill.llm.cache import SqliteResponseCache
from datamill.llm.gateway import Gateway
from datamill.llm.routing import Routing
from datamill.pipelines.adapt import RunCounters, public_row, run_adaptation
from datamill.pipelines.plan import plan_adaptation
from datamill.steps.base import Rejection


@dataclass
class AdaptSummary:
    """What a finished adaptation reports: rows, calls, cache hits, tokens, cost and time."""

    input_path: str
    output_path: str
    rejected_path: str | None
    model: str
    steps: list[str]
    rows_in: int
    rows_selected: int
    rows_out: int
    rows_rejected: int
    rejections_by_step: dict[str, int]
    calls: int
    cache_hits: int
    input_tokens: int
    output_tokens: int
    thinking_tokens: int
    cost_usd: float
    elapsed_s: float
    usage_by_step: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class AdaptJob:
    """Everything one adaptation of a file needs besides the wire-shaped request body."""

    input_path: Path
    output_path: Path
    model: str | None = None
    input_format: str | None = None
    output_format: str | None = None
    seed: int = 0
    use_cache: bool = True


async def adapt_file_async(
    job: AdaptJob,
    body: Mapping[str, Any],
    *,
    settings: Settings | None = None,
    gateway: Gateway | None = None,
    counters: RunCounters | None = None,
) -> AdaptSummary:
    """Adapt ``job.input_path`` into ``job.output_path`` as the run/adapt ``body`` describes.

    ``body`` has the wire shape of the Adaption API's run/adapt request (column_mapping, recipe_specification,
    job_specification, brand_controls, ...) and goes through the same validation as every other entry point.

    Raises:
        ValidationError: a bad request, or a mapping that names columns the file does not have.
        DataFormatError: an unreadable input file.
        ModelError / ConfigError: a model problem that would fail every row.
    """
    request = parse_adapt_request(body)
    if request.estimate:
        raise ValidationError.of("estimate", "estimates are not supported by this version yet")
    settings = settings or Settings.from_env()
    with open_dataset(job.input_path, format=job.input_format) as reader:
        if request.column_mapping is not None:
            check_columns(request.column_mapping, reader.columns)
    total = count_rows(job.input_path, format=job.input_format)
    own_gateway = gateway is None
    gateway = gateway or _make_gateway(settings, job.use_cache)
    try:
        handle = gateway.model(job.model or settings.model or gateway.routing.default_model)
        plan = plan_adaptation(request, handle, total_rows=total, seed=job.seed)
        with open_dataset(job.input_path, format=job.input_format) as reader:
            with open_writer(job.output_path, format=job.output_format) as writer:
                result = await run_adaptation(reader, plan, writer, counters=counters)
        rejected_path = _write_rejections(job.output_path, result.rejections)
        return _summary(job, handle.name, plan.step_names, result, rejected_path, gateway)
    finally:
        if own_gateway:
            await gateway.aclose()


def adapt_file(job: AdaptJob, body: Mapping[str, Any], **kwargs: Any) -> AdaptSummary:
    """Blocking form of :func:`adapt_file_async`."""
    return asyncio.run(adapt_file_async(job, body, **kwargs))


def rejected_path_for(output_path: Path) -> Path:
    """Where the rejected rows of an output file go: ``<name>.rejected.jsonl`` beside it."""
    return output_path.with_name(f"{output_path.stem}.rejected.jsonl")


def _make_gateway(settings: Settings, use_cache: bool) -> Gateway:
    routing = Routing.load(settings.routes_path)
    cache = None
    if use_cache:
        settings.cache_path.parent.mkdir(parents=True, exist_ok=True)
        cache = SqliteResponseCache(settings.cache_path)
    return Gateway(routing, cache=cache)


def _write_rejections(output_path: Path, rejections: list[Rejection]) -> str | None:
    path = rejected_path_for(output_path)
    if not rejections:
        path.unlink(missing_ok=True)
        return None
    rows = [
        {"row_number": r.row.get("_row"), "step": r.step, "reason": r.reason, "row": public_row(r.row)}
        for r in rejections
    ]
    with open_writer(path, format="jsonl") as writer:
        writer.write_batch(pa.Table.from_pylist(rows))
    return str(path)


def _summary(
    job: AdaptJob, model: str, steps: list[str], result: Any, rejected_path: str | None, gateway: Gateway
) -> AdaptSummary:
    ledger = gateway.usage
    total = ledger.total
    return AdaptSummary(
        input_path=str(job.input_path),
        output_path=str(job.output_path),
        rejected_path=rejected_path,
        model=model,
        steps=steps,
        rows_in=result.rows_in,
        rows_selected=result.rows_selected,
        rows_out=result.rows_out,
        rows_rejected=len(result.rejections),
        rejections_by_step=result.rejections_by_step,
        calls=total.calls,
        cache_hits=total.cache_hits,
        input_tokens=total.usage.input_tokens,
        output_tokens=total.usage.output_tokens,
        thinking_tokens=total.usage.thinking_tokens,
        cost_usd=total.cost_usd,
        elapsed_s=result.elapsed_s,
        usage_by_step=ledger.snapshot().get("by_tag", {}),
    )
