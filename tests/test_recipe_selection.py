"""One rule picks the recipes, whether a run is asked for by the API body, the command line or Python.

``{"prompt_rephrase": true}``, ``--recipes rephrase`` and ``recipes=["rephrase"]`` all rephrase without
deduplicating: a file with a repeated row keeps both rows and the steps run are the same.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

import datamill
from datamill.cli.main import cli
from datamill.core.run_options import RunOptions
from datamill.services.adaptation.adapt import AdaptJob, adapt_file
from datamill.services.settings.entry import Settings

ROWS = [
    {"question": "How do I reset my router?", "answer": "Hold the reset button."},
    {"question": "Why is my invoice higher this month?", "answer": "Check the usage tab."},
    {"question": "How do I reset my router?", "answer": "Hold the reset button."},
]


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in ROWS), encoding="utf-8")
    return path


def test_rephrase_alone_runs_no_dedup_from_the_body_the_flags_and_python(
    source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("DATAMILL_HOME", str(home))
    monkeypatch.delenv("DATAMILL_MODEL", raising=False)
    settings = Settings.from_env({"DATAMILL_HOME": str(home)})
    mapping = {"prompt": "question", "completion": "answer"}

    body = {"column_mapping": mapping, "recipe_specification": {"recipes": {"prompt_rephrase": True}}}
    job = AdaptJob(source, tmp_path / "body.jsonl", model="fake/test", options=RunOptions(evaluate=False))
    from_body = adapt_file(job, body, settings=settings)

    args = ["adapt", str(source), "-o", str(tmp_path / "cli.jsonl"), "--prompt", "question"]
    args += ["--completion", "answer", "--recipes", "rephrase", "--model", "fake/test", "--no-eval", "--json"]
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    from_cli = json.loads(result.stdout)

    from_python = datamill.adapt(
        ROWS, **mapping, recipes=["prompt_rephrase"], model="fake/test", evaluate=False, settings=settings
    )
    assert from_python.summary is not None

    assert from_body.steps == from_cli["steps"] == from_python.summary.steps
    assert "deduplication" not in from_body.steps, from_body.steps
    assert any("rephrase" in step for step in from_body.steps)
    assert from_body.rows_out == from_cli["rows_out"] == len(from_python.data) == 3
