"""An API process and a worker that do not share run storage: the download says so instead of answering empty.

The worker claims runs from the shared database and reads uploads from the shared blob store, but writes run
checkpoints under its own data directory, which the API process never reads (a misconfiguration). A run that
has no row yet downloads as empty; once it succeeded with rows out, or while it runs with rows processed, the
SDK's download and the rejected-rows route must fail with 503 naming the setting, never 200 with an empty
body.
"""

from __future__ import annotations

import time
from pathlib import Path

import adaption
import httpx
import pytest
from process_helpers import free_port, start_cli, wait_healthy
from runs_helpers import MAPPING, loopback_model, process_env, qa_rows, tenant_key, upload, wait_done
from sqlalchemy import select

from datamill.store import Store
from datamill.store.models import Run

ROWS = 6
#: Rows of the run downloaded while it works: at the loopback model's latency, it runs for many seconds.
SLOW_ROWS = 400
RECIPES = {"recipes": {"prompt_rephrase": False, "deduplication": False}}


def _processed_rows(database_url: str, dataset_id: str) -> tuple[str, int]:
    """The status and processed rows of the dataset's run, read from the shared database."""
    store = Store.from_url(database_url)
    try:
        with store.session() as session:
            run = session.scalars(select(Run).where(Run.dataset_id == dataset_id)).one()
            return run.status, run.processed_rows
    finally:
        store.close()


def test_a_download_of_output_in_storage_the_server_does_not_read_is_a_503(tmp_path: Path) -> None:
    api_dir, worker_dir = tmp_path / "api", tmp_path / "worker"
    database_url = f"sqlite:///{api_dir / 'datamill.db'}"
    key = tenant_key(database_url)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with loopback_model(latency_s=0.3) as model:
        env = process_env(tmp_path, model)
        server = start_cli(
            ["serve", "--no-worker", "--port", str(port), "--data-dir", str(api_dir)], env, tmp_path / "s.log"
        )
        processes = [server]
        try:
            wait_healthy(url, server, tmp_path / "s.log")
            client = adaption.Adaption(api_key=key, base_url=url, max_retries=0)
            dataset_id = upload(client, tmp_path / "qa.csv", qa_rows(ROWS))
            slow_id = upload(client, tmp_path / "many.csv", qa_rows(SLOW_ROWS))
            client.datasets.adapt(dataset_id, column_mapping=MAPPING, recipe_specification=RECIPES)

            # No worker yet: the run has no row, and its download is empty (not an error).
            empty = client.datasets.download(dataset_id, file_format="jsonl")
            assert empty.http_response.headers["x-datamill-run-status"] == "queued"
            assert empty.text() == ""

            shared = {"DATAMILL_DATABASE_URL": database_url, "DATAMILL_BLOB_URL": str(api_dir / "blobs")}
            worker = start_cli(["worker", "--data-dir", str(worker_dir)], env | shared, tmp_path / "w.log")
            processes.append(worker)
            status = wait_done(client, dataset_id)
            assert status.status == "succeeded", (tmp_path / "w.log").read_text()
            assert any((worker_dir / "runs").rglob("*.parquet"))  # the output exists, elsewhere

            with pytest.raises(adaption.APIStatusError) as caught:
                client.datasets.download(dataset_id, file_format="jsonl")
            assert caught.value.status_code == 503
            body = caught.value.response.json()
            assert "not in this server's run storage" in body["message"]
            assert "DATAMILL_RUN_DATA_URL" in body["message"]
            assert caught.value.response.headers["x-should-retry"] == "false"

            rejected = httpx.get(
                f"{url}/api/v1/datasets/{dataset_id}/rejected", headers={"Authorization": f"Bearer {key}"}
            )
            assert rejected.status_code == 503, rejected.text
            assert "no checkpoint at" in (tmp_path / "s.log").read_text()

            # A run still working, with rows processed: its partial rows are elsewhere too.
            client.datasets.adapt(slow_id, column_mapping=MAPPING, recipe_specification=RECIPES)
            deadline = time.monotonic() + 60
            while (progress := _processed_rows(database_url, slow_id))[1] == 0:
                assert time.monotonic() < deadline, progress
                time.sleep(0.1)
            with pytest.raises(adaption.APIStatusError) as caught:
                client.datasets.download(slow_id, file_format="jsonl")
            run_status, processed = _processed_rows(database_url, slow_id)
            assert run_status == "running", "the slow run ended before its download: raise SLOW_ROWS"
            assert caught.value.status_code == 503
            message = caught.value.response.json()["message"]
            assert "rows so far, but its output is not in this server's run storage" in message
            assert "DATAMILL_RUN_DATA_URL" in message
            running_rejected = httpx.get(
                f"{url}/api/v1/datasets/{slow_id}/rejected", headers={"Authorization": f"Bearer {key}"}
            )
            assert running_rejected.status_code == 503, running_rejected.text
            assert processed < SLOW_ROWS
            client.close()
        finally:
            for process in processes:
                if process.poll() is None:
                    process.kill()
                    process.wait(10)
