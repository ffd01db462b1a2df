"""The code blocks of docs/server.md's catalogue and responses sections run as written, against a loopback
server (the walkthrough blocks elsewhere need files and models of the reader's own)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from conftest import RunningServer

DOC = Path(__file__).parents[2] / "docs" / "server.md"
SECTIONS = ("Models, tools, export links and training settings", "Responses")
_BLOCK = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)


def _section_block(title: str) -> str:
    text = DOC.read_text(encoding="utf-8")
    found = re.search(rf"^## {re.escape(title)}\n(.*?)^## ", text, re.MULTILINE | re.DOTALL)
    assert found is not None, f"the section {title!r} is gone from docs/server.md"
    (block,) = _BLOCK.findall(found.group(1))
    return str(block)


def _run(code: str, server: RunningServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Run `code` as a reader would, with the key and server in the environment; what it printed."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ADAPTION_API_KEY", server.new_key())
    monkeypatch.setenv("ADAPTION_BASE_URL", server.base_url)
    printed: list[str] = []

    def record(*values: object) -> None:  # what the block prints, one line per call
        printed.append(" ".join(str(v) for v in values))

    exec(compile(code, str(DOC), "exec"), {"__name__": "docs_server", "print": record})
    return printed


def test_the_catalogue_block_runs(
    server: RunningServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    printed = _run(_section_block(SECTIONS[0]), server, tmp_path, monkeypatch)
    assert "local/smollm2-135m-instruct local" in printed
    assert "['file_search']" in printed
    assert printed[-4:] == ["None []", "None", "3.0 0.0002", "[]"]


def test_the_responses_block_runs(
    server: RunningServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    printed = _run(_section_block(SECTIONS[1]), server, tmp_path, monkeypatch)
    assert printed == ["completed True", "True True", "response.completed", "['user']", "True", "True"]
