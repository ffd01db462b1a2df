"""``datamill adapt``'s grounding flags: the text and source columns of record files, and the index file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from datamill.cli.main import cli

KB = [
    {
        "body": "To reset your router, hold the reset button for ten seconds.",
        "url": "https://help.example/reset",
    },
    {"body": "Refunds reach your card within five business days.", "url": "https://help.example/refunds"},
]


def test_record_files_are_read_by_the_columns_named_into_the_index_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATAMILL_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("DATAMILL_MODEL", raising=False)
    kb = tmp_path / "faq.jsonl"
    kb.write_text("".join(json.dumps(r) + "\n" for r in KB), encoding="utf-8")
    rows = tmp_path / "rows.jsonl"
    rows.write_text(json.dumps({"question": "How do I reset my router?"}) + "\n", encoding="utf-8")
    index, out = tmp_path / "indexes" / "faq.sqlite", tmp_path / "out.jsonl"
    args = ["adapt", str(rows), "-o", str(out), "--prompt", "question", "--model", "fake/test", "--no-eval"]
    args += ["--recipes", "none", "--grounding-docs", str(kb), "--grounding-index", str(index)]

    without_column = CliRunner().invoke(cli, args)
    assert without_column.exit_code != 0
    assert "text" in without_column.output  # the records have no `text` field

    grounded = CliRunner().invoke(
        cli, [*args, "--grounding-text-column", "body", "--grounding-source-column", "url"]
    )
    assert grounded.exit_code == 0, grounded.output
    (row,) = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert row["grounded"] is True
    assert row["grounding_sources"][0]["source"] == "https://help.example/reset"
    assert index.is_file()
    assert not (tmp_path / "home" / "grounding").exists()
