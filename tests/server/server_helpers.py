"""Helpers the server tests share: waiting for ingest, writing small data files."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import adaption

TERMINAL = ("awaiting_input", "succeeded", "failed")


def wait_for(client: adaption.Adaption, dataset_id: str, statuses: tuple[str, ...] = TERMINAL) -> Any:
    """Poll get_status until the dataset leaves ``pending`` (ingest runs in the background)."""
    deadline = time.monotonic() + 30
    while True:
        status = client.datasets.get_status(dataset_id)
        if status.status in statuses:
            return status
        if time.monotonic() > deadline:
            raise AssertionError(f"dataset {dataset_id} stuck in {status.status}")
        time.sleep(0.02)


def write_csv(path: Path, rows: int, header: str = "question,answer") -> Path:
    lines = [header] + [f"q{i},a{i}" for i in range(rows)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path

