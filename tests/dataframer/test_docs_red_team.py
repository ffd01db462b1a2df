"""The code blocks of docs/red-teaming.md run as written, through the official SDK, on a loopback server."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from conftest import RunningServer

DOC = Path(__file__).parents[2] / "docs" / "red-teaming.md"
_BLOCK = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)
BLOCKS = _BLOCK.findall(DOC.read_text(encoding="utf-8"))


def _run(code: str, server: RunningServer, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Run `code` with a new tenant's key and the server in the environment; what it printed."""
    monkeypatch.setenv("DATAFRAMER_API_KEY", server.new_key())
    monkeypatch.setenv("DATAFRAMER_BASE_URL", server.base_url)
    printed: list[str] = []

    def record(*values: object) -> None:
        printed.append(" ".join(str(v) for v in values))

    exec(compile(code, str(DOC), "exec"), {"__name__": "docs_red_team", "print": record})
    return printed


def test_the_page_has_its_examples() -> None:
    assert len(BLOCKS) == 3


def test_the_spec_block_runs(df_server: RunningServer, monkeypatch: pytest.MonkeyPatch) -> None:
    assert _run(BLOCKS[0], df_server, monkeypatch) == ["pharmacy_bot"]


def test_the_run_block_prints_every_prompt(df_server: RunningServer, monkeypatch: pytest.MonkeyPatch) -> None:
    printed = _run(BLOCKS[1], df_server, monkeypatch)
    assert printed[0] == "SUCCEEDED None"
    assert len(printed) == 1 + 3 * 4
    styles = [line.split(" | ")[1] for line in printed[1:]]
    assert styles[:4] == ["role_play", "obfuscation", "multi_step", "payload_splitting"]
    assert len({line.split(" | ")[2] for line in printed[1:]}) == 12


def test_the_cancel_block_runs(df_server: RunningServer, monkeypatch: pytest.MonkeyPatch) -> None:
    printed = _run(BLOCKS[2], df_server, monkeypatch)
    assert printed in (["CANCELED"], ["not_cancelable", "SUCCEEDED"])
