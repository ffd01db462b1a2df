"""The child process of `profile_isolated`: profiles one file under an address-space cap.

Run as ``python -m datamill.services.datasets.profile_child PATH FORMAT MAX_COLUMNS MAX_MEMORY_BYTES``; it
prints one JSON line: the profile, ``{"error": ...}`` for a file that cannot be read, or ``{"memory": true}``
(exit code `OUT_OF_MEMORY`) for one over its memory budget.
"""

from __future__ import annotations

import json
import resource
import sys
from pathlib import Path

from datamill.core.errors import DataFormatError
from datamill.services.datasets.profile import ReadBudget, profile_in_process
from datamill.services.datasets.profile_isolated import OUT_OF_MEMORY


def _out_of_memory(reason: str) -> bool:
    """Whether a reader's error is an allocation that failed (libxml2 says "Memory allocation failed")."""
    return "memory" in reason.lower() or "bad_alloc" in reason or "Cannot allocate" in reason


def _address_space() -> int:
    """This process's virtual memory size in bytes (``VmSize``)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmSize:"):
            return int(line.split()[1]) * 1024
    return 0


def _load_libraries(file_format: str) -> None:
    """Import what reading `file_format` needs, so the budget counts the file's data, not the code."""
    from datamill.dataio import open_dataset  # noqa: F401

    if file_format == "xlsx":
        import openpyxl  # noqa: F401


def main(argv: list[str]) -> int:
    path, file_format, max_columns, max_memory = Path(argv[0]), argv[1], int(argv[2]), int(argv[3])
    _load_libraries(file_format)
    used = _address_space()
    if used:
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        limit = used + max_memory
        soft = limit if hard == resource.RLIM_INFINITY else min(limit, hard)
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
    try:
        found = profile_in_process(path, file_format, ReadBudget(max_columns, timeout_s=float("inf")))
    except MemoryError:
        print(json.dumps({"memory": True}), flush=True)
        return OUT_OF_MEMORY
    except DataFormatError as exc:
        if _out_of_memory(exc.reason):
            print(json.dumps({"memory": True}), flush=True)
            return OUT_OF_MEMORY
        print(json.dumps({"error": exc.reason, "line": exc.line}), flush=True)
        return 0
    answer = {"columns": found.columns, "row_count": found.row_count, "image_columns": found.image_columns}
    print(json.dumps(answer), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
