"""Progress through every phase of a long command, and what Ctrl-C says.

- the evaluation after an adaptation has its own progress (judge calls made of those to make), on the command
  line and in the Python API's reports, instead of a bar that stands still at rows done;
- ``generate``, ``spec create`` and ``spec evaluate`` show progress;
- Ctrl-C (SIGINT to a real ``datamill adapt`` process) prints how to resume and exits 130, and the same
  command then resumes from the finished batches.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

import datamill
from datamill.cli.errors import handle_errors
from datamill.cli.main import cli
from datamill.llm.simulator import ProviderSimulator, serve_in_thread
from datamill.services.settings.entry import Settings

QUESTIONS = [f"Question number {i}: how do I change setting {i} on my router?" for i in range(12)]


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[tuple[ProviderSimulator, Path]]:
    with serve_in_thread(seed=9) as simulator:
        yield simulator, simulator.write_routes(tmp_path / "routes.yaml")


def _rows() -> list[dict[str, Any]]:
    return [{"question": q, "answer": f"Open menu {i}."} for i, q in enumerate(QUESTIONS)]


def test_the_python_api_reports_the_evaluation_phase(
    sim: tuple[ProviderSimulator, Path], tmp_path: Path
) -> None:
    _, routes = sim
    seen: list[datamill.Progress] = []
    datamill.adapt(
        _rows(),
        prompt="question",
        completion="answer",
        recipes=[],
        model="sim-openai/gpt",
        routes=routes,
        settings=Settings.from_env({"DATAMILL_HOME": str(tmp_path / "home")}),
        eval_sample_size=4,
        progress=seen.append,
    )
    phases = [p.phase for p in seen]
    assert phases[0] == "adapting"
    assert phases[-1] == "evaluating"
    assert seen[-1].finished
    assert seen[-1].to_judge == 8  # two judge calls per sampled row
    assert seen[-1].judged == 8
    assert [p.judged for p in seen] == sorted(p.judged for p in seen)


def test_the_command_line_shows_an_evaluation_bar(
    sim: tuple[ProviderSimulator, Path], tmp_path: Path
) -> None:
    _, routes = sim
    source = tmp_path / "tickets.csv"
    source.write_text("question,answer\n" + "".join(f'"{q}",ok\n' for q in QUESTIONS), encoding="utf-8")
    argv = ["adapt", str(source), "--prompt", "question", "--completion", "answer", "--recipes", "rephrase"]
    argv += ["--model", "sim-openai/gpt", "--routes", str(routes), "--eval-sample-size", "3"]
    argv += ["-o", str(tmp_path / "out.jsonl")]
    result = CliRunner().invoke(cli, argv, env={"DATAMILL_HOME": str(tmp_path / "home")})
    assert result.exit_code == 0, result.output
    adapting = next(line for line in result.stderr.splitlines() if line.startswith("adapting"))
    evaluating = next(line for line in result.stderr.splitlines() if line.startswith("evaluating"))
    assert "12/12" in adapting
    assert "6/6" in evaluating  # three sampled rows, judged before and after


def test_generation_commands_show_progress(tmp_path: Path) -> None:
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    for i in range(3):
        (seeds / f"s{i}.txt").write_text(f"Customer: question {i}\nAgent: answer {i}", encoding="utf-8")
    env = {"DATAMILL_HOME": str(tmp_path / "home"), "DATAMILL_MODEL": "fake/test"}
    runner = CliRunner()
    spec = tmp_path / "spec.yaml"
    created = runner.invoke(cli, ["spec", "create", str(seeds), "-o", str(spec)], env=env)
    assert created.exit_code == 0, created.output
    assert "writing the spec" in created.stderr
    out = tmp_path / "out.jsonl"
    generated = runner.invoke(
        cli, ["generate", "--spec", str(spec), "-n", "3", "-o", str(out), "--novelty-threshold", "1"], env=env
    )
    assert generated.exit_code == 0, generated.output
    line = next(line for line in generated.stderr.splitlines() if line.startswith("generating"))
    assert "3/3" in line
    evaluated = runner.invoke(cli, ["spec", "evaluate", str(spec), "--samples", str(out)], env=env)
    assert evaluated.exit_code == 0, evaluated.output
    assert "evaluating samples" in evaluated.stderr
    quiet = runner.invoke(
        cli,
        ["generate", "--spec", str(spec), "-n", "3", "-o", str(out), "--novelty-threshold", "1", "-q"],
        env=env,
    )
    assert "generating" not in quiet.stderr


def test_ctrl_c_says_how_to_resume_and_the_same_command_resumes(
    sim: tuple[ProviderSimulator, Path], tmp_path: Path
) -> None:
    simulator, routes = sim
    simulator.latency_s = 0.2
    source = tmp_path / "tickets.csv"
    source.write_text("question,answer\n" + "".join(f'"{q}",ok\n' for q in QUESTIONS), encoding="utf-8")
    argv = [sys.executable, "-m", "datamill.cli.main", "adapt", str(source), "--prompt", "question"]
    argv += [
        "--completion",
        "answer",
        "--recipes",
        "rephrase",
        "--model",
        "sim-openai/gpt",
        "--no-eval",
        "-q",
    ]
    argv += ["--routes", str(routes), "--batch-size", "2", "-o", str(tmp_path / "out.jsonl")]
    env = {**os.environ, "DATAMILL_HOME": str(tmp_path / "home"), "PYTHONPATH": os.pathsep.join(sys.path)}

    process = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    home = tmp_path / "home"
    while not list(home.glob("runs/*/parts/*")) and time.monotonic() < deadline:  # a batch is checkpointed
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)

    assert process.returncode == 130, stderr
    assert "Aborted!" not in stderr
    assert "Run the same `" in stderr
    assert "command again to resume" in stderr
    assert "the finished batches are kept" in stderr

    simulator.latency_s = 0.0
    again = subprocess.run([*argv, "--json"], env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    summary = json.loads(again.stdout)
    assert summary["batches_resumed"] > 0, summary
    assert summary["rows_out"] == 12


def test_the_interrupt_hint_names_the_command_and_what_is_kept() -> None:
    @click.command("generate")
    @click.option("--no-cache", is_flag=True)
    @handle_errors
    def generate(no_cache: bool) -> None:
        raise KeyboardInterrupt

    @click.command("keys")
    @handle_errors
    def keys() -> None:
        raise KeyboardInterrupt

    runner = CliRunner()
    cached = runner.invoke(generate, [])
    assert cached.exit_code == 130
    assert "answered model calls are in the response cache" in cached.stderr
    assert "Run the same `generate` command again to resume." in cached.stderr
    uncached = runner.invoke(generate, ["--no-cache"])
    assert "nothing is kept with --no-cache" in uncached.stderr
    other = runner.invoke(keys, [])
    assert (other.exit_code, other.stderr.strip()) == (130, "error: interrupted.")
