"""A YAML run config may hold its own steps and prompt templates inline (``custom_steps``,
``prompt_templates``), as a server's run request does: the command line runs them, and a template reaching
for ``__class__`` stops the run before any model call, naming the field."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from datamill.cli.main import cli

CONFIG = """\
input: {folder}/tickets.csv
output: {folder}/out.jsonl
column_mapping: {{prompt: question, completion: answer}}
recipe_specification: {{recipes: {{deduplication: false, prompt_rephrase: false}}}}
custom_steps:
  - name: topic
    output: topic
    template: "{template}"
    schema: {{type: object, properties: {{topic: {{type: string}}}}, required: [topic]}}
prompt_templates:
  completion:
    version: 1
    messages:
      - {{role: user, content: "Customer asks: {{{{ prompt }}}}"}}
"""


def _run(folder: Path, template: str) -> tuple[int, str]:
    (folder / "tickets.csv").write_text(
        "question,answer\nHow do I reset my router?,Hold the button.\nWhy is my bill high?,See usage.\n",
        encoding="utf-8",
    )
    (folder / "run.yaml").write_text(CONFIG.format(folder=folder, template=template), encoding="utf-8")
    env = {"DATAMILL_HOME": str(folder / "home"), "DATAMILL_MODEL": "fake/test-model"}
    result = CliRunner().invoke(
        cli, ["adapt", "--config", str(folder / "run.yaml"), "--no-eval", "-q"], env=env
    )
    return result.exit_code, result.output


def test_a_run_config_runs_inline_steps_and_templates(tmp_path: Path) -> None:
    code, output = _run(tmp_path, "Topic of: {{ original_prompt }}")
    assert code == 0, output
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text("utf-8").splitlines()]
    assert len(rows) == 2
    assert all(isinstance(row["topic"]["topic"], str) for row in rows)
    assert [row["enhanced_completion"] for row in rows] == [
        "[fake] Customer asks: How do I reset my router?",
        "[fake] Customer asks: Why is my bill high?",
    ]


def test_an_inline_template_reaching_for_internals_stops_the_run(tmp_path: Path) -> None:
    code, output = _run(tmp_path, "{{ original_prompt.__class__ }}")
    assert code != 0
    assert "custom_steps[0].template" in output
    assert "may not use names that start with '_'" in output
    assert not (tmp_path / "out.jsonl").exists()
