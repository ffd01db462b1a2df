"""Measure one client process from outside: wall time, CPU of its whole process tree, peak memory.

The peers do not all run in one process (distilabel forks a process per step), so in-process
``getrusage`` would undercount them. The parent measures instead:

- CPU: ``os.wait4`` on the client, which counts the client and every descendant it reaped;
- memory: the client's process tree is sampled every ``SAMPLE_S``; the peak of the tree's summed PSS is the
  fair figure for forked workers (pages shared after ``fork`` are split, not counted twice), and the peak
  RSS of its largest single process is reported beside it;
- wall: from ``Popen`` to exit, so interpreter start and imports count, as they do for a user.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

SAMPLE_S = 0.2


@dataclass
class Measured:
    """What one client run cost, as seen from outside."""

    exit_code: int
    wall_s: float
    cpu_s: float
    peak_tree_pss_mb: float
    peak_process_rss_mb: float
    ru_maxrss_mb: float
    stdout: str

    def to_dict(self) -> dict[str, Any]:
        """The figures without the captured output."""
        data = asdict(self)
        data.pop("stdout")
        return data


def run_measured(cmd: Sequence[str], *, env: Mapping[str, str], cwd: Path, log: Path) -> Measured:
    """Run ``cmd`` to completion, sampling its process tree; stderr goes to ``log``."""
    with log.open("wb") as err, open(log.with_suffix(".out"), "w+b") as out:
        started = time.perf_counter()
        proc = subprocess.Popen(list(cmd), env=dict(env), cwd=cwd, stdout=out, stderr=err)
        sampler = _TreeSampler(proc.pid)
        sampler.start()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)  # so Popen does not wait for it again
        sampler.stop()
        out.seek(0)
        stdout = out.read().decode(errors="replace")
    return Measured(
        exit_code=proc.returncode,
        wall_s=wall,
        cpu_s=usage.ru_utime + usage.ru_stime,
        peak_tree_pss_mb=sampler.peak_pss_kb / 1024,
        peak_process_rss_mb=sampler.peak_rss_kb / 1024,
        ru_maxrss_mb=usage.ru_maxrss / 1024,
        stdout=stdout,
    )


class _TreeSampler(threading.Thread):
    """Polls /proc for the tree under ``root`` until stopped; keeps the peaks."""

    def __init__(self, root: int) -> None:
        super().__init__(daemon=True)
        self.root = root
        self.peak_pss_kb = 0
        self.peak_rss_kb = 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(SAMPLE_S):
            pss = 0
            for pid in _tree(self.root):
                fields = _rollup(pid)
                pss += fields.get("Pss", 0)
                self.peak_rss_kb = max(self.peak_rss_kb, fields.get("Rss", 0))
            self.peak_pss_kb = max(self.peak_pss_kb, pss)

    def stop(self) -> None:
        self._stop_event.set()
        self.join()


def _tree(root: int) -> list[int]:
    pids, todo = [], [root]
    while todo:
        pid = todo.pop()
        pids.append(pid)
        for task in _listdir(Path(f"/proc/{pid}/task")):
            try:
                todo += [int(c) for c in Path(f"/proc/{pid}/task/{task}/children").read_text().split()]
            except OSError:
                continue
    return pids


def _listdir(path: Path) -> list[str]:
    try:
        return os.listdir(path)
    except OSError:
        return []


def _rollup(pid: int) -> dict[str, int]:
    """``Rss`` and ``Pss`` in kB from /proc/PID/smaps_rollup; empty when the process is gone."""
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return {}
    fields = {}
    for line in text.splitlines()[1:]:
        key, _, rest = line.partition(":")
        if key in ("Rss", "Pss"):
            fields[key] = int(rest.split()[0])
    return fields
