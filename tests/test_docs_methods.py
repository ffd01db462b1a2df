"""The Python blocks of the pages on data-quality methods run as written (fake model, no network)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOCS = Path(__file__).parents[1] / "docs"
PAGES = ("reasoning.md", "evaluation.md", "grounding.md")
_BLOCK = re.compile(r"^```(\w+)\n(.*?)^```", re.MULTILINE | re.DOTALL)


def _blocks() -> list[tuple[str, str]]:
    return [
        (page, body)
        for page in PAGES
        for lang, body in _BLOCK.findall((DOCS / page).read_text(encoding="utf-8"))
        if lang == "python"
    ]


def test_every_page_has_an_example() -> None:
    assert {page for page, _ in _blocks()} == set(PAGES)


def _runnable(page: str, code: str) -> bool:
    # grounding.md also shows a sketch of the search protocol and an index built from your own folders.
    return page != "grounding.md" or "asyncio.run(main())" in code


@pytest.mark.parametrize(
    ("page", "code"), [b for b in _blocks() if _runnable(*b)], ids=lambda value: value[:24]
)
def test_python_blocks_run(page: str, code: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATAMILL_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    exec(compile(code, str(DOCS / page), "exec"), {"__name__": "docs_methods"})
