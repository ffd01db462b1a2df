"""Polling helpers of the Dataframer tests: wait for a spec, a run or a ZIP to settle, through the SDK."""

from __future__ import annotations

import time
from typing import Any

import dataframer

DEADLINE_S = 60.0


def wait_spec(client: dataframer.Dataframer, spec_id: str) -> Any:
    """The spec once it is SUCCEEDED or FAILED."""
    deadline = time.monotonic() + DEADLINE_S
    while True:
        spec = client.dataframer.specs.retrieve(spec_id)
        if spec.status in ("SUCCEEDED", "FAILED") or time.monotonic() > deadline:
            return spec
        time.sleep(0.05)


def wait_run(client: dataframer.Dataframer, run_id: str, until: tuple[str, ...] = ()) -> Any:
    """The run once it ended (or reached one of `until`)."""
    ended = until or ("SUCCEEDED", "FAILED", "CANCELED")
    deadline = time.monotonic() + DEADLINE_S
    while True:
        run = client.dataframer.runs.retrieve(run_id)
        if run.status in ended or time.monotonic() > deadline:
            return run
        time.sleep(0.05)


def wait_zip(client: dataframer.Dataframer, run_id: str) -> tuple[list[int], Any]:
    """Ask for the ZIP until it is ready; the statuses seen and the final answer."""
    statuses: list[int] = []
    deadline = time.monotonic() + DEADLINE_S
    while True:
        raw = client.dataframer.runs.files.with_raw_response.download_all(run_id)
        statuses.append(raw.status_code)
        answer = raw.parse()
        if answer.download_url or time.monotonic() > deadline:
            return statuses, answer
        time.sleep(0.05)
