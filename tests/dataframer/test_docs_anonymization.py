"""The Python block of docs/anonymization.md runs as written against the loopback server, and prints what
the page says it prints."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from conftest import RunningServer

DOC = Path(__file__).parents[2] / "docs" / "anonymization.md"
_BLOCK = re.compile(r"^```(\w+)\n(.*?)^```", re.MULTILINE | re.DOTALL)


def _blocks(language: str) -> list[str]:
    return [body for lang, body in _BLOCK.findall(DOC.read_text(encoding="utf-8")) if lang == language]


def test_every_block_is_python_or_its_printed_text() -> None:
    assert {lang for lang, _ in _BLOCK.findall(DOC.read_text(encoding="utf-8"))} == {"python", "text"}


def test_the_python_block_prints_what_the_page_shows(
    df_server: RunningServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (code,) = _blocks("python")
    (shown,) = _blocks("text")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATAFRAMER_BASE_URL", df_server.base_url)
    monkeypatch.setenv("DATAFRAMER_API_KEY", df_server.new_key("docs-anonymization"))
    printed: list[str] = []

    def record(*values: object) -> None:
        printed.append(" ".join(str(v) for v in values))

    exec(compile(code, str(DOC), "exec"), {"__name__": "docs_anonymization", "print": record})
    assert "\n".join(printed).strip() == shown.strip()
