"""Adapt a dataset file: validate, plan, stream through the steps, write the output and the rejected rows."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson

from datamill.api.settings import Settings
from datamill.core.adapt_request import parse_adapt_request
from datamill.core.errors import ValidationError
from datamill.core.mapping import check_columns
from datamill.dataio import count_rows, open_dataset, open_writer
from datamill.llm.cache import SqliteResponseCache
from datamill.llm.gateway import Gateway
from datamill.llm.routing import Routing
from datamill.pipelines.adapt import RunCounters, run_adaptation
from datamill.pipelines.checkpoint import DirectoryCheckpoint
from datamill.pipelines.plan import plan_adaptation


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
    batch_size: int = 256


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
    Finished batches are checkpointed under the data directory; running the same job again after an
    interruption resumes from the last finished batch.

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
        fingerprint = run_fingerprint(job, request.to_dict(), handle.name)
        checkpoint = DirectoryCheckpoint(settings.data_dir / "runs" / fingerprint[:24], fingerprint)
        with open_dataset(job.input_path, format=job.input_format, batch_size=job.batch_size) as reader:
            result = await run_adaptation(reader, plan, checkpoint, counters=counters)
        _export(checkpoint, job)
        rejected_path = _write_rejections(job.output_path, checkpoint)
        checkpoint.remove()
        return _summary(job, handle.name, plan.step_names, result, rejected_path, gateway)
    finally:
        if own_gateway:
            await gateway.aclose()


def run_fingerprint(job: AdaptJob, request: dict[str, Any], model: str) -> str:
    """What identifies a run for resuming: the input file's identity, the request, the model and the seed."""
    stat = job.input_path.stat()
    identity = {
        "input": str(job.input_path.resolve()),
        "size": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
        "input_format": job.input_format,
        "request": request,
        "model": model,
        "seed": job.seed,
        "batch_size": job.batch_size,
    }
    return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()


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
    tmp.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    tmp.replace(path)
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
        usage_by_step=ledger.snapshot().get("by_tag", {}),
    )
