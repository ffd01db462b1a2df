"""The code blocks of docs/server.md that need only a server run as written, against a loopback server."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from conftest import RunningServer

DOC = Path(__file__).parents[2] / "docs" / "server.md"
_SECTION = re.compile(
    r"^## Models, tools, export links and training settings\n(.*?)^## ", re.MULTILINE | re.DOTALL
)
_BLOCK = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)


def _section_blocks() -> list[str]:
    found = _SECTION.search(DOC.read_text(encoding="utf-8"))
    assert found is not None, "the section is gone from docs/server.md"
    return _BLOCK.findall(found.group(1))


def test_the_section_has_a_block() -> None:
    assert len(_section_blocks()) == 1


@pytest.mark.parametrize("code", _section_blocks())
def test_catalogue_blocks_run(
    code: str,
    server: RunningServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ADAPTION_API_KEY", server.new_key())
    monkeypatch.setenv("ADAPTION_BASE_URL", server.base_url)
    printed: list[str] = []

    def record(*values: object) -> None:  # what the block prints, one line per call
        printed.append(" ".join(str(v) for v in values))

    exec(compile(code, str(DOC), "exec"), {"__name__": "docs_server", "print": record})
    assert "local/smollm2-135m-instruct local" in printed
    assert printed[-4:] == ["None []", "None", "3.0 0.0002", "[] []"]
