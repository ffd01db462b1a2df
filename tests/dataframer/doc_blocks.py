"""The fenced code blocks of a page of docs/, and running its Python blocks as written on a loopback server.

A block runs with the server's address and a tenant's key in the environment (``DATAFRAMER_BASE_URL``,
``DATAFRAMER_API_KEY``), as the page tells a reader to set them, so the official SDK reaches the server;
what it prints is returned line by line.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOCS = Path(__file__).parents[2] / "docs"
_BLOCK = re.compile(r"^```(\w+)\n(.*?)^```", re.MULTILINE | re.DOTALL)


def fenced(page: str) -> list[tuple[str, str]]:
    """``(language, body)`` of every fenced block of ``docs/<page>``, in order."""
    return _BLOCK.findall((DOCS / page).read_text(encoding="utf-8"))


def blocks(page: str, language: str = "python") -> list[str]:
    """The bodies of the page's blocks in `language`, in order."""
    return [body for lang, body in fenced(page) if lang == language]


def run_block(page: str, code: str, base_url: str, key: str, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Run `code` (a block of ``docs/<page>``) against the server at `base_url` as `key`; what it printed."""
    monkeypatch.setenv("DATAFRAMER_API_KEY", key)
    monkeypatch.setenv("DATAFRAMER_BASE_URL", base_url)
    printed: list[str] = []

    def record(*values: object) -> None:
        printed.append(" ".join(str(v) for v in values))

    name = "docs_" + Path(page).stem.replace("-", "_")
    exec(compile(code, str(DOCS / page), "exec"), {"__name__": name, "print": record})
    return printed
