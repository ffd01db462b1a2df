"""`datamill.create_spec`, `datamill.generate` and `datamill.evaluate` on paths, texts, rows, DataFrames and
Datasets, inside a running event loop too, with progress.

The bundled fake model writes the same sample for the same request, so generation turns the novelty gate off
(``novelty_threshold=1``) as the other generation tests on the fake do.
"""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import Any

import datasets
import pandas as pd
import pytest

import datamill
from datamill.core.errors import ValidationError
from datamill.core.spec import Spec
from datamill.services.settings.entry import Settings

MODEL = "fake/test-model"
CHATS = [
    "Customer: my parcel is late.\nAgent: Sorry, it ships tomorrow.",
    "Customer: I was charged twice.\nAgent: One charge is a pending hold; it drops off in 3 days.",
    "Customer: how do I export contacts?\nAgent: Contacts, select all, Export, CSV.",
]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings.from_env({"DATAMILL_HOME": str(tmp_path / "home")})


def _spec(seeds: Any, settings: Settings) -> Spec:
    spec: Spec = datamill.create_spec(seeds, model=MODEL, settings=settings)
    return spec


def test_spec_generate_evaluate_from_a_folder_with_progress(settings: Settings, tmp_path: Path) -> None:
    folder = tmp_path / "seeds"
    folder.mkdir()
    for index, chat in enumerate(CHATS):
        (folder / f"chat-{index}.txt").write_text(chat, encoding="utf-8")

    spec = _spec(folder, settings)
    assert isinstance(spec, Spec)
    assert spec.axes
    assert "data_property_variations" in spec.to_yaml()
    assert spec.metadata["seed_paths"] == [str(folder.resolve())]

    seen: list[datamill.Progress] = []
    generated = datamill.generate(
        spec, 4, model=MODEL, settings=settings, novelty_threshold=1, progress=seen.append
    )
    assert isinstance(generated, datamill.Generated)
    assert len(generated.samples) == 4
    assert {"id", "sample", "properties"} <= set(generated.samples[0])
    assert generated.summary is not None
    assert generated.summary.delivered == 4
    assert seen[-1].finished
    assert (seen[-1].rows_total, seen[-1].rows_done) == (4, 4)
    assert seen[-1].calls == generated.summary.usage["total"]["calls"]

    graded: list[datamill.Progress] = []
    report = datamill.evaluate(spec, generated, model=MODEL, settings=settings, progress=graded.append)
    assert len(report.evaluation.samples) == 4
    assert graded[-1].finished
    assert graded[-1].rows_done == 4
    assert graded[-1].calls > 0


def test_in_memory_seeds_rows_dataframes_and_datasets(settings: Settings) -> None:
    rows = [{"question": c.split("\n")[0], "answer": c.split("\n")[1]} for c in CHATS]
    for seeds in (rows, pd.DataFrame(rows), datasets.Dataset.from_list(rows), CHATS):
        spec = _spec(seeds, settings)
        assert "seed_paths" not in spec.metadata  # the temporary copy is gone
        generated = datamill.generate(
            spec, 2, seeds=seeds, model=MODEL, settings=settings, novelty_threshold=1
        )
        assert len(generated.samples) == 2


def test_an_edited_spec_and_files_in_and_out(settings: Settings, tmp_path: Path) -> None:
    spec = _spec(CHATS, settings)
    first = spec.axes[0]
    only = dataclasses.replace(first, values=first.values[:1], base={first.values[0]: 1.0}, conditional={})
    edited = dataclasses.replace(spec, axes=(only, *spec.axes[1:]))
    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text(edited.to_yaml(), encoding="utf-8")

    out = tmp_path / "out.jsonl"
    generated = datamill.generate(
        spec_file, 3, model=MODEL, settings=settings, novelty_threshold=1, output=out
    )
    assert generated.path == out
    assert out.is_file()
    assert {s["properties"][only.name] for s in generated.samples} == {only.values[0]}

    report_file = tmp_path / "report.json"
    report = datamill.evaluate(
        spec_file.read_text("utf-8"), out, model=MODEL, settings=settings, output=report_file
    )
    assert report_file.is_file()
    assert report.to_dict()["total_samples"] == 3


async def test_the_calls_work_inside_a_running_event_loop(settings: Settings) -> None:
    spec = _spec(CHATS, settings)
    generated = datamill.generate(spec, 2, seeds=CHATS, model=MODEL, settings=settings, novelty_threshold=1)
    asyncio.get_running_loop()  # still this test's loop, still running
    awaited = await datamill.generate_async(
        spec, 2, seeds=CHATS, model=MODEL, settings=settings, novelty_threshold=1
    )
    assert len(generated.samples) == len(awaited.samples) == 2
    report = await datamill.evaluate_async(spec, awaited.samples, model=MODEL, settings=settings)
    assert len(report.evaluation.samples) == 2


def test_bad_arguments_name_the_field(settings: Settings) -> None:
    with pytest.raises(ValidationError, match="seeds"):
        datamill.create_spec(None, model=MODEL, settings=settings)
    with pytest.raises(ValidationError, match="bogus"):
        datamill.create_spec(CHATS, model=MODEL, settings=settings, bogus=True)
    with pytest.raises(ValidationError, match="spec"):
        datamill.generate("spec:\n  description: 3\n", 2, model=MODEL, settings=settings)
    spec = _spec(CHATS, settings)
    with pytest.raises(ValidationError, match="number_of_samples"):
        datamill.generate(spec, 0, model=MODEL, settings=settings)
