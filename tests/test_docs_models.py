"""The code blocks of docs/models.md's network section run as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from datamill.llm.routing import Routing

DOC = Path(__file__).parents[1] / "docs" / "models.md"
_BLOCK = re.compile(r"^```(\w+)\n(.*?)^```", re.MULTILINE | re.DOTALL)


def _blocks(language: str) -> list[str]:
    text = DOC.read_text(encoding="utf-8")
    section = text[text.index("## Network:") : text.index("## Testing without a provider")]
    return [body for lang, body in _BLOCK.findall(section) if lang == language]


@pytest.mark.parametrize("code", _blocks("python"))
def test_python_blocks_run(code: str) -> None:
    exec(compile(code, str(DOC), "exec"), {"__name__": "docs_models"})


def test_the_routing_block_sets_a_proxy_per_route(tmp_path: Path) -> None:
    (block,) = _blocks("yaml")
    path = tmp_path / "routes.yaml"
    path.write_text(block, encoding="utf-8")
    routing = Routing.load(path)  # over the shipped routes, as a user's file is
    assert routing.resolve("openai/gpt-4o-mini").proxy == "http://proxy.internal:3128"
    assert routing.resolve("gpu-box/llama").proxy == "none"
