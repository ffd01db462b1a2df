"""`datamill serve --no-worker` queues runs; a separate `datamill worker` process executes them."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import adaption
import httpx
from runs_helpers import LOOP_MODEL, MAPPING, loopback_model, qa_rows, upload, wait_done, write_routes

from datamill.api.tenants import TenantService
from datamill.store import Store

ROWS = 12


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "datamill.cli.main", *args], env=env, stdout=out, stderr=subprocess.STDOUT
        )


def _wait_healthy(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while True:
        assert process.poll() is None, log.read_text()
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.1)


def test_runs_wait_for_a_worker_process_and_it_runs_them(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    store = Store.from_url(f"sqlite:///{data_dir / 'datamill.db'}")
    store.migrate()
    key = TenantService(store).create_key("team").key
    store.close()
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    with loopback_model() as model:
        env = os.environ | {
            "DATAMILL_ROUTES": str(write_routes(tmp_path / "routes.yaml", model.base_url)),
            "DATAMILL_MODEL": LOOP_MODEL,
            "DATAMILL_RUN_EVALUATE": "0",
            "DATAMILL_WORKER_POLL_S": "0.2",
        }
        server = _start(
            ["serve", "--no-worker", "--port", str(port), "--data-dir", str(data_dir)],
            env,
            tmp_path / "s.log",
        )
        worker = None
        try:
            _wait_healthy(url, server, tmp_path / "s.log")
            client = adaption.Adaption(api_key=key, base_url=url, max_retries=0)
            dataset_id = upload(client, tmp_path / "qa.csv", qa_rows(ROWS))
            recipes = {"recipes": {"prompt_rephrase": False, "deduplication": False}}
            client.datasets.adapt(dataset_id, column_mapping=MAPPING, recipe_specification=recipes)
            time.sleep(1.0)
            assert model.count == 0  # no worker: the run waits in the queue
            assert client.datasets.get_status(dataset_id).status != "succeeded"

            worker = _start(["worker", "--data-dir", str(data_dir)], env, tmp_path / "w.log")
            status = wait_done(client, dataset_id)
            assert status.status == "succeeded", (tmp_path / "w.log").read_text()
            lines = client.datasets.download(dataset_id, file_format="jsonl").text().splitlines()
            assert sorted(int(json.loads(line)["id"]) for line in lines) == list(range(ROWS))
            assert model.count == ROWS
            client.close()

            worker.send_signal(signal.SIGTERM)
            assert worker.wait(20) == 0
            assert "stopped" in (tmp_path / "w.log").read_text()
        finally:
            for process in (server, worker):
                if process is not None and process.poll() is None:
                    process.kill()
                    process.wait(10)
