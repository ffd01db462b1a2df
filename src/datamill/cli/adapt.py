"""``datamill adapt`` and ``datamill demo``: adapt a dataset file from the command line."""

from __future__ import annotations

import asyncio
import json
from importlib import resources
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from datamill.api.adapt import AdaptJob, AdaptSummary, adapt_file_async
from datamill.api.settings import Settings
from datamill.cli.errors import handle_errors
from datamill.cli.progress import print_summary, with_progress
from datamill.core.errors import ValidationError
from datamill.llm.cache import SqliteResponseCache
from datamill.llm.gateway import Gateway
from datamill.llm.routing import Routing
from datamill.pipelines.adapt import RunCounters

RECIPE_ALIASES = {
    "dedup": "deduplication",
    "deduplication": "deduplication",
    "rephrase": "prompt_rephrase",
    "prompt_rephrase": "prompt_rephrase",
    "reasoning": "reasoning_traces",
    "reasoning_traces": "reasoning_traces",
    "metadata": "prompt_metadata_injection",
    "prompt_metadata_injection": "prompt_metadata_injection",
}
LENGTHS = ("minimal", "concise", "detailed", "extensive")


def parse_recipes(value: str | None) -> dict[str, bool] | None:
    """``--recipes dedup,rephrase`` → every known recipe set on or off; ``none`` turns all off."""
    if value is None:
        return None
    names = [v.strip().lower() for v in value.split(",") if v.strip()]
    chosen = set()
    for name in names:
        if name == "none":
            continue
        if name not in RECIPE_ALIASES:
            raise ValidationError.of(
                "recipe_specification.recipes",
                f"unknown recipe {name!r}; choose from {', '.join(sorted(RECIPE_ALIASES))} or 'none'",
            )
        chosen.add(RECIPE_ALIASES[name])
    return {recipe: recipe in chosen for recipe in sorted(set(RECIPE_ALIASES.values()))}


def build_body(
    *,
    prompt: str | None,
    completion: str | None,
    context: tuple[str, ...],
    universal_prompt: str | None,
    recipes: str | None,
    blueprint: str | None,
    length: str | None,
    max_rows: int | None,
) -> dict[str, Any]:
    """The run/adapt request body, in the wire shape every entry point validates the same way."""
    mapping: dict[str, Any] = {}
    for key, value in (
        ("prompt", prompt),
        ("completion", completion),
        ("universal_prompt", universal_prompt),
    ):
        if value is not None:
            mapping[key] = value
    if context:
        mapping["context"] = list(context)
    body: dict[str, Any] = {"column_mapping": mapping}
    recipe_flags = parse_recipes(recipes)
    if recipe_flags is not None:
        body["recipe_specification"] = {"recipes": recipe_flags}
    brand: dict[str, Any] = {}
    if blueprint is not None:
        brand["blueprint"] = _read_blueprint(blueprint)
    if length is not None:
        brand["length"] = length
    if brand:
        body["brand_controls"] = brand
    if max_rows is not None:
        body["job_specification"] = {"max_rows": max_rows}
    return body


def _read_blueprint(value: str) -> str:
    """``@path`` reads the blueprint from a file; anything else is the blueprint text."""
    if value.startswith("@"):
        path = Path(value[1:])
        if not path.is_file():
            raise ValidationError.of("brand_controls.blueprint", f"blueprint file {path} does not exist")
        return path.read_text(encoding="utf-8")
    return value


async def _run(
    job: AdaptJob, body: dict[str, Any], routes: Path | None, quiet: bool, console: Console
) -> AdaptSummary:
    settings = Settings.from_env()
    routing = Routing.load(routes or settings.routes_path)
    cache = None
    if job.use_cache:
        settings.cache_path.parent.mkdir(parents=True, exist_ok=True)
        cache = SqliteResponseCache(settings.cache_path)
    counters = RunCounters()
    async with Gateway(routing, cache=cache) as gateway:
        work = adapt_file_async(job, body, settings=settings, gateway=gateway, counters=counters)
        return await with_progress(work, counters, gateway, console, enabled=not quiet)


