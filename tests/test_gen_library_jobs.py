"""The generation library's jobs all take ``model=``: SpecJob, GenerateJob and EvaluateJob alike."""

from __future__ import annotations

from pathlib import Path

import pytest

from datamill.core.errors import ValidationError
from datamill.services.generation.evaluate import EvaluateJob, evaluate_samples_async
from datamill.services.generation.library import GenerateJob, SpecJob, create_spec_async, generate_async
from datamill.services.settings.entry import Settings


async def test_each_job_runs_on_the_model_it_names(tmp_path: Path) -> None:
    settings = Settings.from_env({"DATAMILL_HOME": str(tmp_path / "home")})
    spec = tmp_path / "spec.yaml"
    await create_spec_async(
        SpecJob((), spec, model="fake/spec-writer", objectives="Short haiku about rain"), settings=settings
    )
    out = tmp_path / "out.jsonl"
    body = {"number_of_samples": 2, "skip_outline": True, "novelty_threshold": 1}
    summary = await generate_async(GenerateJob(spec, out, body, model="fake/generator"), settings=settings)
    assert set(summary.to_dict()["usage"]["by_model"]) == {"fake/generator"}
    report = await evaluate_samples_async(EvaluateJob(spec, out, model="fake/judge"), settings=settings)
    assert report.model == "fake/judge"


async def test_two_different_generation_models_are_refused(tmp_path: Path) -> None:
    job = GenerateJob(
        tmp_path / "spec.yaml", tmp_path / "out.jsonl", {"generation_model": "fake/a"}, model="fake/b"
    )
    with pytest.raises(ValidationError, match="generation_model"):
        await generate_async(job, settings=Settings.from_env({"DATAMILL_HOME": str(tmp_path)}))
    same = GenerateJob(
        tmp_path / "spec.yaml", tmp_path / "out.jsonl", {"generation_model": "fake/a"}, model="fake/a"
    )
    assert same.request_body()["generation_model"] == "fake/a"
