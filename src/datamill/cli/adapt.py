"""``datamill adapt`` and ``datamill demo``: adapt a dataset file from the command line."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import click
import yaml
from rich.console import Console

from datamill.cli.adapt_body import LENGTHS, body_from_flags, options_from_flags
from datamill.cli.errors import handle_errors
from datamill.cli.process import command_settings, quiet_gc, use_lean_memory
from datamill.cli.progress import print_estimate, print_summary, with_progress
from datamill.core.errors import ValidationError
from datamill.core.run_config import RunConfig, merge_bodies, parse_run_config
from datamill.core.run_options import RunOptions
from datamill.dataio import WRITE_FORMATS, detect_format
from datamill.llm import event_loop
from datamill.pipelines.adapt import RunCounters
from datamill.pipelines.estimate import Estimate
from datamill.services.adaptation.adapt import (
    AdaptJob,
    AdaptSummary,
    adapt_file_async,
    estimate_file_async,
    make_gateway,
)
from datamill.services.settings.entry import Settings
from datamill.steps.prompt_step import load_step_file

F = TypeVar("F", bound=Callable[..., Any])

DEMO_BLUEPRINT = (
    "You are Acme's support assistant: friendly, precise, and brief. Give the steps the customer needs and "
    "nothing else."
)

_run_options = [
    click.option(
        "--model",
        help="Model name (see `datamill models`); default: DATAMILL_MODEL, else the routing file's default.",
    ),
    click.option(
        "--judge-model",
        help="Model for judges (pairs, safety, evaluation); default: the first of the routing file's "
        "judge_models of another family than --model, else --model.",
    ),
    click.option(
        "--routes", type=click.Path(path_type=Path), help="A routing file to add to the shipped one."
    ),
    click.option(
        "--max-rows", type=click.IntRange(min=1), help="Adapt a seeded random sample of this many rows."
    ),
    click.option("--seed", type=click.IntRange(min=0), help="Seed of every random choice (default 0)."),
    click.option(
        "--batch-size", type=click.IntRange(min=1), help="Rows per checkpointed batch (default 256)."
    ),
    click.option(
        "--evaluate/--no-eval", "evaluate", default=None, help="Grade before/after and write the report."
    ),
    click.option(
        "--eval-sample-size", type=click.IntRange(min=1), help="Rows the evaluation judges (default 50)."
    ),
    click.option(
        "--estimate", "estimate_only", is_flag=True, help="Print the plan and its estimate; run nothing."
    ),
    click.option("--no-cache", is_flag=True, help="Do not read or write the response cache."),
    click.option(
        "--batch",
        is_flag=True,
        help="Send model calls through the providers' batch APIs: half price, answered within hours, "
        "resumable.",
    ),
    click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON."),
    click.option("-q", "--quiet", is_flag=True, help="No progress bar."),
]

_adapt_options = [
    click.option("--config", type=click.Path(path_type=Path), help="A YAML run config (flags override it)."),
    click.option("--prompt", help="Column holding the prompt (prompt mode)."),
    click.option("--completion", help="Column holding an existing completion to improve on."),
    click.option("--context", multiple=True, help="A context column (repeat for several)."),
    click.option("--universal-prompt", help="One instruction for every row (needs --context or --image)."),
    click.option("--chat", help="Column holding a conversation (chat mode: a list of messages or its JSON)."),
    click.option("--image", help="Column holding an image (URL, file path, data URI or bytes)."),
    click.option(
        "--recipes", help="Recipes to run: dedup, rephrase, reasoning, metadata (comma-separated; 'none')."
    ),
    click.option("--training-type", type=click.Choice(["instruction_dataset", "preference_pairs"])),
    click.option(
        "--preference-mode",
        type=click.Choice(["candidates", "revision", "flaw"]),
        help="How preference pairs are made: rank sampled candidates (default), revise the answer "
        "minimally, or inject a flaw.",
    ),
    click.option(
        "--preference-candidates",
        type=click.IntRange(2, 8),
        help="Answers ranked per row in candidates mode, the completion included (3).",
    ),
    click.option(
        "--preference-model",
        "preference_models",
        multiple=True,
        help="Another model that writes one candidate answer (repeat for several).",
    ),
    click.option(
        "--preference-min-margin",
        type=click.FloatRange(0, 2),
        help="Smallest judged margin of chosen over rejected, 0-2, to keep a pair (1.0).",
    ),
    click.option("--blueprint", help="System prompt for style and voice; @FILE reads it from a file."),
    click.option("--length", type=click.Choice(LENGTHS), help="Target length of completions."),
    click.option("--safety", help="Safety categories whose violations remove rows (e.g. violence,hate)."),
    click.option(
        "--keep-unsafe-rows",
        "remove_unsafe_rows",
        flag_value=False,
        default=None,
        help="Flag safety violations in columns but keep the rows.",
    ),
    click.option("--translate", help="Add translated rows: target languages, e.g. es,fr."),
    click.option("--localize", help="Add localized rows: COUNTRY:language pairs, e.g. MX:es,FR:fr."),
    click.option("--sample-rate", type=float, help="Fraction of rows to translate or localize (0.01–1)."),
    click.option(
        "--hallucination-mitigation", is_flag=True, default=None, help="Ground answers in documents."
    ),
    click.option(
        "--grounding-docs", multiple=True, type=click.Path(path_type=Path), help="Documents to ground on."
    ),
    click.option(
        "--grounding-top-k", type=click.IntRange(min=1), help="Passages per row when grounding (3)."
    ),
    click.option(
        "--grounding-min-relevance",
        type=click.FloatRange(0, 1),
        help="Share of the query a passage must cover to ground an answer (0.25).",
    ),
    click.option(
        "--grounding-text-column", help="Field or column of the text in .jsonl/.csv documents (text)."
    ),
    click.option(
        "--grounding-source-column", help="Field or column naming a .jsonl/.csv record's source (a URL)."
    ),
    click.option(
        "--grounding-index",
        type=click.Path(path_type=Path),
        help="The grounding index file (default: one per set of documents in the data directory).",
    ),
    click.option(
        "--near-dedup/--no-near-dedup", default=None, help="MinHash-LSH near-duplicate removal (on)."
    ),
    click.option(
        "--semantic-dedup", is_flag=True, default=None, help="Embedding-based duplicate removal (off)."
    ),
    click.option(
        "--rephrase-check/--no-rephrase-check", default=None, help="Revert rephrases that drift (on)."
    ),
    click.option(
        "--translation-judge/--no-translation-judge",
        default=None,
        help="The judge checks each translation for changed details: numbers, names, dates, negations (off).",
    ),
    click.option(
        "--step",
        "step_files",
        multiple=True,
        type=click.Path(path_type=Path),
        help="A step of your own: a YAML file with name, template, output (repeat; docs/custom-steps.md).",
    ),
    click.option(
        "--templates",
        type=click.Path(path_type=Path),
        help="A folder of prompt templates overriding the built-in ones by name (DATAMILL_TEMPLATES).",
    ),
    click.option("-o", "--output", type=click.Path(path_type=Path), help="Output file."),
    click.option(
        "--format", "output_format", help="Output format (csv, json, jsonl, parquet); default from -o."
    ),
    click.option("--input-format", help="Input format when the extension does not say it."),
]


def _apply(options: list[Any]) -> Callable[[F], F]:
    def decorate(func: F) -> F:
        for option in reversed(options):
            func = option(func)
        return func

    return decorate


@click.command("adapt")
@click.argument("file", type=click.Path(path_type=Path), required=False)
@_apply(_adapt_options)
@_apply(_run_options)
@handle_errors
def adapt_command(file: Path | None, **flags: Any) -> None:
    """Adapt FILE into -o OUTPUT: dedup, expand, rephrase, complete, reason, pair, review and grade."""
    config = _load_config(flags.get("config"))
    input_path = file or _config_path(config, "input")
    output_path = flags.get("output") or _config_path(config, "output")
    if input_path is None:
        raise ValidationError.of("input", "give the FILE to adapt (or `input:` in the --config file)")
    if output_path is None:
        raise ValidationError.of("output", "give -o OUTPUT (or `output:` in the --config file)")
    body = merge_bodies(config.body, body_from_flags(flags))
    job = AdaptJob(
        input_path=input_path,
        output_path=output_path,
        model=flags.get("model") or config.io.get("model"),
        input_format=flags.get("input_format") or config.io.get("input_format"),
        output_format=flags.get("output_format") or config.io.get("output_format"),
        use_cache=not flags["no_cache"],
        options=options_from_flags(config.options, flags),
        batch=flags["batch"],
        steps=tuple(load_step_file(Path(p)) for p in (*config.steps, *(flags.get("step_files") or ()))),
        templates=flags.get("templates") or _config_path(config, "templates"),
    )
    routes = flags.get("routes") or _config_path(config, "routes")
    _execute(job, body, {**flags, "routes": routes})


@click.command("demo")
@click.option(
    "-o", "--output", type=click.Path(path_type=Path), default=Path("out/demo.jsonl"), show_default=True
)
@_apply(_run_options)
@handle_errors
def demo_command(output: Path, **flags: Any) -> None:
    """Adapt the bundled sample (customer-support questions) with the embedded defaults."""
    sample = resources.files("datamill.samples") / "support.csv"
    body = {
        "column_mapping": {"prompt": "question", "completion": "answer", "context": ["product"]},
        "recipe_specification": {
            "recipes": {"deduplication": True, "prompt_rephrase": True, "prompt_metadata_injection": True}
        },
        "brand_controls": {"blueprint": DEMO_BLUEPRINT, "length": "concise"},
    }
    if flags.get("max_rows") is not None:
        body["job_specification"] = {"max_rows": flags["max_rows"]}
    # The bundled model judges slowly (one call at a time on the CPU, each under a JSON grammar): grade three
    # rows by default (a quality and a style call for each side, and a comparison in both orders).
    options = options_from_flags(RunOptions(eval_sample_size=3), flags)
    with resources.as_file(sample) as path:
        job = AdaptJob(
            Path(path),
            output,
            model=flags.get("model"),
            use_cache=not flags["no_cache"],
            options=options,
            batch=flags["batch"],
        )
        _execute(job, body, flags)


def _load_config(path: Path | None) -> RunConfig:
    if path is None:
        return RunConfig()
    if not path.is_file():
        raise ValidationError.of("config", f"config file {path} does not exist")
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ValidationError.of("config", f"{path} is not valid YAML: {exc}") from exc
    config = parse_run_config(doc)
    # Paths in a config are relative to the config file, so a config works from any directory.
    relative = ("input", "output", "routes", "templates")
    io = {k: str(path.parent / v) if k in relative else v for k, v in config.io.items()}
    docs = tuple(str(path.parent / d) for d in config.options.grounding_docs)
    index = config.options.grounding_index
    options = replace(
        config.options, grounding_docs=docs, grounding_index=str(path.parent / index) if index else None
    )
    steps = tuple(str(path.parent / step) for step in config.steps)
    return RunConfig(body=config.body, io=io, options=options, steps=steps)


def _config_path(config: RunConfig, key: str) -> Path | None:
    value = config.io.get(key)
    return Path(value) if value else None


def _execute(job: AdaptJob, body: dict[str, Any], flags: dict[str, Any]) -> None:
    console = Console(stderr=True)
    settings = command_settings()
    if flags["estimate_only"] or body.get("estimate") is True:
        estimate = event_loop.run(_estimate(job, body, settings, flags.get("routes")), settings.event_loop)
        if flags["as_json"]:
            click.echo(json.dumps(estimate.to_dict(), indent=2, default=str))
        else:
            print_estimate(estimate, Console())
        return
    # The output format is checked before the folder is made; adapt_file checks the path before any call.
    detect_format(job.output_path, job.output_format, supported=WRITE_FORMATS)
    job.output_path.parent.mkdir(parents=True, exist_ok=True)
    quiet = flags["quiet"] or flags["as_json"]
    use_lean_memory(settings)
    work = _run(job, body, settings, flags.get("routes"), quiet, console)
    with quiet_gc():
        summary = event_loop.run(work, settings.event_loop)
    if flags["as_json"]:
        click.echo(json.dumps(summary.to_dict(), indent=2, default=str))
    else:
        print_summary(summary, Console())


async def _estimate(job: AdaptJob, body: dict[str, Any], settings: Settings, routes: Path | None) -> Estimate:
    async with make_gateway(settings, use_cache=job.use_cache, routes=routes, batch=job.batch) as gateway:
        return await estimate_file_async(job, body, settings=settings, gateway=gateway)


async def _run(
    job: AdaptJob,
    body: dict[str, Any],
    settings: Settings,
    routes: Path | None,
    quiet: bool,
    console: Console,
) -> AdaptSummary:
    counters = RunCounters()
    async with make_gateway(settings, use_cache=job.use_cache, routes=routes, batch=job.batch) as gateway:
        work = adapt_file_async(job, body, settings=settings, gateway=gateway, counters=counters)
        return await with_progress(work, counters, gateway, console, enabled=not quiet)
