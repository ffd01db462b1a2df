"""``datamill spec evaluate``: how well generated samples follow their spec, as judged by a model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from datamill.cli.errors import handle_errors
from datamill.cli.process import command_settings
from datamill.cli.progress import with_live
from datamill.llm import event_loop
from datamill.pipelines.generation_eval import DEFAULT_CONCURRENCY
from datamill.services.adaptation.adapt import make_gateway
from datamill.services.generation.evaluate import EvaluateJob, EvaluationReport, evaluate_samples_async
from datamill.services.settings.entry import Settings

_PATH = click.Path(path_type=Path)


@click.command("evaluate")
@click.argument("spec_path", metavar="SPEC", type=_PATH)
@click.option("--samples", "samples_path", type=_PATH, required=True, help="OUT.jsonl or the samples folder.")
@click.option("-o", "--output", type=_PATH, help="Write the full report (per-sample results) as JSON here.")
@click.option("--model", help="Judge model; default: DATAMILL_MODEL, else the routing file's default.")
@click.option("--concurrency", type=click.IntRange(min=1), default=DEFAULT_CONCURRENCY, show_default=True)
@click.option("--routes", type=_PATH, help="A routing file to add to the shipped one.")
@click.option("--no-cache", is_flag=True, help="Do not read or write the response cache.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
@handle_errors
def spec_evaluate_command(spec_path: Path, samples_path: Path, **flags: Any) -> None:
    """Classify every sample of --samples on every property of SPEC and compare with what was drawn."""
    job = EvaluateJob(
        spec_path,
        samples_path,
        flags.get("output"),
        flags.get("model"),
        not flags["no_cache"],
        flags["concurrency"],
    )
    settings = command_settings()
    report = event_loop.run(
        _evaluate(job, settings, flags.get("routes"), flags["quiet"]), settings.event_loop
    )
    Console().print(_table(report))
    evaluation = report.evaluation
    score = "n/a" if evaluation.conformance_score is None else f"{evaluation.conformance_score:g}/100"
    click.echo(
        f"conformance {score} over {len(evaluation.samples)} samples "
        f"({evaluation.samples_analysed} classified, judge {report.model}); "
        f"{len(evaluation.non_conformant_areas)} non-conformant areas"
        + (f"; report: {job.output_path}" if job.output_path else "")
    )


def _table(report: EvaluationReport) -> Table:
    table = Table("property", "value", "requested %", "drawn %", "observed %", "match %", "ok")
    areas = {
        (a["property_name"], a["value"]): a
        for a in report.evaluation.conformant_areas + report.evaluation.non_conformant_areas
    }
    for entry in report.evaluation.distribution_analysis:
        name = entry["property_name"]
        for value, requested in entry["requested_distributions"].items():
            area = areas.get((name, value))
            rate = area["match_rate"] if area else None
            table.add_row(
                name,
                value,
                f"{requested:g}",
                f"{entry['expected_distributions'].get(value, 0.0):g}",
                f"{entry['evaluated_distributions'].get(value, 0.0):g}",
                "-" if rate is None else f"{rate:g}",
                "-" if area is None else ("yes" if "reason" not in area else "no"),
            )
    return table


async def _evaluate(
    job: EvaluateJob, settings: Settings, routes: Path | None, quiet: bool
) -> EvaluationReport:
    async with make_gateway(settings, use_cache=job.use_cache, routes=routes) as gateway:
        work = evaluate_samples_async(job, settings=settings, gateway=gateway)
        return await with_live(work, "evaluating samples", gateway, Console(stderr=True), enabled=not quiet)
