"""Profiling a file in a child process held to a memory budget, for formats whose library reads parts whole.

openpyxl reads a workbook's shared strings whole, and the document readers (pdf, docx, pptx, html, zip)
parse whole documents, so a small file can ask for far more memory than its size (a 203 KB workbook of
shared strings took 480 MB). Such a file is profiled in a child interpreter (``python -m
datamill.services.datasets.profile_child``) whose address space is capped (``RLIMIT_AS``) at what it
uses once its libraries are loaded plus the budget, and which is killed when the time budget runs out. A file
whose reading needs more fails its dataset with a reason naming the file's budget and the setting that
raises it; the ingest worker, its process and the other tenants' files are not touched, and nothing is
written. The streaming formats (csv, tsv, json, jsonl, txt, parquet) are read in the server's process:
their memory is bounded by the batch, whatever the file's size.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from datamill.core.errors import DataFormatError

#: Formats profiled in a child process under the memory budget.
ISOLATED_FORMATS = frozenset({"xlsx", "pdf", "docx", "pptx", "html", "zip"})
#: Exit code of a child that ran out of its memory budget.
OUT_OF_MEMORY = 3
_MB = 1 << 20


def over_memory(path: Path, budget_bytes: int) -> DataFormatError:
    return DataFormatError(
        str(path),
        f"reading the file needs more than its memory budget of {budget_bytes // _MB:,} MB; "
        "the operator sets the budget with DATAMILL_INGEST_MAX_MEMORY_MB",
    )


def over_time(path: Path, timeout_s: float) -> DataFormatError:
    return DataFormatError(
        str(path),
        f"reading the file took longer than {timeout_s:g} s; the operator sets the budget with "
        "DATAMILL_INGEST_TIMEOUT_S",
    )


def profile_in_child(
    path: Path, file_format: str, *, max_columns: int, timeout_s: float, max_memory_bytes: int
) -> dict[str, Any]:
    """The profile of `path` (``columns``, ``row_count``, ``image_columns``) as read by a capped child.

    Raises:
        DataFormatError: the file cannot be read, or it is over one of the budgets.
    """
    command = [
        sys.executable,
        "-m",
        "datamill.services.datasets.profile_child",
        str(path),
        file_format,
        str(max_columns),
        str(max_memory_bytes),
    ]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired as exc:
        raise over_time(path, timeout_s) from exc
    lines = done.stdout.strip().splitlines()
    answer = json.loads(lines[-1]) if lines and lines[-1].startswith("{") else None
    if done.returncode == OUT_OF_MEMORY or (answer is None and _ran_out(done)):
        # A library that cannot allocate may also abort (SIGABRT) or fault rather than raise.
        raise over_memory(path, max_memory_bytes)
    if answer is None:
        reason = done.stderr[-2000:]
        raise RuntimeError(f"profiling {path.name} failed (exit code {done.returncode}): {reason}")
    if "error" in answer:
        line = answer.get("line")
        raise DataFormatError(str(path), str(answer["error"]), line=line if isinstance(line, int) else None)
    return dict(answer)


def _ran_out(done: subprocess.CompletedProcess[str]) -> bool:
    """Whether a child that gave no answer died of its memory cap: killed by a signal, or a MemoryError."""
    return done.returncode < 0 or "MemoryError" in done.stderr or "bad_alloc" in done.stderr
