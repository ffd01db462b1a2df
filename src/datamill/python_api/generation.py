"""``datamill.create_spec``, ``datamill.generate`` and ``datamill.evaluate``: generation from Python.

Thin layers over `datamill.services.generation` (the code of ``datamill spec create``, ``datamill generate``
and ``datamill spec evaluate``), taking and giving objects instead of files:

- seeds are a path (a file or a folder, or a list of them), a list of texts (one sample each), or rows (a list
  of dicts, a pyarrow Table, a pandas DataFrame, a ``datasets.Dataset``: one sample per row);
- a spec is a `datamill.core.spec.Spec` (what `create_spec` returns: ``.to_yaml()``, ``.axes``; change it with
  `dataclasses.replace`), YAML text or a path to a spec file;
- samples are what `generate` returns (`Generated`), its ``samples`` list, or a path to a run's output.

In-memory seeds and specs go through a temporary folder, as in-memory rows do for ``datamill.adapt``. Each
call blocks, also inside a running event loop (a notebook cell), and has an ``_async`` twin; ``progress=``
takes the same callbacks as ``datamill.adapt`` (a `Progress` whose rows are samples).
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from datamill.core.errors import ValidationError
from datamill.core.spec import Spec, parse_spec_yaml
from datamill.llm.gateway import Gateway
from datamill.pipelines.generate import GenerationCounters, GenerationSummary
from datamill.pipelines.spec_analysis import SpecAnalysisOptions
from datamill.python_api.blocking import run_blocking
from datamill.python_api.progress import Progress, ProgressCallback, watching
from datamill.python_api.tables import read_input, write_input
from datamill.services.adaptation.adapt import make_gateway
from datamill.services.generation.evaluate import EvaluateJob, EvaluationReport, evaluate_samples_async
from datamill.services.generation.library import GenerateJob, SpecJob
from datamill.services.generation.library import create_spec_async as write_spec_async
from datamill.services.generation.library import generate_async as generate_file_async
from datamill.services.settings.entry import Settings


@dataclass
class Generated:
    """What `generate` returns.

    Attributes:
        samples: one dict per sample: ``id``, ``sample`` (the text, or the object for structured seeds) and
            ``properties`` (the value drawn for each axis).
        summary: requested and delivered samples, candidates, pass rate, rejections per gate with a reason,
            usage and cost (``summary.to_dict()`` is what ``datamill generate --json`` prints).
        path: the ``.jsonl`` file written when ``output=`` was given, else None.
    """

    samples: list[dict[str, Any]] = field(default_factory=list)
    summary: GenerationSummary | None = None
    path: Path | None = None


# ---- create_spec -------------------------------------------------------------------------------------------


async def create_spec_async(
    seeds: Any = None,
    *,
    objectives: str | None = None,
    model: str | None = None,
    output: str | Path | None = None,
    use_cache: bool = True,
    routes: str | Path | None = None,
    settings: Settings | None = None,
    **analysis: Any,
) -> Spec:
    """Analyse `seeds` (or `objectives` alone) and return the spec; see `create_spec`."""
    settings = settings or Settings.from_env()
    options = _analysis_options(analysis)
    with tempfile.TemporaryDirectory(prefix="datamill-") as folder:
        paths, on_disk = _seed_paths(seeds, Path(folder))
        target = Path(output) if output is not None else Path(folder) / "spec.yaml"
        job = SpecJob(paths, target, model, objectives, options, use_cache)
        async with _gateway(settings, use_cache, routes) as gateway:
            draft = await write_spec_async(job, settings=settings, gateway=gateway)
    spec = draft.spec
    if not on_disk:  # the temporary copy of in-memory seeds is gone: pass them to generate() again
        spec = replace(spec, metadata={k: v for k, v in spec.metadata.items() if k != "seed_paths"})
        if output is not None:
            target.write_text(spec.to_yaml(), encoding="utf-8")
    return spec


def create_spec(seeds: Any = None, **kwargs: Any) -> Spec:
    """Write a generation spec from seed samples (or from ``objectives=`` alone).

    Args:
        seeds: a path or a list of paths (files, folders), a list of texts, or rows (list of dicts, pyarrow
            Table, pandas DataFrame, ``datasets.Dataset``).
        kwargs: ``objectives``, ``model``, ``output`` (also write the YAML there), ``use_cache``, ``routes``,
            ``settings``, and the analysis options of ``datamill spec create`` (``generate_distributions``,
            ``extrapolate_values``, ``extrapolate_axes``, ``generate_conditional_distributions``, ``seed``).

    Blocks, also inside a running event loop; `create_spec_async` is the async twin.
    """
    settings = kwargs.get("settings") or Settings.from_env()
    return run_blocking(
        lambda: create_spec_async(seeds, **{**kwargs, "settings": settings}), settings.event_loop
    )


# ---- generate ----------------------------------------------------------------------------------------------


async def generate_async(
    spec: Spec | str | Path,
    n: int,
    *,
    seeds: Any = None,
    model: str | None = None,
    output: str | Path | None = None,
    progress: ProgressCallback | None = None,
    use_cache: bool = True,
    batch: bool = False,
    routes: str | Path | None = None,
    settings: Settings | None = None,
    **options: Any,
) -> Generated:
    """Generate `n` samples that follow `spec`; see `generate`."""
    settings = settings or Settings.from_env()
    body = {**options, "number_of_samples": n}
    with tempfile.TemporaryDirectory(prefix="datamill-") as folder:
        spec_path = _spec_path(spec, Path(folder))
        seed_paths = _seed_paths(seeds, Path(folder) / "seeds")[0] if seeds is not None else None
        target = Path(output) if output is not None else Path(folder) / "samples.jsonl"
        if target.suffix != ".jsonl":
            raise ValidationError.of("output", "give a .jsonl file for the samples")
        job = GenerateJob(spec_path, target, body, seed_paths, use_cache, model=model, batch=batch)
        counters = GenerationCounters()
        async with _gateway(settings, use_cache, routes, batch=batch) as gateway:

            def where() -> Progress:
                return _generation_progress(n, counters, gateway)

            work = generate_file_async(job, settings=settings, gateway=gateway, counters=counters)
            summary = await watching(work, where, progress)
        samples = [json.loads(line) for line in target.read_text(encoding="utf-8").splitlines() if line]
    return Generated(samples, summary, target if output is not None else None)


def generate(spec: Spec | str | Path, n: int, **kwargs: Any) -> Generated:
    """Generate `n` samples that follow `spec` (a `Spec`, its YAML, or a spec file).

    Args:
        spec: what `create_spec` returned, YAML text, or a path to a spec file.
        n: the samples to deliver.
        kwargs: ``seeds`` (examples shown to the model, as for `create_spec`; default the spec's recorded
            seed paths), ``model``, ``output`` (a ``.jsonl`` file to write too), ``progress``, ``use_cache``,
            ``batch``, ``routes``, ``settings``, and the run options of ``datamill generate`` in their API
            names (``revision_types``, ``filtering_types``, ``max_revision_cycles``, ``novelty_threshold``,
            ``outline_model``, ``revision_model``, ...).

    Raises:
        ValidationError: a bad spec or option, named.
        GenerationBudgetSpent: too few candidates passed the gates within the budget (the reasons included).
    """
    settings = kwargs.get("settings") or Settings.from_env()
    return run_blocking(
        lambda: generate_async(spec, n, **{**kwargs, "settings": settings}), settings.event_loop
    )


# ---- evaluate ----------------------------------------------------------------------------------------------


async def evaluate_async(
    spec: Spec | str | Path,
    samples: Generated | Sequence[dict[str, Any]] | str | Path,
    *,
    model: str | None = None,
    output: str | Path | None = None,
    progress: ProgressCallback | None = None,
    use_cache: bool = True,
    routes: str | Path | None = None,
    settings: Settings | None = None,
) -> EvaluationReport:
    """Evaluate `samples` against `spec`; see `evaluate`."""
    settings = settings or Settings.from_env()
    with tempfile.TemporaryDirectory(prefix="datamill-") as folder:
        spec_path = _spec_path(spec, Path(folder))
        samples_path, count = _samples_path(samples, Path(folder))
        target = Path(output) if output is not None else None
        job = EvaluateJob(spec_path, samples_path, target, model, use_cache)
        async with _gateway(settings, use_cache, routes) as gateway:

            def where() -> Progress:
                return _calls_progress(count, gateway)

            work = evaluate_samples_async(job, settings=settings, gateway=gateway)
            return await watching(work, where, progress, final=lambda: _calls_progress(count, gateway, count))


def evaluate(
    spec: Spec | str | Path, samples: Generated | Sequence[dict[str, Any]] | str | Path, **kwargs: Any
) -> EvaluationReport:
    """Check how well `samples` follow `spec`: the judge classifies each sample on each axis.

    Args:
        spec: a `Spec`, its YAML, or a spec file.
        samples: what `generate` returned, its ``samples``, or a run's ``.jsonl`` output (or folder).
        kwargs: ``model`` (the judge), ``output`` (a JSON report to write), ``progress``, ``use_cache``,
            ``routes``, ``settings``.

    Returns the report: ``report.evaluation.conformance_score``, ``.non_conformant_areas``, ...,
    ``report.to_dict()`` as ``datamill spec evaluate`` writes it.
    """
    settings = kwargs.get("settings") or Settings.from_env()
    return run_blocking(
        lambda: evaluate_async(spec, samples, **{**kwargs, "settings": settings}), settings.event_loop
    )


# ---- helpers -----------------------------------------------------------------------------------------------


@asynccontextmanager
async def _gateway(
    settings: Settings, use_cache: bool, routes: str | Path | None, *, batch: bool = False
) -> AsyncIterator[Gateway]:
    route_path = Path(routes) if routes is not None else None
    async with make_gateway(settings, use_cache=use_cache, routes=route_path, batch=batch) as gateway:
        yield gateway


def _analysis_options(given: dict[str, Any]) -> SpecAnalysisOptions:
    known = {f.name for f in dataclasses.fields(SpecAnalysisOptions)}
    unknown = sorted(set(given) - known)
    if unknown:
        raise ValidationError.of(unknown[0], f"unknown option; the options are {', '.join(sorted(known))}")
    return SpecAnalysisOptions(**given)


def _seed_paths(seeds: Any, folder: Path) -> tuple[tuple[Path, ...], bool]:
    """Seed files for `seeds`, and whether they were on disk already (module docstring)."""
    if seeds is None:
        return (), True
    if isinstance(seeds, str | Path):
        return (Path(seeds),), True
    if isinstance(seeds, list | tuple) and seeds and all(isinstance(s, Path) for s in seeds):
        return tuple(seeds), True
    folder.mkdir(parents=True, exist_ok=True)
    if isinstance(seeds, list | tuple) and seeds and all(isinstance(s, str) for s in seeds):
        texts = folder / "texts"
        texts.mkdir()
        for index, text in enumerate(seeds, start=1):
            (texts / f"seed_{index:05d}.txt").write_text(text, encoding="utf-8")
        return (texts,), False
    given = read_input(seeds)
    if given.table is None:
        raise ValidationError.of("seeds", "give seed files, texts or rows")
    return (write_input(given.table, folder / "seeds.parquet"),), False


def _spec_path(spec: Spec | str | Path, folder: Path) -> Path:
    if isinstance(spec, Spec):
        text = spec.to_yaml()
    elif isinstance(spec, Path) or (
        isinstance(spec, str) and "\n" not in spec and spec.endswith((".yaml", ".yml"))
    ):
        return Path(spec)
    elif isinstance(spec, str):
        text = spec
    else:
        raise ValidationError.of("spec", f"give a Spec, its YAML or a spec file, not {type(spec).__name__}")
    parse_spec_yaml(text)  # errors name the YAML path, before anything runs
    path = folder / "spec.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _samples_path(samples: Any, folder: Path) -> tuple[Path, int]:
    if isinstance(samples, str | Path):
        path = Path(samples)
        count = (
            sum(1 for line in path.read_text("utf-8").splitlines() if line.strip()) if path.is_file() else 0
        )
        return path, count
    rows = samples.samples if isinstance(samples, Generated) else list(samples)
    path = folder / "samples.jsonl"
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    return path, len(rows)


def _generation_progress(n: int, counters: GenerationCounters, gateway: Gateway) -> Progress:
    total = gateway.usage.total
    return Progress(
        rows_total=n,
        rows_done=counters.samples_completed,
        rows_out=counters.samples_completed,
        rows_rejected=max(0, counters.candidates - counters.samples_completed),
        calls=total.calls,
        tokens=total.usage.total_tokens,
        cost_usd=total.cost_usd,
        phase="generating",
    )


def _calls_progress(count: int, gateway: Gateway, done: int = 0) -> Progress:
    total = gateway.usage.total
    return Progress(
        rows_total=count,
        rows_done=done,
        rows_out=done,
        rows_rejected=0,
        calls=total.calls,
        tokens=total.usage.total_tokens,
        cost_usd=total.cost_usd,
        phase="evaluating",
    )
