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


def write_rows(path: Path, rows: list[dict[str, Any]]) -> Path:
    """Write `rows` in the format the file name's extension names (csv, json, jsonl or parquet)."""
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq

    suffix = path.suffix
    if suffix == ".csv":
        header = list(rows[0])
        lines = [",".join(header)] + [",".join(str(r[c]) for c in header) for r in rows]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    elif suffix == ".json":
        path.write_text(json.dumps(rows), encoding="utf-8")
    elif suffix == ".jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    elif suffix == ".parquet":
        pq.write_table(pa.Table.from_pylist(rows), path)
    else:
        raise ValueError(suffix)
    return path


def qa_rows(count: int) -> list[dict[str, Any]]:
    return [{"question": f"q{i}", "answer": f"a{i}"} for i in range(count)]


def error_body(exc: adaption.APIStatusError) -> dict[str, Any]:
    body = exc.body
    assert isinstance(body, dict), body
    return body


def fields_of(exc: adaption.APIStatusError) -> list[str]:
    return [issue["field"] for issue in error_body(exc)["errors"]]


def add_queued_run(session: Any, tenant_id: str, *, reserved: float = 0.0, total: int = 3) -> str:
    """A running dataset of `tenant_id` with a queued adapt run on it, added to `session`; the run's id."""
    from datamill.store import Dataset, Run, utcnow
    from datamill.store.ids import new_id

    now = utcnow()
    dataset = Dataset(
        id=new_id("ds"),
        tenant_id=tenant_id,
        name="d",
        kind="uploaded",
        status="running",
        ingest_state="ready",
        processing_mode="adapt",
        created_at=now,
        updated_at=now,
    )
    run = Run(
        id=new_id("run"),
        tenant_id=tenant_id,
        dataset_id=dataset.id,
        source_dataset_id=dataset.id,
        kind="adapt",
        status="queued",
        request={},
        options={},
        model="fake/x",
        launch_response={},
        credits_reserved=reserved,
        cost_usd=0.0,
        processed_rows=0,
        total_rows=total,
        attempts=0,
        created_at=now,
        updated_at=now,
    )
    dataset.run_id = run.id
    session.add(dataset)
    session.flush()
    session.add(run)
    return str(run.id)
