"""An API process and a worker that do not share run storage: the download says so instead of answering empty.

The worker claims runs from the shared database and reads uploads from the shared blob store, but writes run
checkpoints under its own data directory, which the API process never reads (a misconfiguration). The run
succeeds with rows out; the SDK's download and the rejected-rows route must fail with 503 naming the setting,
never 200 with an empty body.
"""

from __future__ import annotations

from pathlib import Path

import adaption
import httpx
import pytest
from process_helpers import free_port, start_cli, wait_healthy
from runs_helpers import MAPPING, loopback_model, process_env, qa_rows, tenant_key, upload, wait_done

ROWS = 6


def test_a_download_of_output_in_storage_the_server_does_not_read_is_a_503(tmp_path: Path) -> None:
    api_dir, worker_dir = tmp_path / "api", tmp_path / "worker"
    key = tenant_key(f"sqlite:///{api_dir / 'datamill.db'}")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with loopback_model() as model:
        env = process_env(tmp_path, model)
        server = start_cli(
            ["serve", "--no-worker", "--port", str(port), "--data-dir", str(api_dir)], env, tmp_path / "s.log"
        )
        shared = {
            "DATAMILL_DATABASE_URL": f"sqlite:///{api_dir / 'datamill.db'}",
            "DATAMILL_BLOB_URL": str(api_dir / "blobs"),
        }
        worker = start_cli(["worker", "--data-dir", str(worker_dir)], env | shared, tmp_path / "w.log")
        try:
            wait_healthy(url, server, tmp_path / "s.log")
            client = adaption.Adaption(api_key=key, base_url=url, max_retries=0)
            dataset_id = upload(client, tmp_path / "qa.csv", qa_rows(ROWS))
            recipes = {"recipes": {"prompt_rephrase": False, "deduplication": False}}
            client.datasets.adapt(dataset_id, column_mapping=MAPPING, recipe_specification=recipes)
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
            client.close()
            assert "no checkpoint at" in (tmp_path / "s.log").read_text()
        finally:
            for process in (server, worker):
                if process.poll() is None:
                    process.kill()
                    process.wait(10)
