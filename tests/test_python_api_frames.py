"""pandas DataFrames and Hugging Face `datasets.Dataset`s in and out of `datamill.adapt` and `.estimate`.

Both packages come with the ``notebook`` extra, which ``make install`` installs. Runs go to the provider
simulator on a thread of its own; the output rows, the rejected rows and the requests the model read are
checked.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import datasets
import pandas as pd
import pytest

import datamill
from datamill.llm.simulator import ProviderSimulator, serve_in_thread
from datamill.services.settings.entry import Settings

QUESTIONS = [
    "How do I reset my router to factory settings?",
    "Why is my invoice higher than last month?",
    "Can I change the email address on my account?",
    "What does the blinking orange light on the modem mean?",
]


def _rows() -> list[dict[str, Any]]:
    """Four distinct questions and the second one again (exact dedup removes the repeat)."""
    rows = [{"id": i, "question": q, "answer": f"Step {i}: see the manual."} for i, q in enumerate(QUESTIONS)]
    return [*rows, {**rows[1], "id": 99}]


@pytest.fixture
def run_kwargs(tmp_path: Path) -> Iterator[tuple[ProviderSimulator, dict[str, Any]]]:
    with serve_in_thread(seed=5) as simulator:
        yield (
            simulator,
            {
                "prompt": "question",
                "completion": "answer",
                "recipes": ["deduplication", "prompt_rephrase"],
                "model": "sim-openai/gpt",
                "routes": simulator.write_routes(tmp_path / "routes.yaml"),
                "settings": Settings.from_env({"DATAMILL_HOME": str(tmp_path / "home")}),
                "evaluate": False,
            },
        )


def test_a_dataframe_comes_back_as_a_dataframe_with_the_simulators_answers(
    run_kwargs: tuple[ProviderSimulator, dict[str, Any]],
) -> None:
    simulator, kwargs = run_kwargs
    frame = pd.DataFrame(_rows(), index=[10, 11, 12, 13, 14])  # an index that is not 0..n-1

    result = datamill.adapt(frame, **kwargs)

    assert isinstance(result.data, pd.DataFrame)
    assert sorted(result.data["id"]) == [0, 1, 2, 3]
    assert list(result.data.index) == [0, 1, 2, 3]  # the index is not kept
    assert result.data["enhanced_completion"].str.startswith("[sim] ").all()
    assert [(r["row_number"], r["step"], r["row"]["id"]) for r in result.rejected] == [
        (5, "deduplication", 99)
    ]
    assert any("blinking orange light" in entry.prompt for entry in simulator.log)
    assert result.summary is not None
    assert (result.summary.rows_in, result.summary.rows_out) == (5, 4)


def test_a_dataset_comes_back_as_a_dataset(run_kwargs: tuple[ProviderSimulator, dict[str, Any]]) -> None:
    _, kwargs = run_kwargs
    # A shuffled, filtered Dataset has an indices mapping over its table: the rows it shows are adapted.
    dataset = datasets.Dataset.from_list(_rows()).filter(lambda row: row["id"] != 3).shuffle(seed=1)

    result = datamill.adapt(dataset, **kwargs)

    assert isinstance(result.data, datasets.Dataset)
    assert sorted(result.data["id"]) == [0, 1, 2]
    assert {"original_prompt", "enhanced_completion"} <= set(result.data.column_names)
    assert [r["row"]["id"] for r in result.rejected] == [99]


async def test_a_dataframe_inside_a_running_event_loop(
    run_kwargs: tuple[ProviderSimulator, dict[str, Any]],
) -> None:
    _, kwargs = run_kwargs
    result = datamill.adapt(pd.DataFrame(_rows()), **kwargs)
    asyncio.get_running_loop()  # still this test's loop, still running
    assert len(result.data) == 4


def test_estimate_quotes_a_dataset_without_calling_a_model(
    run_kwargs: tuple[ProviderSimulator, dict[str, Any]],
) -> None:
    simulator, kwargs = run_kwargs
    kwargs.pop("evaluate")
    quote = datamill.estimate(datasets.Dataset.from_list(_rows()), **kwargs).to_dict()
    assert quote["rows_in"] == 5
    assert quote["calls"] > 0
    assert len(simulator.log) == 0
