"""`datamill serve --no-worker` queues runs; a separate `datamill worker` process executes them."""

from __future__ import annotations

import json
import re
import signal
import time
from pathlib import Path

import adaption
from process_helpers import free_port, start_cli, wait_healthy
from runs_helpers import MAPPING, loopback_model, process_env, qa_rows, tenant_key, upload, wait_done

ROWS = 12


def test_runs_wait_for_a_worker_process_and_it_runs_them(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    key = tenant_key(f"sqlite:///{data_dir / 'datamill.db'}")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with loopback_model() as model:
        env = process_env(tmp_path, model)
        server = start_cli(
            ["serve", "--no-worker", "--port", str(port), "--data-dir", str(data_dir)],
            env,
            tmp_path / "s.log",
        )
        worker = None
        try:
            wait_healthy(url, server, tmp_path / "s.log")
            client = adaption.Adaption(api_key=key, base_url=url, max_retries=0)
            dataset_id = upload(client, tmp_path / "qa.csv", qa_rows(ROWS))
            recipes = {"recipes": {"prompt_rephrase": False, "deduplication": False}}
            client.datasets.adapt(dataset_id, column_mapping=MAPPING, recipe_specification=recipes)
            time.sleep(1.0)
            assert model.count == 0  # no worker: the run waits in the queue
            assert client.datasets.get_status(dataset_id).status != "succeeded"

            worker = start_cli(["worker", "--data-dir", str(data_dir)], env, tmp_path / "w.log")
            status = wait_done(client, dataset_id)
            assert status.status == "succeeded", (tmp_path / "w.log").read_text()
            lines = client.datasets.download(dataset_id, file_format="jsonl").text().splitlines()
            assert sorted(int(json.loads(line)["id"]) for line in lines) == list(range(ROWS))
            assert model.count == ROWS
            client.close()

            worker.send_signal(signal.SIGTERM)
            assert worker.wait(20) == 0
            log = (tmp_path / "w.log").read_text()
            assert "stopped" in log
            # The server's log format: time, level, logger, request id, message.
            assert re.search(
                r"^\d{4}-\d\d-\d\d [\d:,]+ INFO datamill\.runners\.worker \[-\] "
                r"worker \S+: run \S+, attempt 1$",
                log,
                re.MULTILINE,
            ), log
        finally:
            for process in (server, worker):
                if process is not None and process.poll() is None:
                    process.kill()
                    process.wait(10)
