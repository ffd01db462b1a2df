"""The code blocks of docs/models.md's batch mode section run as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from datamill.llm.routing import Routing

DOC = Path(__file__).parents[1] / "docs" / "models.md"
_BLOCK = re.compile(r"^```(\w+)\n(.*?)^```", re.MULTILINE | re.DOTALL)


def _blocks(language: str) -> list[str]:
    text = DOC.read_text(encoding="utf-8")
    section = text[text.index("## Batch mode") : text.index("## Rate limits:")]
    return [body for lang, body in _BLOCK.findall(section) if lang == language]


@pytest.mark.parametrize("code", _blocks("python"))
def test_python_blocks_run(code: str) -> None:
    exec(compile(code, str(DOC), "exec"), {"__name__": "docs_models_batch"})


def test_the_routing_block_sets_batch_mode_per_route(tmp_path: Path) -> None:
    (block,) = _blocks("yaml")
    path = tmp_path / "routes.yaml"
    path.write_text(block, encoding="utf-8")
    routing = Routing.load(path)  # over the shipped routes, as a user's file is
    haiku = routing.resolve("anthropic/claude-haiku-4-5")
    assert (haiku.batch, haiku.batch_poll_s) == (True, 60.0)
    assert routing.resolve("openai/gpt-4o-mini").batch is False
    assert routing.resolve("anthropic/claude-sonnet-4-6").batch is None  # as the run asks
