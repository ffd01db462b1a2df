"""`datamill adapt --batch` against the provider simulator: the same rows as an online run at the batch
price, and a run killed (kill -9) while its batches are in flight resumes by polling them, never creating a
batch for a request twice."""

from __future__ import annotations

import json
import math
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner

from datamill.cli.main import cli
from datamill.llm.simulator import ProviderSimulator, serve_in_thread

PRICES = {"input_price": 1.0, "output_price": 2.0, "cached_input_price": 0.1, "cache_write_price": 1.25}
MODELS = ["sim-openai/m", "sim-anthropic/m", "sim-gemini/m"]


@pytest.fixture
def sim() -> Iterator[ProviderSimulator]:
    with serve_in_thread(seed=4, batch_delay_s=0.2, echo_chars=2000) as simulator:
        yield simulator


def _input(tmp_path: Path, rows: int) -> Path:
    source = tmp_path / "in.jsonl"
    lines = [
        {"id": i, "question": f"How do I reset device {i}?", "answer": f"Hold button {i}."}
        for i in range(rows)
    ]
    source.write_bytes(b"".join(orjson.dumps(row) + b"\n" for row in lines))
    return source


def _argv(
    sim: ProviderSimulator, tmp_path: Path, source: Path, out: Path, model: str, *extra: str
) -> list[str]:
    routes = sim.write_routes(tmp_path / "routes.yaml", batch_poll_s=0.1, **PRICES)
    return [
        "adapt",
        str(source),
        "--prompt",
        "question",
        "--completion",
        "answer",
        "--recipes",
        "prompt_rephrase",
        "--model",
        model,
        "--routes",
        str(routes),
        "-o",
        str(out),
        "--json",
        "-q",
        "--no-eval",
        *extra,
    ]


def _run(argv: list[str], home: Path) -> dict[str, Any]:
    env = {"DATAMILL_HOME": str(home), "DATAMILL_ROUTES": None, "DATAMILL_MODEL": None}
    result = CliRunner().invoke(cli, argv, env=env)
    assert result.exit_code == 0, result.output
    summary: dict[str, Any] = json.loads(result.stdout)
    return summary


