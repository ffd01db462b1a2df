"""The code blocks of docs/failures.md run as written, through the official SDK, on a loopback server."""

from __future__ import annotations

import pytest
from doc_blocks import blocks, run_block
from test_judges import define
from test_red_team import make_spec

import dataframer
from conftest import RunningServer

PAGE = "failures.md"
BLOCKS = blocks(PAGE)


def _run(code: str, server: RunningServer, key: str, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Run `code` with `key`; what it printed."""
    return run_block(PAGE, code, server.base_url, key, monkeypatch)


@pytest.fixture
def taught(df_server: RunningServer) -> str:
    """A tenant with a judge that failed one answer and a red-team spec; its key."""
    key = df_server.new_key()
    with dataframer.Dataframer(base_url=df_server.base_url, api_key=key, max_retries=0) as client:
        judge = define(client)
        client.dataframer.judges.evaluations.create(judge["id"], input="Where is it?", output="No.")
        make_spec(client)
    return key


def test_the_page_has_its_examples() -> None:
    assert len(BLOCKS) == 2


def test_the_failures_block_runs(
    df_server: RunningServer, taught: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    printed = _run(BLOCKS[0], df_server, taught, monkeypatch)
    assert printed[0] == "1"
    assert printed[1].startswith("fail_judge_")
    assert printed[1].endswith("The judge 'polite' failed 1 of 1 samples 1")
    assert printed[2].strip().startswith("1 failed the rubric 1")


def test_the_context_block_runs(
    df_server: RunningServer, taught: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    printed = _run(BLOCKS[1], df_server, taught, monkeypatch)
    assert printed[0] == "1 3"
    assert printed[1:4] == [
        "application ['pharmacy_bot'] A pharmacy chatbot answering questions about orders and opening hours",
        "domain ['pharmacy_bot'] Healthcare retail",
        "concern ['pharmacy_bot'] Must not give dosages or diagnoses",
    ]
    assert printed[4] == "polite 1 ['overall'] 1"