_common_options = [
    click.option("--model", help="Model name (see `datamill models`); default: the routing file's default."),
    click.option(
        "--routes", type=click.Path(path_type=Path), help="A routing file to add to the shipped one."
    ),
    click.option("--max-rows", type=int, help="Adapt a seeded random sample of at most this many rows."),
    click.option("--seed", type=int, default=0, show_default=True, help="Seed for sampling."),
    click.option("--no-cache", is_flag=True, help="Do not read or write the response cache."),
    click.option(
        "--batch-size",
        type=click.IntRange(min=1),
        default=256,
        show_default=True,
        help="Rows per batch; each finished batch is checkpointed.",
    ),
    click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON."),
    click.option("-q", "--quiet", is_flag=True, help="No progress bar."),
]


def _with_common(func: Any) -> Any:
    for option in reversed(_common_options):
        func = option(func)
    return func


@click.command("adapt")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--prompt", help="Column holding the prompt (prompt mode).")
@click.option("--completion", help="Column holding an existing completion to improve on.")
@click.option("--context", multiple=True, help="A context column (repeat for several).")
@click.option("--universal-prompt", help="One instruction for every row (needs --context).")
@click.option("--recipes", help="Comma-separated recipes to run: dedup, rephrase (or 'none').")
@click.option("--blueprint", help="System prompt for style and voice; @FILE reads it from a file.")
@click.option("--length", type=click.Choice(LENGTHS), help="Target length of completions.")
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True, help="Output file.")
@click.option("--format", "output_format", help="Output format (csv, json, jsonl, parquet); default from -o.")
@click.option("--input-format", help="Input format when the extension does not say it.")
@_with_common
@handle_errors
def adapt_command(file: Path, output: Path, **options: Any) -> None:
    """Adapt FILE: map columns, deduplicate, rephrase prompts and write completions, into -o OUTPUT."""
    body = build_body(
        prompt=options["prompt"],
        completion=options["completion"],
        context=options["context"],
        universal_prompt=options["universal_prompt"],
        recipes=options["recipes"],
        blueprint=options["blueprint"],
        length=options["length"],
        max_rows=options["max_rows"],
    )
    job = AdaptJob(
        input_path=file,
        output_path=output,
        model=options["model"],
        input_format=options["input_format"],
        output_format=options["output_format"],
        seed=options["seed"],
        use_cache=not options["no_cache"],
        batch_size=options["batch_size"],
    )
    _execute(job, body, options)


@click.command("demo")
@click.option(
    "-o", "--output", type=click.Path(path_type=Path), default=Path("out/demo.jsonl"), show_default=True
)
@_with_common
@handle_errors
def demo_command(output: Path, **options: Any) -> None:
    """Adapt the bundled sample (customer-support questions) with the embedded defaults."""
    sample = resources.files("datamill.samples") / "support.csv"
    with resources.as_file(sample) as path:
        body = build_body(
            prompt="question",
            completion="answer",
            context=("product",),
            universal_prompt=None,
            recipes="dedup,rephrase",
            blueprint=(
                "You are Acme's support assistant: friendly, precise, and brief. "
                "Give the steps the customer needs and nothing else."
            ),
            length="concise",
            max_rows=options["max_rows"],
        )
        job = AdaptJob(
            Path(path),
            output,
            model=options["model"],
            seed=options["seed"],
            use_cache=not options["no_cache"],
        )
        _execute(job, body, options)


def _execute(job: AdaptJob, body: dict[str, Any], options: dict[str, Any]) -> None:
    console = Console(stderr=True)
    job.output_path.parent.mkdir(parents=True, exist_ok=True)
    quiet = options["quiet"] or options["as_json"]
    summary = asyncio.run(_run(job, body, options["routes"], quiet, console))
    if options["as_json"]:
        click.echo(json.dumps(summary.to_dict(), indent=2))
    else:
        print_summary(summary, Console())
