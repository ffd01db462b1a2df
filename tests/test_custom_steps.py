"""Your own steps (`datamill.PromptStep`) and prompt templates, on the provider simulator.

The simulator answers a JSON request with a value that matches the schema and a text request with ``[sim] ``
and the prompt, so the tests read what each request carried and what came back into the row.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from pydantic import BaseModel

import datamill
from datamill.cli.main import cli
from datamill.core.errors import ConfigError, ValidationError
from datamill.llm.simulator import ProviderSimulator, serve_in_thread
from datamill.python_api import PromptStep
from datamill.services.settings.entry import Settings

ROWS = [
    {"id": 1, "question": "How do I reset my router?", "answer": "Hold the reset button.", "team": "network"},
    {"id": 2, "question": "Why is my invoice higher?", "answer": "Check the usage tab.", "team": "billing"},
    {"id": 3, "question": "Where is the blinking light?", "answer": "On the front.", "team": "network"},
]


class Topic(BaseModel):
    topic: str
    urgent: bool


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[tuple[ProviderSimulator, dict[str, Any]]]:
    with serve_in_thread(seed=7) as simulator:
        yield (
            simulator,
            {
                "prompt": "question",
                "completion": "answer",
                "recipes": [],
                "model": "sim-openai/gpt",
                "routes": simulator.write_routes(tmp_path / "routes.yaml"),
                "settings": Settings.from_env({"DATAMILL_HOME": str(tmp_path / "home")}),
                "evaluate": False,
            },
        )


def test_a_prompt_step_with_a_schema_fills_its_column_after_the_completion(
    sim: tuple[ProviderSimulator, dict[str, Any]],
) -> None:
    simulator, kwargs = sim
    step = datamill.PromptStep(
        "topic",
        "Team {{ team }}. Classify this exchange.\nQ: {{ original_prompt }}\nA: {{ enhanced_completion }}",
        output="labels",
        schema=Topic,
    )
    result = datamill.adapt(ROWS, steps=[step], **kwargs)

    assert len(result.data) == 3
    for row in result.data:
        Topic.model_validate(row["labels"])  # the parsed JSON, not text
    mine = [entry for entry in simulator.log if "Classify this exchange" in entry.prompt]
    assert len(mine) == 3
    # After the completion: the request carries the answer the completion step wrote ("[sim] ...").
    assert all("A: [sim] " in entry.prompt and "Team " in entry.prompt for entry in mine)
    assert result.summary is not None
    assert result.summary.steps[-1] == "topic"
    assert "topic" in result.summary.usage_by_step


def test_a_subclass_writes_its_prompt_and_parses_the_answer(
    sim: tuple[ProviderSimulator, dict[str, Any]],
) -> None:
    simulator, kwargs = sim

    class Shout(PromptStep):
        def prompt(self, row: dict[str, Any]) -> list[dict[str, str]]:
            return [
                {"role": "system", "content": "You repeat questions loudly."},
                {"role": "user", "content": f"Repeat: {row['original_prompt']}"},
            ]

        def parse(self, row: dict[str, Any], answer: Any) -> dict[str, Any]:
            if "invoice" in answer:
                raise ValueError("no billing questions here")
            return {"loud": answer.upper(), "loud_chars": len(answer)}

    result = datamill.adapt(ROWS, steps=Shout("shout", after="prompt_rephrase"), **kwargs)

    assert sorted(row["id"] for row in result.data) == [1, 3]
    assert all(row["loud"].startswith("[SIM] REPEAT: ") for row in result.data)
    assert [(r["row"]["id"], r["step"], r["reason"]) for r in result.rejected] == [
        (2, "shout", "shout: no billing questions here")
    ]
    # Placed where the rephrase would be (its recipe is off): before the completion.
    assert result.summary is not None
    assert result.summary.steps.index("shout") < result.summary.steps.index("completion")
    assert any(
        entry.body.get("messages", [{}])[0].get("content") == "You repeat questions loudly."
        for entry in simulator.log
    )


def test_a_refusal_is_retried_then_rejects_the_row_naming_it(
    sim: tuple[ProviderSimulator, dict[str, Any]],
) -> None:
    simulator, kwargs = sim
    simulator.set("refusal_field", 1.0, when=lambda r: r.mentions("Summarise: Why is my invoice"))
    step = datamill.PromptStep("summary", "Summarise: {{ original_prompt }}", output="summary")

    result = datamill.adapt(ROWS, steps=[step], **kwargs)

    assert sorted(row["id"] for row in result.data) == [1, 3]
    assert all(not row["summary"].startswith("I'm sorry") for row in result.data)
    (rejected,) = result.rejected
    assert rejected["step"] == "summary"
    assert "refus" in rejected["reason"]
    refused = [e for e in simulator.log if "Summarise: Why is my invoice" in e.prompt]
    assert len(refused) >= 2  # asked again before giving up


def test_a_template_override_changes_the_request_sent(
    sim: tuple[ProviderSimulator, dict[str, Any]], tmp_path: Path
) -> None:
    simulator, kwargs = sim
    folder = tmp_path / "templates"
    folder.mkdir()
    (folder / "completion.yaml").write_text(
        "version: 1\nmessages:\n  - role: system\n    content: You answer as a pirate.\n"
        "  - role: user\n    content: 'Arr, answer this: {{ prompt }}'\n",
        encoding="utf-8",
    )

    result = datamill.adapt(ROWS, templates=folder, **kwargs)

    assert all(row["enhanced_completion"].startswith("[sim] Arr, answer this: ") for row in result.data)
    assert sum("You answer as a pirate." in e.prompt for e in simulator.log) == 3
    # Without the folder the built-in template is back, and the run is not resumed from the other's results.
    plain = datamill.adapt(ROWS, **kwargs)
    assert not any("Arr," in row["enhanced_completion"] for row in plain.data)


def test_a_local_grade_may_use_judge_prompts_of_its_own_and_the_report_says_so(
    sim: tuple[ProviderSimulator, dict[str, Any]], tmp_path: Path
) -> None:
    simulator, kwargs = sim
    folder = tmp_path / "templates"
    folder.mkdir()
    (folder / "judge_quality.yaml").write_text(
        "version: 1\nmessages:\n  - role: system\n    content: My own rubric, strict on tone.\n"
        "  - role: user\n    content: 'Grade: {{ prompt }}'\n",
        encoding="utf-8",
    )

    result = datamill.adapt(ROWS, templates=folder, **(kwargs | {"evaluate": True}))

    assert sum("My own rubric, strict on tone." in e.prompt for e in simulator.log) >= 2
    assert result.evaluation is not None
    judge = result.evaluation["raw_results"]["judge"]
    assert judge["overridden_prompts"] == {"judge_quality": str(folder / "judge_quality.yaml")}
    assert "the judges used overridden prompts (judge_quality from" in judge["note"]
    assert any("the judges used overridden prompts" in note for note in result.summary.notes)
    assert result.report_html is not None
    assert "the judges used overridden prompts" in result.report_html


def test_a_template_folder_with_an_unknown_name_stops_before_any_call(
    sim: tuple[ProviderSimulator, dict[str, Any]], tmp_path: Path
) -> None:
    simulator, kwargs = sim
    folder = tmp_path / "templates"
    folder.mkdir()
    (folder / "complettion.yaml").write_text("version: 1\nmessages: []\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="complettion"):
        datamill.adapt(ROWS, templates=folder, **kwargs)
    assert len(simulator.log) == 0


def test_bad_steps_are_refused_naming_the_field(sim: tuple[ProviderSimulator, dict[str, Any]]) -> None:
    simulator, kwargs = sim
    with pytest.raises(ValidationError, match="output"):
        datamill.PromptStep("x", "{{ original_prompt }}")
    with pytest.raises(ValidationError, match="completion"):
        datamill.PromptStep("completion", "{{ original_prompt }}", output="y")
    with pytest.raises(ValidationError, match="after"):
        datamill.adapt(ROWS, steps=[datamill.PromptStep("x", "hi", output="y", after="nowhere")], **kwargs)
    with pytest.raises(ValidationError, match="nope"):
        datamill.adapt(ROWS, steps=[datamill.PromptStep("x", "{{ nope }}", output="y")], **kwargs)
    assert len(simulator.log) == 0


def test_the_estimate_counts_the_custom_steps_calls(sim: tuple[ProviderSimulator, dict[str, Any]]) -> None:
    _, kwargs = sim
    kwargs.pop("evaluate")
    plain = datamill.estimate(ROWS, **kwargs).to_dict()
    more = datamill.estimate(
        ROWS, steps=[datamill.PromptStep("x", "{{ original_prompt }}", output="y")], **kwargs
    )
    assert more.to_dict()["calls"] == plain["calls"] + 3


def test_the_command_line_takes_steps_and_templates_from_flags_and_the_run_config(tmp_path: Path) -> None:
    (tmp_path / "tickets.csv").write_text(
        "question,answer\nHow do I reset my router?,Hold the button.\nWhy is my bill high?,See usage.\n",
        encoding="utf-8",
    )
    (tmp_path / "topic.yaml").write_text(
        "name: topic\noutput: topic\ntemplate: 'Topic of: {{ original_prompt }}'\n", encoding="utf-8"
    )
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "completion.yaml").write_text(
        "version: 1\nmessages:\n  - role: user\n    content: 'Briefly: {{ prompt }}'\n", encoding="utf-8"
    )
    (tmp_path / "run.yaml").write_text(
        f"input: {tmp_path / 'tickets.csv'}\noutput: {tmp_path / 'out.jsonl'}\n"
        "column_mapping: {prompt: question, completion: answer}\n"
        f"steps: [{tmp_path / 'topic.yaml'}]\ntemplates: {tmp_path / 'templates'}\n",
        encoding="utf-8",
    )
    env = {"DATAMILL_HOME": str(tmp_path / "home"), "DATAMILL_MODEL": "fake/test-model"}
    result = CliRunner().invoke(
        cli, ["adapt", "--config", str(tmp_path / "run.yaml"), "--no-eval", "-q"], env=env
    )
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text("utf-8").splitlines()]
    assert [row["topic"] for row in rows] == [
        "[fake] Topic of: How do I reset my router?",
        "[fake] Topic of: Why is my bill high?",
    ]
    assert all(row["enhanced_completion"].startswith("[fake] Briefly: ") for row in rows)

    bad = CliRunner().invoke(
        cli,
        [
            "adapt",
            str(tmp_path / "tickets.csv"),
            "--prompt",
            "question",
            "--step",
            "nope.yaml",
            "-o",
            "x.jsonl",
        ],
    )
    assert bad.exit_code == 2
    assert "--step nope.yaml: cannot read the step file" in bad.output