def _rows(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


@pytest.mark.parametrize("model", MODELS)
def test_a_batch_run_gives_the_rows_of_an_online_run_at_the_batch_price(
    sim: ProviderSimulator, tmp_path: Path, model: str
) -> None:
    source = _input(tmp_path, 12)
    online_out, batch_out = tmp_path / "online.jsonl", tmp_path / "batch.jsonl"
    online = _run(_argv(sim, tmp_path, source, online_out, model, "--no-cache"), tmp_path / "h1")
    assert sim.log.operations("batch_create") == []
    online_bill = sim.log.cost_usd(**PRICES)
    sim.reset()

    batched = _run(_argv(sim, tmp_path, source, batch_out, model, "--no-cache", "--batch"), tmp_path / "h2")

    assert _rows(batch_out) == _rows(online_out)
    assert len(_rows(batch_out)) == 12
    answered = sim.log.answered()
    assert answered
    assert all(e.batch is not None for e in answered)  # every model request went through a batch
    creates = sim.log.operations("batch_create")
    assert len(creates) == 2  # one per step (rephrase, then completion), each holding all 12 rows
    assert math.isclose(batched["cost_usd"], sim.log.cost_usd(**PRICES, batch_discount=0.5), rel_tol=1e-9)
    assert math.isclose(online["cost_usd"], online_bill, rel_tol=1e-9)
    assert batched["cost_usd"] < online["cost_usd"] * 0.55


def _journal_states(home: Path) -> list[str]:
    states: list[str] = []
    for path in home.glob("runs/*/batches.sqlite"):
        try:
            with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
                states += [row[0] for row in db.execute("SELECT state FROM batches")]
        except sqlite3.Error:
            continue
    return states


@pytest.mark.parametrize(
    ("model", "kill_when"), [("sim-openai/m", "created"), ("sim-anthropic/m", "journaled")]
)
def test_a_run_killed_mid_batch_resumes_by_polling_and_never_resubmits(
    sim: ProviderSimulator, tmp_path: Path, model: str, kill_when: str
) -> None:
    """OpenAI: killed as soon as the provider created the batch (the journal may not hold its id yet: the
    restart finds it by name). Anthropic: killed once the journal holds the batch id."""
    rows = 30
    source = _input(tmp_path, rows)
    out = tmp_path / "out.jsonl"
    home = tmp_path / "home"
    argv = _argv(sim, tmp_path, source, out, model, "--batch", "--batch-size", "5", "--recipes", "none")
    env = dict(os.environ, DATAMILL_HOME=str(home))
    env.pop("DATAMILL_ROUTES", None)
    env.pop("DATAMILL_MODEL", None)
    sim.batches.delay_s = 3.0
    command = [sys.executable, "-m", "datamill.cli.main", *argv]
    first = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if kill_when == "created" and sim.log.operations("batch_create"):
            break
        if kill_when == "journaled" and "submitted" in _journal_states(home):
            break
        time.sleep(0.005)
    first.send_signal(signal.SIGKILL)
    first.wait()
    assert not out.exists()
    (created,) = sim.log.operations("batch_create")
    assert not [e for e in sim.log if e.batch and e.operation is None]  # the batch had not ended
    first_batch = created.batch
    sim.batches.delay_s = 0.2

    second = subprocess.run(command, env=env, capture_output=True, timeout=120, check=False)
    assert second.returncode == 0, second.stderr.decode()

    output = _rows(out)
    assert sorted(row["id"] for row in output) == list(range(rows))
    assert all(row["enhanced_completion"].startswith("[sim] ") for row in output)
    items = [e for e in sim.log if e.batch and e.operation is None]
    bodies = Counter(orjson.dumps(e.body, option=orjson.OPT_SORT_KEYS) for e in items)
    assert len(items) == rows
    assert max(bodies.values()) == 1  # no request was in two batches
    creates = sim.log.operations("batch_create")
    assert len(creates) == len({e.batch for e in items})  # one create per batch
    polled = [e for e in sim.log.operations("batch_get") if e.batch == first_batch]
    assert polled  # the restarted run polled the batch the first one had submitted
    assert [e for e in sim.log.answered() if e.batch is None] == []


def test_an_estimate_of_a_batch_run_is_priced_at_the_batch_discount(
    sim: ProviderSimulator, tmp_path: Path
) -> None:
    source = _input(tmp_path, 8)
    out = tmp_path / "out.jsonl"
    online = _run(_argv(sim, tmp_path, source, out, "sim-openai/m", "--estimate"), tmp_path / "h")
    batched = _run(_argv(sim, tmp_path, source, out, "sim-openai/m", "--estimate", "--batch"), tmp_path / "h")
    assert (online["batched"], batched["batched"]) == (False, True)
    assert online["cost_usd"] > 0
    assert math.isclose(batched["cost_usd"], online["cost_usd"] * 0.5, rel_tol=1e-9)
    assert len(sim.log) == 0  # an estimate calls nothing


def test_the_python_api_runs_in_batch_mode(sim: ProviderSimulator, tmp_path: Path) -> None:
    import datamill
    from datamill.services.settings.entry import Settings

    routes = sim.write_routes(tmp_path / "routes.yaml", batch_poll_s=0.1, **PRICES)
    rows = [{"question": f"How do I reset device {i}?"} for i in range(4)]
    result = datamill.adapt(
        rows,
        prompt="question",
        recipes="none",
        model="sim-gemini/m",
        routes=routes,
        batch=True,
        use_cache=False,
        evaluate=False,
        settings=Settings(data_dir=tmp_path / "home"),
    )
    assert [row["enhanced_completion"][:6] for row in result.data] == ["[sim] "] * 4
    assert len(sim.log.operations("batch_create")) == 1
    assert all(e.batch is not None for e in sim.log.answered())
