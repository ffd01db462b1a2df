"""What a server run executes: the adaptation plan, or an expansion-only plan for translate and localize.

Both kinds go through `prepare_adaptation` (the one validation, planning and estimate every entry point
uses). A translate or localize run is the adaptation pipeline over the source dataset's configured mapping
with every recipe off and language expansion on, and only the expansion row step kept: the new dataset holds
the source rows as they were plus one new row per target for a seeded sample of rows (no completion is
generated, nothing is deduplicated). Its estimate is made on that reduced plan.

The same function prepares the quote at launch and the execution in the worker, from the request and
options stored with the run, so a resumed run rebuilds exactly the plan it checkpointed against.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from datamill.core.recipes import RECIPE_NAMES
from datamill.core.run_options import RunOptions
from datamill.dataio import open_dataset
from datamill.llm.gateway import Gateway
from datamill.pipelines.estimate import estimate_plan, take_sample
from datamill.runners.inputs import RunInput
from datamill.services.adaptation.adapt import AdaptJob, PreparedRun, prepare_adaptation
from datamill.services.settings.entry import Settings
from datamill.steps.expansion import LanguageExpansionStep

#: Run kinds: adapt a dataset in place, or make a new one with translated or localized rows.
ADAPT = "adapt"
EXPANSIONS = ("translate", "localize")
#: Every recipe off: an expansion run only translates or localizes.
NO_RECIPES = {"recipes": dict.fromkeys(RECIPE_NAMES, False)}


def run_job(source: RunInput, model: str, options: RunOptions) -> AdaptJob:
    """The `AdaptJob` of a server run; its output path is unused (the output stays in the checkpoint).

    Image cells that name files are refused: a tenant's dataset must not read the server's disk.
    """
    return AdaptJob(
        input_path=source.path,
        output_path=source.path.with_name(f"{source.path.name}.unused"),
        model=model,
        input_format=source.format,
        options=options,
        local_image_files=False,
    )


def options_to_dict(options: RunOptions) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(options).items()}


def options_from_dict(values: Mapping[str, Any]) -> RunOptions:
    known = {f.name for f in dataclasses.fields(RunOptions)}
    kept: dict[str, Any] = {
        k: tuple(v) if isinstance(v, list) else v for k, v in values.items() if k in known
    }
    return RunOptions(**kept)


def expansion_body(mapping: Mapping[str, Any], expansion: Mapping[str, Any]) -> dict[str, Any]:
    """The run/adapt-shaped request of a translate or localize run."""
    return {
        "column_mapping": dict(mapping),
        "recipe_specification": NO_RECIPES,
        "language_expansion": dict(expansion),
    }


async def prepare_run(
    kind: str, job: AdaptJob, body: Mapping[str, Any], settings: Settings, gateway: Gateway
) -> PreparedRun:
    """Validate, plan and estimate a run of `kind` (see the module docstring).

    Raises:
        ValidationError: a bad request, or one this data or model cannot serve.
        DataFormatError: the input cannot be read.
        ModelError / ConfigError: the model cannot be used at all.
    """
    prepared = await prepare_adaptation(job, body, settings, gateway)
    if kind == ADAPT:
        return prepared
    plan = prepared.plan
    plan.row_steps = [step for step in plan.row_steps if isinstance(step, LanguageExpansionStep)]
    with open_dataset(job.input_path, format=job.input_format) as reader:
        sample = take_sample(reader, plan)
    estimate = await estimate_plan(plan, sample, request=prepared.request)
    return dataclasses.replace(prepared, plan=plan, estimate=estimate)


def fingerprint(run_id: str, request: Mapping[str, Any], model: str, options: Mapping[str, Any]) -> str:
    """What a run's checkpoint is valid for: the run, its request, its model and its options."""
    identity = {"run": run_id, "request": request, "model": model, "options": options}
    return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()


def input_cache_dir(data_dir: Path) -> Path:
    """Where the combined input files of multi-file datasets are kept."""
    return data_dir / "inputs"
