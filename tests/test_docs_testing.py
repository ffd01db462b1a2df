"""The code blocks of docs/testing.md run as written."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from datamill.llm.simulator.cli import parser

DOC = Path(__file__).parents[1] / "docs" / "testing.md"
_BLOCK = re.compile(r"^```(\w+)\n(.*?)^```", re.MULTILINE | re.DOTALL)


def _blocks(language: str) -> list[str]:
    return [body for lang, body in _BLOCK.findall(DOC.read_text(encoding="utf-8")) if lang == language]


@pytest.mark.parametrize("code", _blocks("python"))
def test_python_blocks_run(code: str) -> None:
    exec(compile(code, str(DOC), "exec"), {"__name__": "docs_testing"})


def test_the_shell_block_is_a_valid_simulator_command_line() -> None:
    (command,) = _blocks("bash")
    argv = shlex.split(command.replace("\\\n", " "))
    assert argv[:3] == ["python", "-m", "datamill.llm.simulator"]
    args = parser().parse_args(argv[3:])
    assert dict(args.rate) == {"refusal_text": 0.02, "truncation": 0.01, "rate_limit": 0.03}
    assert (args.tpm, args.rpm) == (200000, 600)
