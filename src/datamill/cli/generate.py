"""``datamill spec create|validate`` and ``datamill generate``: synthetic data from seed examples.

Flags map one to one onto the Dataframer run fields (``--revision-types`` is ``revision_types``, ...), so
the same validation and messages apply as on the wire.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from datamill.cli.errors import handle_errors
from datamill.cli.generate_eval import spec_evaluate_command
from datamill.cli.process import command_settings
from datamill.cli.progress import with_live
from datamill.llm import event_loop
from datamill.pipelines.generate import DEFAULT_CONCURRENCY, GenerationCounters, GenerationSummary
from datamill.pipelines.spec_analysis import SpecAnalysisOptions, SpecDraft
from datamill.services.adaptation.adapt import make_gateway
from datamill.services.generation.library import (
    GenerateJob,
    SpecJob,
    create_spec_async,
    generate_async,
    read_spec,
)
from datamill.services.settings.entry import Settings

_PATH = click.Path(path_type=Path)


_BATCH_HELP = (
    "Send model calls through the providers' batch APIs: half price, answered within hours, resumable."
)


@click.group("spec")
def spec_group() -> None:
    """Write and check generation specs."""


@spec_group.command("create")
@click.argument("seeds", nargs=-1, type=_PATH)
@click.option("-o", "--output", type=_PATH, required=True, help="Where to write the spec YAML.")
@click.option(
    "--model", help="Model that writes the spec; default: DATAMILL_MODEL, else the routing file's default."
)
@click.option("--objectives", help="What to generate (required without SEEDS; steers the spec with them).")
@click.option("--extrapolate-values", is_flag=True, help="Invent values beyond those in the seeds.")
@click.option("--extrapolate-axes", is_flag=True, help="Invent axes the seeds do not show.")
@click.option("--uniform", is_flag=True, help="Uniform distributions instead of learned ones.")
@click.option("--conditional", is_flag=True, help="Also write conditional distributions.")
@click.option("--seed", type=click.IntRange(min=0), default=0, help="Seed of the seed sample read (0).")
@click.option("--routes", type=_PATH, help="A routing file to add to the shipped one.")
@click.option("--no-cache", is_flag=True, help="Do not read or write the response cache.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
@handle_errors
def spec_create_command(seeds: tuple[Path, ...], output: Path, **flags: Any) -> None:
    """Analyse SEEDS (files or folders) into a spec YAML at -o OUTPUT."""
    options = SpecAnalysisOptions(
        extrapolate_values=flags["extrapolate_values"],
        extrapolate_axes=flags["extrapolate_axes"],
        generate_distributions=not flags["uniform"],
        generate_conditional_distributions=flags["conditional"] and not flags["uniform"],
        seed=flags["seed"],
    )
    job = SpecJob(seeds, output, flags.get("model"), flags.get("objectives"), options, not flags["no_cache"])
    settings = command_settings()
    quiet = flags["quiet"]
    draft = event_loop.run(_create(job, settings, flags.get("routes"), quiet), settings.event_loop)
    axes = ", ".join(f"{a.name} ({len(a.values)})" for a in draft.spec.axes) or "none"
    click.echo(f"wrote {output}: {len(draft.spec.requirements)} requirements; axes: {axes}")


@spec_group.command("validate")
@click.argument("file", type=_PATH)
@handle_errors
def spec_validate_command(file: Path) -> None:
    """Check a spec YAML file; errors name the YAML path."""
    spec = read_spec(file)
    click.echo(f"{file}: valid ({len(spec.axes)} axes)")


@click.command("generate")
@click.option("--spec", "spec_path", type=_PATH, required=True, help="The spec YAML.")
@click.option("-n", "--samples", type=int, required=True, help="Samples to deliver (1–20000).")
@click.option("-o", "--output", type=_PATH, required=True, help="OUT.jsonl, or a folder of sample files.")
@click.option("--model", help="Generation model; default: DATAMILL_MODEL, else the routing file's default.")
@click.option("--outline-model", help="Outline model; default: --model.")
@click.option("--revision-model", help="Model for revisions and the conformance gate; default: --model.")
@click.option("--revision-types", help="coherence_flow,consistency,distinguishability,conformance")
@click.option("--filtering-types", help="Quality gates: structural,conformance")
@click.option("--max-revision-cycles", type=int, help="Revision cycles (1–5; 2 when revising).")
@click.option("--skip-outline", is_flag=True, default=None, help="Draft each sample in one call.")
@click.option("--unified-multifield", is_flag=True, default=None, help="All fields of a row in one call.")
@click.option(
    "--seed-shuffling",
    help="none, sample, field or prompt (default none: the same seeds in every prompt, cacheable).",
)
@click.option(
    "--max-examples", type=int, help="Seed examples per prompt (default: as many as fit 10K tokens)."
)
@click.option("--seeds", "seed_paths", multiple=True, type=_PATH, help="Seeds to show (default: the spec's).")
@click.option("--seed", type=int, help="Seed of every random choice (0).")
@click.option("--max-tokens", type=int, help="Output cap of each draft or revision call (2048).")
@click.option(
    "--judge-model", help="Model of the conformance gate (default: the default model); best another family."
)
@click.option(
    "--novelty-threshold",
    type=float,
    help="Similarity to a seed or an earlier sample at which a candidate is regenerated (0.7; 1: off).",
)
@click.option("--concurrency", type=click.IntRange(min=1), default=DEFAULT_CONCURRENCY, show_default=True)
@click.option("--routes", type=_PATH, help="A routing file to add to the shipped one.")
@click.option("--no-cache", is_flag=True, help="Do not read or write the response cache.")
@click.option("--batch", is_flag=True, help=_BATCH_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print the run summary as JSON.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
@handle_errors
def generate_command(spec_path: Path, samples: int, output: Path, **flags: Any) -> None:
    """Generate -n samples that follow --spec into -o OUTPUT."""
    job = GenerateJob(
        spec_path,
        output,
        body_from_flags(samples, flags),
        tuple(flags["seed_paths"]) or None,
        not flags["no_cache"],
        flags["concurrency"],
        batch=flags["batch"],
    )
    settings = command_settings()
    quiet = flags["quiet"] or flags["as_json"]
    summary = event_loop.run(_generate(job, settings, flags.get("routes"), quiet), settings.event_loop)
    if flags["as_json"]:
        click.echo(json.dumps(summary.to_dict(), indent=2, default=str))
        return
    Console().print(
        f"delivered {summary.delivered} samples to {output} from {summary.candidates} candidates "
        f"(pass rate {summary.pass_rate:.0%}; rejected {summary.rejected_by_gate or 'none'}); "
        f"cost ${summary.cost_usd:.4f}"
    )


def body_from_flags(samples: int, flags: dict[str, Any]) -> dict[str, Any]:
    """The wire-shaped run body from CLI flags (absent flags are left out)."""
    body: dict[str, Any] = {"number_of_samples": samples}
    pairs = {
        "generation_model": flags.get("model"),
        "outline_model": flags.get("outline_model"),
        "revision_model": flags.get("revision_model"),
        "max_revision_cycles": flags.get("max_revision_cycles"),
        "skip_outline": flags.get("skip_outline"),
        "unified_multifield": flags.get("unified_multifield"),
        "seed_shuffling_level": flags.get("seed_shuffling"),
        "max_examples_in_prompt": flags.get("max_examples"),
        "seed": flags.get("seed"),
        "max_output_tokens": flags.get("max_tokens"),
        "novelty_threshold": flags.get("novelty_threshold"),
        "judge_model": flags.get("judge_model"),
    }
    body.update({k: v for k, v in pairs.items() if v is not None})
    for key in ("revision_types", "filtering_types"):
        if flags.get(key) is not None:
            body[key] = [t.strip() for t in str(flags[key]).split(",") if t.strip()]
    return body


async def _create(job: SpecJob, settings: Settings, routes: Path | None, quiet: bool) -> SpecDraft:
    async with make_gateway(settings, use_cache=job.use_cache, routes=routes) as gateway:
        work = create_spec_async(job, settings=settings, gateway=gateway)
        return await with_live(work, "writing the spec", gateway, Console(stderr=True), enabled=not quiet)


async def _generate(
    job: GenerateJob, settings: Settings, routes: Path | None, quiet: bool
) -> GenerationSummary:
    counters = GenerationCounters()
    wanted = int(job.body.get("number_of_samples", 0)) or None
    async with make_gateway(settings, use_cache=job.use_cache, routes=routes, batch=job.batch) as gateway:
        work = generate_async(job, settings=settings, gateway=gateway, counters=counters)
        return await with_live(
            work,
            "generating",
            gateway,
            Console(stderr=True),
            enabled=not quiet,
            read=lambda: (counters.samples_completed, wanted),
        )


spec_group.add_command(spec_evaluate_command)
