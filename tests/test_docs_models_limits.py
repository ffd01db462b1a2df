"""The code blocks of docs/models.md's rate-limit section run as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from datamill.llm.routing import Routing

DOC = Path(__file__).parents[1] / "docs" / "models.md"
_BLOCK = re.compile(r"^```(\w+)\n(.*?)^```", re.MULTILINE | re.DOTALL)


def _blocks(language: str) -> list[str]:
    text = DOC.read_text(encoding="utf-8")
    section = text[text.index("## Rate limits:") : text.index("## Network:")]
    return [body for lang, body in _BLOCK.findall(section) if lang == language]


@pytest.mark.parametrize("code", _blocks("python"))
def test_python_blocks_run(code: str) -> None:
    exec(compile(code, str(DOC), "exec"), {"__name__": "docs_models_limits"})


def test_the_routing_block_declares_budgets_over_the_shipped_routes(tmp_path: Path) -> None:
    (block,) = _blocks("yaml")
    path = tmp_path / "routes.yaml"
    path.write_text(block, encoding="utf-8")
    routing = Routing.load(path)

    terra = routing.resolve("openai/gpt-5.6-terra")
    assert (terra.tokens_per_minute, terra.requests_per_minute, terra.max_concurrency) == (
        2_000_000,
        5000,
        128,
    )
    assert routing.resolve("gemini/gemini-3.1-pro-preview").requests_per_minute == 150
    assert routing.resolve("openai/gpt-6-luna").tokens_per_minute is None
