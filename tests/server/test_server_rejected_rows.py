"""Rejected rows on the server: ``GET /datasets/{id}/rejected`` gives them with the step and the reason.

The server's run and the command line read and write one checkpoint and one rejected-rows store, so the same
file adapted on both rejects the same rows for the same reasons.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import adaption
import httpx
import pytest
from runs_helpers import FAKE_MODEL, MAPPING, qa_rows, runs_server, upload, wait_done
from server_helpers import write_rows

from datamill.core.run_options import RunOptions
from datamill.services.adaptation.adapt import AdaptJob, adapt_file
from datamill.services.settings.entry import Settings

RECIPES: dict[str, Any] = {"recipes": {"deduplication": True}}


def _rows() -> list[dict[str, Any]]:
    """Eight distinct questions, then rows 2 and 5 again: the exact dedup rejects rows 9 and 10."""
    rows = qa_rows(8)
    return [*rows, {**rows[2], "id": 100}, {**rows[5], "id": 101}]


def _rejections(lines: str) -> set[tuple[int, str, str]]:
    return {(r["row_number"], r["step"], r["reason"]) for r in map(json.loads, lines.splitlines())}


def test_the_rejected_rows_of_a_run_download_with_their_reasons(tmp_path: Path) -> None:
    with runs_server(tmp_path / "data") as srv:
        client = srv.client()
        dataset_id = upload(client, tmp_path / "qa.jsonl", _rows())
        client.datasets.adapt(dataset_id, column_mapping=MAPPING, recipe_specification=RECIPES)
        assert wait_done(client, dataset_id).status == "succeeded"
        answer = client.get(f"/api/v1/datasets/{dataset_id}/rejected", cast_to=httpx.Response)
        kept = client.datasets.download(dataset_id, file_format="jsonl").text().splitlines()

    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/x-ndjson")
    assert answer.headers["x-datamill-run-status"] == "succeeded"
    records = [json.loads(line) for line in answer.text.splitlines()]
    assert [(r["row_number"], r["step"]) for r in records] == [(9, "deduplication"), (10, "deduplication")]
    assert all(r["reason"] for r in records)
    assert [r["row"]["id"] for r in records] == [100, 101]
    assert len(kept) == 8

    home = tmp_path / "cli"
    out = tmp_path / "out.jsonl"
    options = RunOptions(batch_size=4, evaluate=False)
    job = AdaptJob(write_rows(tmp_path / "cli-qa.jsonl", _rows()), out, model=FAKE_MODEL, options=options)
    body = {"column_mapping": MAPPING, "recipe_specification": RECIPES}
    summary = adapt_file(job, body, settings=Settings.from_env({"DATAMILL_HOME": str(home)}))
    assert summary.rejected_path is not None
    assert _rejections(Path(summary.rejected_path).read_text(encoding="utf-8")) == _rejections(answer.text)


def test_rejected_rows_before_any_run_are_a_422_and_unknown_datasets_a_404(tmp_path: Path) -> None:
    with runs_server(tmp_path / "data") as srv:
        client = srv.client()
        dataset_id = upload(client, tmp_path / "qa.jsonl", qa_rows(3))
        with pytest.raises(adaption.UnprocessableEntityError) as never_run:
            client.get(f"/api/v1/datasets/{dataset_id}/rejected", cast_to=httpx.Response)
        with pytest.raises(adaption.NotFoundError):
            client.get("/api/v1/datasets/ds_nope/rejected", cast_to=httpx.Response)
    assert "no run has been started" in str(never_run.value)
