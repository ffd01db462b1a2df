"""After a run: grade a sample before and after; write the evaluation JSON and the HTML report."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from datamill.core.adapt_request import AdaptRequest
from datamill.dataio import open_dataset
from datamill.llm.gateway import ModelHandle
from datamill.pipelines.checkpoint import BatchCheckpoint, DirectoryCheckpoint
from datamill.pipelines.evaluation import EvaluationReport, evaluate
from datamill.pipelines.plan import AdaptPlan
from datamill.pipelines.report_html import render_report
from datamill.steps.base import Row, StepContext
from datamill.steps.mapping import MapColumns
from datamill.steps.sample import SampleRows
from datamill.text.langid import FastLangDetector

if TYPE_CHECKING:
    from datamill.services.adaptation.adapt import AdaptJob, AdaptSummary

#: Rejection step names that are duplicate removals (the evaluation's duplicate-rate penalty).
DEDUP_STEPS = ("deduplication", "near_deduplication", "semantic_deduplication")


def report_paths(output_path: Path) -> tuple[Path, Path]:
    """``<stem>.evaluation.json`` and ``<stem>.report.html`` beside the output file."""
    return (
        output_path.with_name(f"{output_path.stem}.evaluation.json"),
        output_path.with_name(f"{output_path.stem}.report.html"),
    )


async def evaluate_run(
    job: AdaptJob,
    request: AdaptRequest,
    plan: AdaptPlan,
    judge: ModelHandle,
    checkpoint: DirectoryCheckpoint,
    summary: AdaptSummary,
) -> tuple[dict[str, Any] | None, str]:
    """Judge the run's sample, write the JSON results and the HTML report; return the quality and its path."""
    report = await judge_run(job, request, plan, judge, checkpoint, summary.rejections_by_step)
    json_path, html_path = report_paths(job.output_path)
    result = report.to_dict()
    json_path.write_bytes(orjson.dumps(result, default=str, option=orjson.OPT_INDENT_2))
    plan_summary = {
        "input": str(job.input_path),
        "model": summary.model,
        "judge": judge.name,
        "steps": " → ".join(summary.steps),
        "rows in / out / rejected": f"{summary.rows_in} / {summary.rows_out} / {summary.rows_rejected}",
        "options": ", ".join(f"{k}={v}" for k, v in asdict(job.options).items()),
    }
    html = render_report(
        report,
        title=f"datamill: {job.input_path.name} → {job.output_path.name}",
        plan_summary=plan_summary,
        estimate_vs_actual=summary.estimate_vs_actual,
    )
    html_path.write_text(html, encoding="utf-8")
    quality = result.get("quality")
    return (quality if isinstance(quality, dict) else None), str(html_path)


async def judge_run(
    job: AdaptJob,
    request: AdaptRequest,
    plan: AdaptPlan,
    judge: ModelHandle,
    checkpoint: BatchCheckpoint,
    rejections_by_step: dict[str, int],
) -> EvaluationReport:
    """Judge the run's sample before and after; return the report and write nothing (the server's worker)."""
    brand = request.brand_controls
    return await evaluate(
        _before_rows(job, plan),
        _after_rows(checkpoint),
        judge,
        blueprint=brand.blueprint,
        length_range=brand.length.token_range if brand.length is not None else None,
        sample_size=job.options.eval_sample_size,
        seed=job.options.seed,
        dedup_stats={k: v for k, v in rejections_by_step.items() if k in DEDUP_STEPS},
        rejection_stats=rejections_by_step,
        language_detector=FastLangDetector() if request.language_expansion is not None else None,
    )


def _before_rows(job: AdaptJob, plan: AdaptPlan) -> Iterator[Row]:
    """The source rows as the run saw them before any step changed them: mapped and sampled."""
    steps = [s for s in plan.batch_steps if isinstance(s, MapColumns | SampleRows)]
    ctx = StepContext()
    number = 1
    with open_dataset(job.input_path, format=job.input_format, batch_size=job.options.batch_size) as reader:
        for batch in reader:
            rows = batch.to_pylist()
            for row in rows:
                row["_row"] = number
                number += 1
            for step in steps:
                rows = step.process_batch(rows, ctx)
            yield from rows


def _after_rows(checkpoint: BatchCheckpoint) -> Iterator[Row]:
    for table in checkpoint.iter_output(internal=True):
        yield from table.to_pylist()
