"""The Python API (`datamill.adapt`, `datamill.estimate`): in-memory data in, the same kind out.

Runs go to the provider simulator on a thread of its own (so a test's own event loop can block on the sync
call) or to the bundled fake model; the output, the rejected rows and the requests the model read are
checked.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

import datamill
from datamill.core.errors import ValidationError
from datamill.llm.simulator import ProviderSimulator, serve_in_thread
from datamill.services.settings.entry import Settings

SIM_MODEL = "sim-openai/gpt"
QUESTIONS = [
    "How do I reset my router to factory settings?",
    "Why is my invoice higher than last month?",
    "Can I change the email address on my account?",
    "What does the blinking orange light on the modem mean?",
    "How long does a refund take to reach my card?",
]


def _rows() -> list[dict[str, Any]]:
    """Five distinct questions and row 2 again (exact dedup removes the repeat)."""
    rows = [{"id": i, "question": q, "answer": f"Step {i}: see the manual."} for i, q in enumerate(QUESTIONS)]
    return [*rows, {**rows[2], "id": 99}]


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[tuple[ProviderSimulator, Path]]:
    with serve_in_thread(seed=3) as simulator:
        yield simulator, simulator.write_routes(tmp_path / "routes.yaml")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings.from_env({"DATAMILL_HOME": str(tmp_path / "home")})


def _kwargs(settings: Settings, routes: Path, **extra: Any) -> dict[str, Any]:
    return {
        "prompt": "question",
        "completion": "answer",
        "recipes": ["dedup", "rephrase"],
        "model": SIM_MODEL,
        "routes": routes,
        "settings": settings,
        "evaluate": False,
        **extra,
    }


def test_a_list_of_dicts_comes_back_as_a_list_with_its_rejected_rows_and_progress(
    sim: tuple[ProviderSimulator, Path], settings: Settings
) -> None:
    simulator, routes = sim
    reports: list[datamill.Progress] = []
    result = datamill.adapt(_rows(), progress=reports.append, **_kwargs(settings, routes))

    assert isinstance(result.data, list)
    assert sorted(row["id"] for row in result.data) == [0, 1, 2, 3, 4]
    assert [(r["row_number"], r["step"], r["row"]["id"]) for r in result.rejected] == [
        (6, "deduplication", 99)
    ]
    assert result.rejected[0]["reason"]
    assert result.summary is not None
    assert (result.summary.rows_in, result.summary.rows_out) == (6, 5)
    assert result.summary.calls > 0
    # The completions are the simulator's answers to requests that carried each question.
    assert all(row["enhanced_completion"].startswith("[sim] ") for row in result.data)
    assert any("blinking orange light" in entry.prompt for entry in simulator.log)
    assert reports
    assert reports[-1].finished
    assert (reports[-1].rows_done, reports[-1].rows_out, reports[-1].rows_rejected) == (6, 5, 1)
    assert reports[-1].calls == result.summary.calls


async def test_the_sync_call_works_inside_a_running_event_loop_on_a_pyarrow_table(
    sim: tuple[ProviderSimulator, Path], settings: Settings
) -> None:
    _, routes = sim
    table = pa.Table.from_pylist(_rows())
    caller = threading.get_ident()
    threads: set[int] = set()

    result = datamill.adapt(
        table, progress=lambda _: threads.add(threading.get_ident()), **_kwargs(settings, routes)
    )

    asyncio.get_running_loop()  # still this test's loop, still running
    assert isinstance(result.data, pa.Table)
    assert result.data.num_rows == 5
    assert set(result.data.column_names) >= {"id", "original_prompt", "enhanced_completion"}
    assert threads
    assert caller not in threads


async def test_the_async_twin_runs_on_the_callers_loop(settings: Settings) -> None:
    result = await datamill.adapt_async(
        _rows(),
        prompt="question",
        completion="answer",
        recipes="dedup",
        model="fake/test-model",
        settings=settings,
        evaluate=False,
    )
    assert len(result.data) == 5
    assert [r["step"] for r in result.rejected] == ["deduplication"]


def test_a_path_in_gives_the_output_path_out_with_the_report_beside_it(
    sim: tuple[ProviderSimulator, Path], settings: Settings, tmp_path: Path
) -> None:
    _, routes = sim
    source = tmp_path / "tickets.parquet"
    pa.parquet.write_table(pa.Table.from_pylist(_rows()), source)  # type: ignore[attr-defined]

    result = datamill.adapt(source, **_kwargs(settings, routes, evaluate=True, eval_sample_size=3))

    assert result.data == tmp_path / "tickets.adapted.parquet"
    assert pa.parquet.read_table(result.data).num_rows == 5  # type: ignore[attr-defined]
    assert result.summary is not None
    assert result.summary.report_path is not None
    assert Path(result.summary.report_path).is_file()
    assert result.evaluation is not None
    assert result.report_html is not None
    assert "<html" in result.report_html.lower()


def test_a_refused_rephrase_is_no_garbage_in_the_output(
    sim: tuple[ProviderSimulator, Path], settings: Settings
) -> None:
    simulator, routes = sim
    simulator.set("refusal_text", 1.0, when=lambda r: r.mentions("blinking orange light"))
    result = datamill.adapt(_rows(), **_kwargs(settings, routes))

    texts = [str(value) for row in result.data for value in row.values()]
    assert not any("I can't help with that" in text for text in texts)
    assert 3 in {row["id"] for row in result.data} | {r["row"]["id"] for r in result.rejected}


async def test_estimate_quotes_in_memory_rows_inside_a_running_loop(
    sim: tuple[ProviderSimulator, Path], settings: Settings
) -> None:
    _, routes = sim
    kwargs = _kwargs(settings, routes)
    kwargs.pop("evaluate")
    quote = datamill.estimate(_rows(), **kwargs)
    assert quote.to_dict()["rows_in"] == 6
    assert len(simulator_log := sim[0].log) == 0, simulator_log  # a quote calls no model


def test_pandas_dataframes_come_back_as_dataframes(settings: Settings) -> None:
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(_rows())
    result = datamill.adapt(
        frame,
        prompt="question",
        completion="answer",
        recipes=["dedup"],
        model="fake/test-model",
        settings=settings,
        evaluate=False,
    )
    assert isinstance(result.data, pd.DataFrame)
    assert sorted(result.data["id"]) == [0, 1, 2, 3, 4]


def test_bad_input_names_the_field(settings: Settings) -> None:
    with pytest.raises(ValidationError, match="data"):
        datamill.adapt({"question": "q"}, prompt="question", settings=settings)
    with pytest.raises(ValidationError, match="bogus"):
        datamill.adapt(_rows(), prompt="question", bogus=1, settings=settings)
    with pytest.raises(ValidationError, match="unknown recipe"):
        datamill.adapt(_rows(), prompt="question", recipes=["dedupe"], settings=settings)
    with pytest.raises(ValidationError, match="batch_size"):
        datamill.adapt(_rows(), prompt="question", batch_size=0, settings=settings)


def test_the_top_level_names_are_sorted_and_importable() -> None:
    assert datamill.__all__ == sorted(datamill.__all__)
    for name in datamill.__all__:
        assert getattr(datamill, name) is not None


async def test_a_bad_mapping_inside_a_running_loop_raises_in_the_caller(settings: Settings) -> None:
    with pytest.raises(ValidationError) as caught:
        datamill.adapt(_rows(), prompt="body", model="fake/test-model", settings=settings, evaluate=False)
    assert caught.value.issues[0].field.startswith("column_mapping")
    assert "question" in str(caught.value)  # the columns the data has are listed


async def test_the_blocking_call_can_be_cancelled_from_the_caller() -> None:
    started, release = threading.Event(), threading.Event()

    async def work() -> str:
        started.set()
        while not release.is_set():
            await asyncio.sleep(0.01)
        return "done"

    from datamill.python_api.blocking import _Worker

    worker = _Worker(work, "asyncio")
    worker.start()
    assert started.wait(10)
    worker.cancel()
    worker.join(10)
    assert not worker.is_alive()
    with pytest.raises(asyncio.CancelledError):
        worker.result()
