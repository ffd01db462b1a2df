"""Every fenced code block of README.md and docs/*.md, with the mark that says how the suite checks it.

The pages are parsed with markdown-it (the CommonMark parser rich already brings), so indented fences, fences
inside lists and longer fences around shorter ones are found as a Markdown renderer finds them. A block is
checked by `tests/test_docs_blocks.py` according to its language, unless the HTML comment on the line right
before it (blank lines aside) marks it otherwise (docs/testing.md, "Code blocks in the docs"):

``<!-- not run: REASON -->``
    not run at all; REASON says why, in words a reader understands (it needs a cloud account, it is sample
    output, ...).
``<!-- run by: tests/PATH.py -->``
    run by that test file, which must exist and name the page.
``<!-- run with: server -->``
    run as usual, against a datamill server that the runner starts on loopback for the page (its SDK
    clients read ``ADAPTION_API_KEY``/``ADAPTION_BASE_URL``, ``DATAFRAMER_API_KEY``/``DATAFRAMER_BASE_URL``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from markdown_it import MarkdownIt

ROOT = Path(__file__).resolve().parents[1]
_MARK = re.compile(r"^<!--\s*(not run|run by|run with):\s*(.*?)\s*-->$")
NOT_RUN, RUN_BY, RUN_WITH = "not run", "run by", "run with"


@dataclass(frozen=True)
class Block:
    """One fenced block: where it is, its language (the info string's first word), its text and its mark."""

    page: Path
    line: int  # 1-based line of the opening fence
    language: str
    code: str
    mark: str | None = None  # NOT_RUN, RUN_BY, RUN_WITH or None
    mark_text: str = ""

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def pages() -> list[Path]:
    """README.md and every page under docs/ (new pages are picked up as they are added)."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def blocks(page: Path) -> list[Block]:
    """The page's fenced blocks, in order."""
    text = page.read_text(encoding="utf-8")
    lines = text.splitlines()
    found: list[Block] = []
    for token in MarkdownIt("commonmark").parse(text):
        if token.type != "fence" or token.map is None:
            continue
        start = token.map[0]
        mark, mark_text = _mark_before(lines, start)
        language = token.info.split()[0].lower() if token.info.strip() else ""
        found.append(Block(page, start + 1, language, token.content, mark, mark_text))
    return found


def _mark_before(lines: list[str], fence: int) -> tuple[str | None, str]:
    for index in range(fence - 1, -1, -1):
        line = lines[index].strip()
        if not line:
            continue
        matched = _MARK.match(line)
        return (matched.group(1), matched.group(2)) if matched else (None, "")
    return None, ""


def all_blocks() -> list[Block]:
    return [block for page in pages() for block in blocks(page)]
