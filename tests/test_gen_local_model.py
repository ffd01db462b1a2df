"""`datamill spec create` and `datamill generate` offline on the real bundled model, for a tiny run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from datamill.cli.main import cli
from datamill.core.spec import parse_spec_yaml

pytest.importorskip("llama_cpp", reason="the bundled model needs the 'local' extra (make install)")


@pytest.mark.local_model
def test_spec_and_generate_run_offline_on_the_bundled_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("DATAMILL_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("DATAMILL_MODEL", raising=False)
    monkeypatch.delenv("DATAMILL_ROUTES", raising=False)
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    (seeds / "a.txt").write_text("The phone is great; the battery lasts two days.")
    (seeds / "b.txt").write_text("The laptop broke after a week. Very disappointed.")
    spec_path = tmp_path / "spec.yaml"
    runner = CliRunner()
    created = runner.invoke(cli, ["spec", "create", str(seeds), "-o", str(spec_path)])
    assert created.exit_code == 0, created.output
    spec = parse_spec_yaml(spec_path.read_text())
    assert spec.metadata["spec_generation_model_name"] == "local/smollm2-135m-instruct"
    assert spec.axes
    out = tmp_path / "out.jsonl"
    args = ["generate", "--spec", str(spec_path), "-n", "2", "-o", str(out), "--skip-outline"]
    result = runner.invoke(cli, [*args, "--max-tokens", "48", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["delivered"] == 2
    assert summary["usage"]["total"]["output_tokens"] > 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 2
    assert all(row["sample"].strip() for row in rows)
    assert all(set(row["properties"]) == {a.name for a in spec.axes} for row in rows)
