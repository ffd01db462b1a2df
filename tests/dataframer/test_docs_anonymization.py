"""The Python block of docs/anonymization.md runs as written against the loopback server, and prints what
the page says it prints."""

from __future__ import annotations

from pathlib import Path

import pytest
from doc_blocks import blocks, fenced, run_block

from conftest import RunningServer

PAGE = "anonymization.md"


def test_every_block_is_python_or_its_printed_text() -> None:
    assert {lang for lang, _ in fenced(PAGE)} == {"python", "text"}


def test_the_python_block_prints_what_the_page_shows(
    df_server: RunningServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (code,) = blocks(PAGE)
    (shown,) = blocks(PAGE, "text")
    monkeypatch.chdir(tmp_path)
    printed = run_block(PAGE, code, df_server.base_url, df_server.new_key("docs-anonymization"), monkeypatch)
    assert "\n".join(printed).strip() == shown.strip()
