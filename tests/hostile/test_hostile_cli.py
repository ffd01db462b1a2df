"""`datamill adapt` on each hostile file: a message saying what to fix, exit code 2, no output files left."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from hostile_files import FILES, GENERATED, UNREADABLE

from datamill.cli.main import cli


@pytest.mark.parametrize("name", sorted([*UNREADABLE, "deep_arrays.json", "huge_cell.csv"]))
def test_adapt_on_a_hostile_file_fails_cleanly(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATAMILL_HOME", str(tmp_path / "home"))
    if name in UNREADABLE:
        path, message = FILES / name, UNREADABLE[name]
    else:
        build, message = GENERATED[name]
        path = build(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    result = CliRunner().invoke(
        cli,
        ["adapt", str(path), "--prompt", "q", "--model", "fake/x", "-q", "-o", str(out / "adapted.jsonl")],
        catch_exceptions=False,  # an exception escaping the CLI would be a traceback for the user
    )
    text = result.stdout + result.stderr
    assert result.exit_code == 2, text
    assert message in text
    assert "Traceback" not in text
    assert list(out.iterdir()) == []
