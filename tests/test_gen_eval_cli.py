"""`datamill spec evaluate` on the shipped fake judge (it answers each property's first value)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from datamill.cli.main import cli

SPEC = """
spec:
  description: A support email
  data_property_variations:
    - property_name: Tone
      property_values: [formal, casual]
      base_distributions: {formal: 50, casual: 50}
"""


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("DATAMILL_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("DATAMILL_ROUTES", raising=False)
    monkeypatch.delenv("DATAMILL_MODEL", raising=False)
    return CliRunner()


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC)
    samples = tmp_path / "out.jsonl"
    tones = ["formal", "formal", "formal", "casual"]
    lines = [
        {"id": i, "sample": f"Dear team, #{i}", "properties": {"Tone": t}} for i, t in enumerate(tones, 1)
    ]
    samples.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return spec, samples


def test_evaluate_prints_a_table_and_writes_the_report(runner: CliRunner, tmp_path: Path, files):
    spec, samples = files
    report_path = tmp_path / "report.json"
    args = ["spec", "evaluate", str(spec), "--samples", str(samples), "-o", str(report_path)]
    result = runner.invoke(cli, [*args, "--model", "fake/judge"])
    assert result.exit_code == 0, result.output
    assert "conformance 75/100 over 4 samples (4 classified, judge fake/judge)" in result.output
    # 100% read formal against 75% drawn is within what 4 samples explain; casual fails on its match rate.
    assert "1 non-conformant areas" in result.output
    formal_row = next(line for line in result.output.splitlines() if "formal" in line)
    assert [cell.strip() for cell in formal_row.split("│")[1:8]] == [
        "Tone",
        "formal",
        "50",
        "75",
        "100",
        "100",
        "yes",
    ]

    report = json.loads(report_path.read_text())
    assert report["evaluation_model"] == "fake/judge"
    assert report["conformance_score"] == 75.0
    assert report["distribution_analysis"][0]["evaluated_distributions"] == {"formal": 100.0, "casual": 0.0}
    casual = next(a for a in report["non_conformant_areas"] if a["value"] == "casual")
    assert casual["match_rate"] == 0.0
    assert [c["conformant"] for c in report["sample_classifications"]] == [True, True, True, False]
    assert report["usage"]["by_tag"]["generation_eval"]["requests"] == 4


def test_missing_samples_say_what_to_give(runner: CliRunner, tmp_path: Path, files):
    spec, _ = files
    result = runner.invoke(cli, ["spec", "evaluate", str(spec), "--samples", str(tmp_path / "nope.jsonl")])
    assert result.exit_code == 2
    assert "samples: " in result.output
    assert "give OUT.jsonl or a folder of samples" in result.output


def test_unknown_judge_model_is_a_clear_error(runner: CliRunner, files):
    spec, samples = files
    result = runner.invoke(
        cli, ["spec", "evaluate", str(spec), "--samples", str(samples), "--model", "nope/x"]
    )
    assert result.exit_code == 2
    assert "unknown model 'nope/x'" in result.output
