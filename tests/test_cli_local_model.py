"""The whole `datamill demo` on the real bundled model: no network, no keys."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from datamill.cli.main import cli

pytest.importorskip("llama_cpp", reason="the bundled model needs the 'local' extra (make install)")


@pytest.mark.local_model
def test_demo_runs_the_bundled_model_end_to_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("DATAMILL_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("DATAMILL_MODEL", raising=False)
    monkeypatch.delenv("DATAMILL_ROUTES", raising=False)
    out = tmp_path / "demo.jsonl"
    result = CliRunner().invoke(cli, ["demo", "--max-rows", "3", "-o", str(out), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["model"] == "local/smollm2-135m-instruct"
    assert summary["rows_selected"] == 3
    rows = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    assert 1 <= len(rows) <= 3
    for row in rows:
        assert row["enhanced_prompt"].strip()
        assert row["enhanced_completion"].strip()
    assert summary["calls"] == 2 * len(rows)
    assert summary["output_tokens"] > 0
