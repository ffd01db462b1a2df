"""``datamill.adapt`` and ``datamill.estimate``: adapt data held in memory (or a file) from Python.

A thin layer over `datamill.services.adaptation.adapt`, the one adaptation path of the command line and
the server: the keyword arguments become the same run/adapt request body and run options, validated the
same way; in-memory data goes through a Parquet file in a temporary folder (`datamill.python_api.tables`).
The ``_async`` forms are for code already on an event loop; the plain forms block, and work inside a
running loop (a Jupyter cell) by running on a loop of their own in a worker thread
(`datamill.python_api.blocking`).
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from datamill.core.errors import ValidationError
from datamill.core.fields import Issues
from datamill.core.recipes import RECIPE_NAMES, recipes_from_names
from datamill.core.run_options import RUN_OPTION_FIELDS, RunOptions, read_run_options
from datamill.pipelines.adapt import RunCounters
from datamill.pipelines.estimate import Estimate
from datamill.python_api.blocking import run_blocking
from datamill.python_api.progress import ProgressCallback, reporting
from datamill.python_api.tables import PATH, Input, convert_output, read_input, write_input
from datamill.services.adaptation.adapt import (
    AdaptJob,
    AdaptSummary,
    adapt_file_async,
    estimate_file_async,
    make_gateway,
    rejected_path_for,
    report_paths,
)
from datamill.services.settings.entry import Settings
from datamill.steps.prompt_step import PromptStep


@dataclass
class Adapted:
    """What `adapt` returns.

    Attributes:
        data: the output rows, the same kind as the data passed in (a path in: the output file's path).
        rejected: the rows removed, each a dict with ``row_number`` (1-based, in the input), ``step``,
            ``reason`` and ``row`` (the row's fields).
        summary: rows in and out, rejections by step, calls, tokens, cost, time, the estimate and the grade
            (``summary.quality``), as ``datamill adapt --json`` prints it.
        evaluation: the before/after evaluation (what ``<output>.evaluation.json`` holds); None when
            evaluation is off.
        report_html: the HTML report page; None when evaluation is off. For a path, it is also written beside
            the output (``summary.report_path``).
    """

    data: Any
    rejected: list[dict[str, Any]] = field(default_factory=list)
    summary: AdaptSummary | None = None
    evaluation: dict[str, Any] | None = None
    report_html: str | None = None


def build_request(
    *,
    prompt: str | None = None,
    completion: str | None = None,
    context: str | Sequence[str] | None = None,
    chat: str | None = None,
    image: str | None = None,
    universal_prompt: str | None = None,
    recipes: str | Iterable[str] | Mapping[str, bool] | None = None,
    blueprint: str | None = None,
    length: str | None = None,
    safety: Sequence[str] | None = None,
    hallucination_mitigation: bool | None = None,
    training_type: str | None = None,
    max_rows: int | None = None,
    language_expansion: Mapping[str, Any] | None = None,
    judge_model: str | None = None,
    **options: Any,
) -> tuple[dict[str, Any], RunOptions]:
    """The run/adapt request body and the run options the keyword arguments describe.

    Raises:
        ValidationError: an unknown option or recipe, or an option of the wrong type, each named.
    """
    body: dict[str, Any] = {}
    mapping: dict[str, Any] = {
        key: value
        for key, value in (
            ("prompt", prompt),
            ("completion", completion),
            ("chat", chat),
            ("image", image),
            ("universal_prompt", universal_prompt),
        )
        if value is not None
    }
    if context is not None:
        mapping["context"] = [context] if isinstance(context, str) else list(context)
    if mapping:
        body["column_mapping"] = mapping
    if recipes is not None:
        body["recipe_specification"] = {"recipes": _recipes(recipes)}
    brand: dict[str, Any] = {}
    for key, value in (("blueprint", blueprint), ("length", length)):
        if value is not None:
            brand[key] = value
    if safety is not None:
        brand["safety_categories"] = [safety] if isinstance(safety, str) else list(safety)
    if hallucination_mitigation is not None or options.get("grounding_docs"):
        brand["hallucination_mitigation"] = bool(hallucination_mitigation is not False)
    if brand:
        body["brand_controls"] = brand
    if training_type is not None:
        body["training_type"] = training_type
    if max_rows is not None:
        body["job_specification"] = {"max_rows": max_rows}
    if language_expansion is not None:
        body["language_expansion"] = dict(language_expansion)
    return body, _run_options({**options, "judge_model": judge_model})


def _recipes(recipes: str | Iterable[str] | Mapping[str, bool]) -> dict[str, bool]:
    if isinstance(recipes, Mapping):
        return dict(recipes)
    names = recipes.split(",") if isinstance(recipes, str) else list(recipes)
    return recipes_from_names(names, field="recipes")


def _run_options(values: Mapping[str, Any]) -> RunOptions:
    unknown = sorted(set(values) - set(RUN_OPTION_FIELDS))
    if unknown:
        raise ValidationError.of(
            unknown[0],
            f"unknown option; the options are {', '.join(RUN_OPTION_FIELDS)} "
            f"(recipes: {', '.join(RECIPE_NAMES)})",
        )
    given = {key: value for key, value in values.items() if value is not None}
    if isinstance(given.get("grounding_docs"), str | Path):
        given["grounding_docs"] = [given["grounding_docs"]]
    if "grounding_docs" in given:
        given["grounding_docs"] = [str(p) for p in given["grounding_docs"]]
    issues = Issues()
    options = read_run_options(given, "", issues)
    issues.raise_if_any()
    return options


async def adapt_async(
    data: Any,
    *,
    model: str | None = None,
    output: str | Path | None = None,
    output_format: str | None = None,
    input_format: str | None = None,
    progress: ProgressCallback | None = None,
    use_cache: bool = True,
    batch: bool = False,
    routes: str | Path | None = None,
    settings: Settings | None = None,
    steps: Sequence[PromptStep] | PromptStep | None = None,
    templates: str | Path | None = None,
    **request: Any,
) -> Adapted:
    """Adapt `data` (a list of dicts, a pyarrow Table, a pandas DataFrame, a ``datasets.Dataset`` or a path).

    The keyword arguments are those of `datamill.adapt`; see docs/python.md.
    """
    body, options = build_request(**request)
    settings = settings or Settings.from_env()
    given = read_input(data)
    if given.kind == PATH:
        assert given.path is not None
        out = Path(output) if output is not None else _default_output(given.path)
        out.parent.mkdir(parents=True, exist_ok=True)
        job = AdaptJob(given.path, out, model, input_format, output_format, use_cache, options, batch=batch)
        job = _with_own(job, steps, templates)
        summary = await _run(job, body, settings, routes, progress)
        return _collect(given, job, summary, keep_files=True)
    if output is not None:
        raise ValidationError.of(
            "output", "output= is for a file path input; in-memory data comes back as such"
        )
    with tempfile.TemporaryDirectory(prefix="datamill-") as folder:
        assert given.table is not None
        path = write_input(given.table, Path(folder) / "input.parquet")
        output_path = Path(folder) / "output.parquet"
        job = AdaptJob(path, output_path, model, use_cache=use_cache, options=options, batch=batch)
        job = _with_own(job, steps, templates)
        summary = await _run(job, body, settings, routes, progress)
        return _collect(given, job, summary, keep_files=False)


def adapt(data: Any, **kwargs: Any) -> Adapted:
    """Blocking form of `adapt_async`; works inside a running event loop (a Jupyter notebook) too."""
    settings = kwargs.get("settings") or Settings.from_env()
    return run_blocking(lambda: adapt_async(data, **{**kwargs, "settings": settings}), settings.event_loop)


async def estimate_async(
    data: Any,
    *,
    model: str | None = None,
    input_format: str | None = None,
    use_cache: bool = True,
    batch: bool = False,
    routes: str | Path | None = None,
    settings: Settings | None = None,
    steps: Sequence[PromptStep] | PromptStep | None = None,
    templates: str | Path | None = None,
    **request: Any,
) -> Estimate:
    """Plan `data`'s adaptation and quote it (calls, tokens, rows, cost, minutes) without running it."""
    body, options = build_request(**request)
    settings = settings or Settings.from_env()
    given = read_input(data)
    with tempfile.TemporaryDirectory(prefix="datamill-") as folder:
        if given.kind == PATH:
            assert given.path is not None
            path = given.path
        else:
            assert given.table is not None
            path = write_input(given.table, Path(folder) / "input.parquet")
        job = AdaptJob(
            path, Path(folder) / "output.parquet", model, input_format, None, use_cache, options, batch=batch
        )
        job = _with_own(job, steps, templates)
        route_path = Path(routes) if routes is not None else None
        async with make_gateway(settings, use_cache=use_cache, routes=route_path, batch=batch) as gateway:
            return await estimate_file_async(job, body, settings=settings, gateway=gateway)


def estimate(data: Any, **kwargs: Any) -> Estimate:
    """Blocking form of `estimate_async`; works inside a running event loop too."""
    settings = kwargs.get("settings") or Settings.from_env()
    return run_blocking(lambda: estimate_async(data, **{**kwargs, "settings": settings}), settings.event_loop)


async def _run(
    job: AdaptJob,
    body: dict[str, Any],
    settings: Settings,
    routes: str | Path | None,
    progress: ProgressCallback | None,
) -> AdaptSummary:
    counters = RunCounters()
    route_path = Path(routes) if routes is not None else None
    async with make_gateway(settings, use_cache=job.use_cache, routes=route_path, batch=job.batch) as gateway:
        work = adapt_file_async(job, body, settings=settings, gateway=gateway, counters=counters)
        return await reporting(work, counters, gateway, progress)


def _collect(given: Input, job: AdaptJob, summary: AdaptSummary, *, keep_files: bool) -> Adapted:
    """The run's output, rejected rows and report, read while its files still exist."""
    rejected_path = rejected_path_for(job.output_path)
    rejected = []
    if rejected_path.is_file():
        rejected = [json.loads(line) for line in rejected_path.read_text("utf-8").splitlines() if line]
    json_path, html_path = report_paths(job.output_path)
    evaluation = json.loads(json_path.read_text("utf-8")) if json_path.is_file() else None
    report_html = html_path.read_text("utf-8") if html_path.is_file() else None
    if not keep_files:
        summary.output_path = summary.input_path = ""
        summary.rejected_path = summary.report_path = None
    return Adapted(convert_output(given.kind, job.output_path), rejected, summary, evaluation, report_html)


def _with_own(
    job: AdaptJob, steps: Sequence[PromptStep] | PromptStep | None, templates: str | Path | None
) -> AdaptJob:
    """`job` with the caller's own steps and prompt templates."""
    given = [steps] if isinstance(steps, PromptStep) else list(steps or ())
    for index, step in enumerate(given):
        if not isinstance(step, PromptStep):
            raise ValidationError.of(f"steps[{index}]", f"a datamill.PromptStep, not {type(step).__name__}")
    names = [step.name for step in given]
    if len(set(names)) < len(names):
        raise ValidationError.of("steps", f"two custom steps have the same name: {names}")
    job.steps = tuple(given)
    job.templates = Path(templates) if templates is not None else None
    return job


def _default_output(path: Path) -> Path:
    return path.with_name(f"{path.stem}.adapted{path.suffix}")
