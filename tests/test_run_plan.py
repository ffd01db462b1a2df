"""One run identity and a plan made once: what a launch stores is what the worker executes.

`plan_run` (the command line, a launch) validates, counts, plans and estimates; its `RunPlan` survives the
round trip through the run's stored columns; `build_run` (the worker, Ray actors) rebuilds the same steps
from it without reading the input; and `run_fingerprint` changes with everything that changes results,
the judge and the grounding documents included.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from datamill.core.adapt_request import parse_adapt_request
from datamill.core.errors import ValidationError
from datamill.core.run_options import RunOptions
from datamill.llm.gateway import Gateway
from datamill.llm.routing import Routing
from datamill.services.adaptation.prepare import RunSource, build_run, plan_run
from datamill.services.adaptation.run_plan import RunPlan, file_identity, run_fingerprint, run_identity

MODEL = "fake/test-model"
BODY = {
    "column_mapping": {"prompt": "question", "completion": "answer"},
    "recipe_specification": {"recipes": {"deduplication": True, "prompt_rephrase": True}},
    "job_specification": {"max_rows": 5},
}


def _input(tmp_path: Path, rows: int = 12) -> RunSource:
    path = tmp_path / "qa.jsonl"
    lines = [
        {"question": f"Question {i}: how does part {i} of the engine work?", "answer": "A."}
        for i in range(rows)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in lines), encoding="utf-8")
    return RunSource(path, "jsonl")


@pytest.fixture
async def gateway():
    made = Gateway(Routing.load())
    yield made
    await made.aclose()


async def test_the_stored_plan_round_trips_and_rebuilds_the_same_steps_without_the_input(
    tmp_path: Path, gateway: Gateway
) -> None:
    source = _input(tmp_path)
    options = RunOptions(batch_size=4, rephrase_check=False, judge_model="fake/judge")
    planned = await plan_run("adapt", source, parse_adapt_request(BODY), MODEL, options, gateway, tmp_path)
    assert planned.estimate is not None
    assert planned.plan.total_rows == 12
    assert planned.plan.judge == "fake/judge"
    assert planned.plan.request.estimate is False

    plan = planned.plan
    stored = RunPlan.of_record(
        "adapt", plan.request.to_dict(), plan.model, plan.options_record(), planned.estimate.to_dict()
    )
    assert stored == plan

    gone = RunSource(tmp_path / "deleted.jsonl", "jsonl", local_image_files=False)
    rebuilt = await build_run(stored, gone, gateway, tmp_path)
    assert rebuilt.steps.step_names == planned.steps.step_names
    assert (rebuilt.steps.rows_total, rebuilt.steps.rows_selected) == (12, 5)
    assert rebuilt.judge.name == "fake/judge"
    assert rebuilt.estimate is None


async def test_an_expansion_plan_keeps_only_the_expansion_step(tmp_path: Path, gateway: Gateway) -> None:
    body = {
        "column_mapping": {"prompt": "question"},
        "recipe_specification": {"recipes": {"deduplication": False}},
        "language_expansion": {"type": "translate", "sample_rate": 0.5, "languages": ["fr"]},
    }
    planned = await plan_run(
        "translate", _input(tmp_path), parse_adapt_request(body), MODEL, RunOptions(), gateway, tmp_path
    )
    assert [step.name for step in planned.steps.row_steps] == ["language_expansion"]


async def test_a_mapping_naming_a_missing_column_fails_at_planning(tmp_path: Path, gateway: Gateway) -> None:
    body = {"column_mapping": {"prompt": "prompt_text"}}
    with pytest.raises(ValidationError) as error:
        await plan_run(
            "adapt", _input(tmp_path), parse_adapt_request(body), MODEL, RunOptions(), gateway, tmp_path
        )
    assert "prompt_text" in str(error.value)


def test_the_fingerprint_changes_with_everything_that_changes_results(tmp_path: Path) -> None:
    source = _input(tmp_path)
    plan = RunPlan("adapt", parse_adapt_request(BODY), MODEL, MODEL, RunOptions(), total_rows=12)
    where = file_identity(source.path, source.format)
    base = run_fingerprint(where, plan, None)
    assert run_fingerprint(where, plan, None) == base
    variants = [
        run_fingerprint(where, dataclasses.replace(plan, judge="fake/judge"), None),
        run_fingerprint(where, plan, "grounding-documents-v2"),
        run_fingerprint(where, dataclasses.replace(plan, model="fake/other"), None),
        run_fingerprint(where, dataclasses.replace(plan, options=RunOptions(seed=1)), None),
        run_fingerprint(where, dataclasses.replace(plan, kind="translate"), None),
        run_fingerprint(run_identity("run_1"), plan, None),
    ]
    assert len({base, *variants}) == len(variants) + 1
    source.path.write_text(source.path.read_text(encoding="utf-8") + "\n", encoding="utf-8")
    assert run_fingerprint(file_identity(source.path, source.format), plan, None) != base
