"""Library code changes nothing process-wide: importing it or running a job leaves the allocator, the GC and
other tasks of the event loop alone. Only the CLI commands, which own their process, opt in."""

from __future__ import annotations

import ast
import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

import datamill
from datamill.steps.gather import gather_or_cancel

SRC = Path(datamill.__file__).parent
#: Calls that change the whole process, and the modules allowed to make them.
_PROCESS_WIDE = {
    "set_memory_pool": {"dataio/memory.py"},
    "freeze": {"cli/process.py"},
    "set_threshold": {"cli/process.py"},
    "all_tasks": set(),
}


def test_importing_datamill_keeps_pyarrows_memory_pool() -> None:
    code = (
        "import pyarrow as pa; before = pa.default_memory_pool().backend_name; "
        "import datamill.dataio, datamill.pipelines.adapt, datamill.services.adaptation.adapt; "
        "print(before, pa.default_memory_pool().backend_name)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    before, after = out.split()
    assert before == after


def test_only_entry_points_make_process_wide_changes() -> None:
    found = []
    for path in sorted(SRC.rglob("*.py")):
        module = path.relative_to(SRC).as_posix()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                allowed = _PROCESS_WIDE.get(node.func.attr)
                if allowed is not None and module not in allowed:
                    found.append(f"{module}:{node.lineno} {node.func.attr}")
    assert found == []


async def test_a_failing_gather_cancels_its_own_tasks_and_no_other() -> None:
    bystander = asyncio.ensure_future(asyncio.sleep(60))  # another job's task on the same loop
    started: list[asyncio.Task[None]] = []

    async def sibling() -> None:
        started.append(asyncio.current_task())  # type: ignore[arg-type]
        await asyncio.sleep(60)

    async def fails() -> None:
        await asyncio.sleep(0)
        raise RuntimeError("row failed")

    with pytest.raises(RuntimeError, match="row failed"):
        await gather_or_cancel([sibling(), fails(), sibling()])
    assert len(started) == 2
    assert all(task.cancelled() for task in started)
    assert not bystander.done()
    bystander.cancel()
