"""The code blocks of docs/models.md's cost section run as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from datamill.llm.routing import Routing

DOC = Path(__file__).parents[1] / "docs" / "models.md"
_BLOCK = re.compile(r"^```(\w+)\n(.*?)^```", re.MULTILINE | re.DOTALL)


def _blocks(language: str) -> list[str]:
    text = DOC.read_text(encoding="utf-8")
    section = text[text.index("## Cost: what the provider bills") : text.index("## Batch mode")]
    return [body for lang, body in _BLOCK.findall(section) if lang == language]


@pytest.mark.parametrize("code", _blocks("python"))
def test_python_blocks_run(code: str) -> None:
    exec(compile(code, str(DOC), "exec"), {"__name__": "docs_models_cost"})


def test_the_routing_block_sets_cache_prices_and_the_batch_discount(tmp_path: Path) -> None:
    (block,) = _blocks("yaml")
    path = tmp_path / "routes.yaml"
    path.write_text(block, encoding="utf-8")
    routing = Routing.load(path)  # over the shipped routes, as a user's file is
    sonnet = routing.resolve("anthropic/claude-sonnet-4-6")
    assert (sonnet.cached_input_price, sonnet.cache_write_price) == (0.3, 3.75)
    luna = routing.resolve("openai/gpt-6-luna")
    assert (luna.cached_input_price, luna.batch_discount) == (0.025, 0.5)
