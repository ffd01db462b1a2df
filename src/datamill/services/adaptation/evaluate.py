"""After a run: grade a sample before and after, and write the evaluation JSON and the HTML report.

`grade_run` is the one grading of every entry point: with evaluation off it is ``skipped``; a judge that
cannot work (no key, unknown model, a request it cannot serve) makes a ``failed`` grade that carries the
error, so the server fails the evaluation and not the run, and the command line reports the error. Whatever
its status, a grounded run's ``raw_results`` carry its ``grounding`` figures (`grounding_report`: rows
grounded, citation recall and precision), which the HTML report's header shows too.
`write_report` is the one report writer: the evaluation as JSON and the HTML page, into a folder (beside the
output file on the command line, the run's location on the server).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import orjson

from datamill.core.errors import ConfigError, ModelError, ValidationError
from datamill.dataio import open_dataset
from datamill.dataio.folder import Folder
from datamill.llm.judge_choice import GENERATOR, OTHER_FAMILY, RUN_SETTING, JudgeChoice
from datamill.pipelines.adapt import RunCounters
from datamill.pipelines.checkpoint import CheckpointFiles
from datamill.pipelines.evaluation import EvaluationReport, evaluate
from datamill.pipelines.grounding_report import grounding_lines, grounding_report
from datamill.pipelines.report_html import render_report
from datamill.services.adaptation.prepare import PreparedRun, RunSource
from datamill.steps.base import Row, StepContext
from datamill.steps.mapping import MapColumns
from datamill.steps.sample import SampleRows
from datamill.text.langid import FastLangDetector

#: Rejection step names that are duplicate removals (the evaluation's duplicate-rate penalty).
DEDUP_STEPS = ("deduplication", "near_deduplication", "semantic_deduplication")


@dataclass(frozen=True)
class Grade:
    """A run's grade: the evaluation's status and stored report, the report itself, the judge's error."""

    status: str
    report: dict[str, Any]
    evaluation: EvaluationReport | None = None
    error: Exception | None = None


async def grade_run(
    prepared: PreparedRun,
    source: RunSource,
    checkpoint: CheckpointFiles,
    rejections_by_step: Mapping[str, int],
    counters: RunCounters | None = None,
) -> Grade:
    """Judge a sample of the run's rows before and after (module docstring); writes nothing.

    `counters` are told the phase (``evaluating``) and the judgements made, for a progress display.
    """
    grounding = {"grounding": found} if (found := grounding_report(checkpoint)) is not None else {}
    if counters is not None:
        counters.phase = "evaluating"
    if not prepared.plan.options.evaluate:
        skipped = {"reason": "evaluation is off"} | grounding
        return Grade("skipped", {"status": "skipped", "quality": None, "raw_results": skipped})
    try:
        report = await _judge(prepared, source, checkpoint, rejections_by_step, counters)
    except (ConfigError, ModelError, ValidationError) as exc:
        failed = {"status": "failed", "quality": None, "raw_results": {"error": str(exc)} | grounding}
        return Grade("failed", failed, error=exc)
    judged = report.to_dict()
    judged["raw_results"] |= grounding
    return Grade(report.status, judged, report)


def write_report(
    folder: Folder,
    names: tuple[str, str],
    grade: Grade,
    *,
    title: str,
    plan_summary: Mapping[str, Any],
    estimate_vs_actual: Mapping[str, Any] | None = None,
) -> None:
    """Write the grade's report as JSON (``names[0]``) and, when judged, the HTML page (``names[1]``)."""
    json_name, html_name = names
    folder.put(json_name, orjson.dumps(grade.report, default=str, option=orjson.OPT_INDENT_2))
    if grade.evaluation is not None:
        html = render_report(
            grade.evaluation, title=title, plan_summary=plan_summary, estimate_vs_actual=estimate_vs_actual
        )
        folder.put(html_name, html.encode("utf-8"))


def plan_summary(
    prepared: PreparedRun, source: RunSource, rows: Mapping[str, int], grade: Grade | None = None
) -> dict[str, Any]:
    """The run's plan as the report's header shows it, with the grade's grounding figures when it has them."""
    plan = prepared.plan
    raw = grade.report.get("raw_results") if grade is not None else None
    grounding = raw.get("grounding") if isinstance(raw, dict) else None
    return {
        "input": str(source.path),
        "model": plan.model,
        "judge": plan.judge,
        "steps": " → ".join(prepared.steps.step_names),
        "rows in / out / rejected": f"{rows['in']} / {rows['out']} / {rows['rejected']}",
        "options": ", ".join(f"{k}={v}" for k, v in asdict(plan.options).items()),
    } | grounding_lines(grounding)


async def _judge(
    prepared: PreparedRun,
    source: RunSource,
    checkpoint: CheckpointFiles,
    rejections_by_step: Mapping[str, int],
    counters: RunCounters | None = None,
) -> EvaluationReport:
    request, options = prepared.plan.request, prepared.plan.options
    brand = request.brand_controls
    return await evaluate(
        # Callables: the evaluation reads the rows in passes and keeps only the sampled ones.
        lambda: _before_rows(prepared, source),
        lambda: _after_rows(checkpoint),
        prepared.judge,
        blueprint=brand.blueprint,
        length_range=brand.length.token_range if brand.length is not None else None,
        sample_size=options.eval_sample_size,
        seed=options.seed,
        dedup_stats={k: v for k, v in rejections_by_step.items() if k in DEDUP_STEPS},
        rejection_stats=dict(rejections_by_step),
        language_detector=FastLangDetector() if request.language_expansion is not None else None,
        counters=counters,
        judge_choice=judge_choice(prepared),
    )


def judge_choice(prepared: PreparedRun) -> JudgeChoice:
    """How the run's judge was chosen (`datamill.llm.judge_choice`), for the report."""
    named = prepared.plan.options.judge_model
    generator = prepared.model.name
    if named:
        return JudgeChoice(prepared.judge.name, generator, RUN_SETTING)
    rule = GENERATOR if prepared.judge.name == generator else OTHER_FAMILY
    return JudgeChoice(prepared.judge.name, generator, rule)


def _before_rows(prepared: PreparedRun, source: RunSource) -> Iterator[Row]:
    """The source rows as the run saw them before any step changed them: mapped and sampled."""
    steps = [s for s in prepared.steps.batch_steps if isinstance(s, MapColumns | SampleRows)]
    ctx = StepContext()
    number = 1
    batch_size = prepared.plan.options.batch_size
    with open_dataset(source.path, format=source.format, batch_size=batch_size) as reader:
        for batch in reader:
            rows = batch.to_pylist()
            for row in rows:
                row["_row"] = number
                number += 1
            for step in steps:
                rows = step.process_batch(rows, ctx)
            yield from rows


def _after_rows(checkpoint: CheckpointFiles) -> Iterator[Row]:
    for table in checkpoint.iter_output(internal=True):
        yield from table.to_pylist()
