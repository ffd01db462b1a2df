"""The code blocks of docs/judges.md run as written, through the official SDK, on a loopback server."""

from __future__ import annotations

import pytest
from doc_blocks import blocks, run_block

from conftest import RunningServer

PAGE = "judges.md"
BLOCKS = blocks(PAGE)


def _run(code: str, server: RunningServer, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Run `code` with a new tenant's key; what it printed."""
    return run_block(PAGE, code, server.base_url, server.new_key(), monkeypatch)


def test_the_page_has_its_examples() -> None:
    assert len(BLOCKS) == 3


def test_the_define_block_runs(df_server: RunningServer, monkeypatch: pytest.MonkeyPatch) -> None:
    printed = _run(BLOCKS[0], df_server, monkeypatch)
    assert printed == ["1 ['politeness', 'answers_the_question', 'brevity']", "1"]


def test_the_grade_block_runs(df_server: RunningServer, monkeypatch: pytest.MonkeyPatch) -> None:
    printed = _run(BLOCKS[1], df_server, monkeypatch)
    assert printed == ["succeeded 0.0 overall", "True"]  # the fake model scores the lowest level


def test_the_dataset_block_grades_every_sample(
    df_server: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    printed = _run(BLOCKS[2], df_server, monkeypatch)
    assert printed[0] == "succeeded 3 3"
    assert [line.split()[1] for line in printed[1:]] == ["0.0", "0.0", "0.0"]  # the fake model's lowest level
    assert len({line.split()[0] for line in printed[1:]}) == 3
