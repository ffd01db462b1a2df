"""`datamill adapt` options beyond the basics: --estimate, --config, the evaluation report, modes."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from datamill.cli.main import cli

SAMPLE = Path(__file__).parents[1] / "src" / "datamill" / "samples" / "support.csv"
BASE = ("--prompt", "question", "--completion", "answer", "--context", "product", "--model", "fake/demo")


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("DATAMILL_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("DATAMILL_ROUTES", raising=False)
    monkeypatch.delenv("DATAMILL_MODEL", raising=False)
    return CliRunner()


def invoke(runner: CliRunner, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def read_jsonl(path: Path) -> list[dict]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


def test_estimate_quotes_the_plan_and_runs_nothing(runner: CliRunner, tmp_path: Path):
    out = tmp_path / "o.jsonl"
    code, stdout, stderr = invoke(
        runner,
        "adapt",
        str(SAMPLE),
        *BASE,
        "--recipes",
        "dedup,rephrase",
        "--estimate",
        "--json",
        "-o",
        str(out),
    )
    assert code == 0, stderr
    estimate = json.loads(stdout)
    assert [s["name"] for s in estimate["steps"]] == ["prompt_rephrase", "rephrase_check", "completion"]
    # 10 rows, one exact duplicate: 9 rephrases and 9 completions.
    assert estimate["calls"] == 18
    assert estimate["rows_out"] == 9
    assert estimate["input_tokens"] > 0
    assert estimate["credits"] > 0
    assert not out.exists()
    assert not (tmp_path / "home" / "cache").exists() or not any((tmp_path / "home" / "runs").glob("*"))


def test_estimate_table_is_printed(runner: CliRunner, tmp_path: Path):
    code, stdout, _ = invoke(
        runner, "adapt", str(SAMPLE), *BASE, "--estimate", "-o", str(tmp_path / "o.jsonl")
    )
    assert code == 0
    assert "prompt_rephr" in stdout
    assert "credits" in stdout


def test_a_run_reports_estimate_beside_actual(runner: CliRunner, tmp_path: Path):
    code, stdout, stderr = invoke(
        runner, "adapt", str(SAMPLE), *BASE, "--no-eval", "--json", "-o", str(tmp_path / "o.jsonl")
    )
    assert code == 0, stderr
    summary = json.loads(stdout)
    calls = summary["estimate_vs_actual"]["calls"]
    assert calls["estimated"] == calls["actual"] == summary["calls"]
    assert summary["estimate_vs_actual"]["total_tokens"]["actual"] > 0


def test_config_file_gives_every_option_and_flags_override(runner: CliRunner, tmp_path: Path):
    config = tmp_path / "run.yaml"
    config.write_text(
        f"input: {SAMPLE}\n"
        "output: out/adapted.jsonl\n"
        "model: fake/demo\n"
        "column_mapping: {prompt: question, completion: answer, context: [product]}\n"
        "recipe_specification: {recipes: {deduplication: true, prompt_rephrase: false}}\n"
        "brand_controls: {length: concise}\n"
        "job_specification: {max_rows: 6}\n"
        "evaluate: false\n"
        "seed: 5\n"
    )
    code, stdout, stderr = invoke(runner, "adapt", "--config", str(config), "--max-rows", "4", "--json")
    assert code == 0, stderr
    summary = json.loads(stdout)
    assert summary["output_path"] == str(tmp_path / "out" / "adapted.jsonl")
    assert summary["rows_selected"] == 4  # the flag beats the config's 6
    assert "prompt_rephrase" not in summary["steps"]
    assert summary["report_path"] is None


def test_config_file_errors_name_the_key(runner: CliRunner, tmp_path: Path):
    config = tmp_path / "run.yaml"
    config.write_text("inptu: x.csv\nbatch_size: 0\n")
    code, _, stderr = invoke(runner, "adapt", "--config", str(config))
    assert code == 2
    assert "inptu" in stderr
    assert "batch_size" in stderr


def test_evaluation_writes_the_report_and_grades(runner: CliRunner, tmp_path: Path):
    out = tmp_path / "o.jsonl"
    code, stdout, stderr = invoke(
        runner, "adapt", str(SAMPLE), *BASE, "--eval-sample-size", "5", "--json", "-o", str(out)
    )
    assert code == 0, stderr
    summary = json.loads(stdout)
    assert summary["quality"]["grade_before"] in "ABCDE"
    assert summary["quality"]["grade_after"] in "ABCDE"
    evaluation = json.loads((tmp_path / "o.evaluation.json").read_text())
    assert evaluation["status"] == "succeeded"
    assert len(evaluation["raw_results"]["rows"]) == 5
    html = Path(summary["report_path"]).read_text()
    assert "<svg" in html
    HTMLParser().feed(html)


def test_chat_mode_regenerates_assistant_turns(runner: CliRunner, tmp_path: Path):
    source = tmp_path / "chats.jsonl"
    chats = [
        [{"role": "user", "content": f"question {i}"}, {"role": "assistant", "content": f"old answer {i}"}]
        for i in range(3)
    ]
    source.write_bytes(b"".join(orjson.dumps({"id": i, "messages": c}) + b"\n" for i, c in enumerate(chats)))
    out = tmp_path / "o.jsonl"
    code, stdout, stderr = invoke(
        runner,
        "adapt",
        str(source),
        "--chat",
        "messages",
        "--model",
        "fake/demo",
        "--no-eval",
        "--json",
        "-o",
        str(out),
    )
    assert code == 0, stderr
    summary = json.loads(stdout)
    assert "prompt_rephrase" not in summary["steps"]
    rows = read_jsonl(out)
    assert [r["original_chat"] for r in rows] == chats
    for row in rows:
        assert row["enhanced_chat"][0] == row["original_chat"][0]
        assert row["enhanced_chat"][1]["role"] == "assistant"
        assert row["enhanced_chat"][1]["content"].startswith("[fake]")


def test_image_column_needs_a_vision_model(runner: CliRunner, tmp_path: Path):
    (tmp_path / "cat.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 8)
    source = tmp_path / "images.csv"
    source.write_text("question,picture\nwhat animal is this,cat.png\n")
    blind = tmp_path / "routes.yaml"
    blind.write_text("routes:\n  blind/*:\n    provider: fake\n")
    args = (
        "adapt",
        str(source),
        "--prompt",
        "question",
        "--image",
        "picture",
        "--no-eval",
        "-o",
        str(tmp_path / "o.jsonl"),
    )
    code, _, stderr = invoke(runner, *args, "--model", "blind/m", "--routes", str(blind))
    assert code == 2
    assert "cannot read images" in stderr
    code, stdout, stderr = invoke(runner, *args, "--model", "fake/vision", "--json")
    assert code == 0, stderr
    assert json.loads(stdout)["rows_out"] == 1
