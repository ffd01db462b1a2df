"""The code blocks of docs/red-teaming.md run as written, through the official SDK, on a loopback server."""

from __future__ import annotations

import pytest
from doc_blocks import blocks, run_block

from conftest import RunningServer

PAGE = "red-teaming.md"
BLOCKS = blocks(PAGE)


def _run(code: str, server: RunningServer, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Run `code` with a new tenant's key; what it printed."""
    return run_block(PAGE, code, server.base_url, server.new_key(), monkeypatch)


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
