"""A server killed in the middle of a run finishes it when started again, with every row present exactly once.

`datamill serve` runs as a subprocess on a loopback port, its model routed to a loopback OpenAI-compatible
fake with some latency, so the run is still going when the process is SIGKILLed. The second process, on the
same data dir, takes the run over once the dead worker's lease lapses and resumes it from its checkpoint.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import adaption
import httpx
from runs_helpers import LOOP_MODEL, MAPPING, loopback_model, qa_rows, upload, wait_done, write_routes

from datamill.services.tenants import TenantService
from datamill.store import Run, Store

ROWS = 80


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def _serve(data_dir: Path, env: dict[str, str], log: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`datamill serve` in a subprocess; yields its URL once it answers /healthz. Killed at the end."""
    port = _free_port()
    command = [
        sys.executable,
        "-m",
        "datamill.cli.main",
        "serve",
        "--port",
        str(port),
        "--data-dir",
        str(data_dir),
    ]
    with log.open("ab") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, log.read_text()
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.1)
        yield url, process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(10)


def _wait_for_progress(client: adaption.Adaption, dataset_id: str, rows: int) -> int:
    deadline = time.monotonic() + 60
    while True:
        status = client.datasets.get_status(dataset_id)
        done = status.progress.processed_rows if status.progress else 0
        assert status.status == "running", status
        if done and done >= rows:
            return done
        assert time.monotonic() < deadline, "the run made no progress"
        time.sleep(0.05)


def test_a_killed_server_finishes_the_run_with_every_row_once(tmp_path: Path) -> None:
    data_dir, log = tmp_path / "data", tmp_path / "server.log"
    store = Store.from_url(f"sqlite:///{data_dir / 'datamill.db'}")
    store.migrate()
    key = TenantService(store).create_key("crash").key
    with loopback_model(latency_s=0.05) as model:
        env = os.environ | {
            "DATAMILL_ROUTES": str(write_routes(tmp_path / "routes.yaml", model.base_url, max_concurrency=2)),
            "DATAMILL_MODEL": LOOP_MODEL,
            "DATAMILL_RUN_BATCH_SIZE": "5",
            "DATAMILL_RUN_LEASE_S": "1",
            "DATAMILL_WORKER_POLL_S": "0.2",
            "DATAMILL_RUN_EVALUATE": "0",
        }
        recipes = {"recipes": {"prompt_rephrase": False, "deduplication": False}}
        with _serve(data_dir, env, log) as (url, process):
            client = adaption.Adaption(api_key=key, base_url=url, max_retries=0)
            dataset_id = upload(client, tmp_path / "qa.csv", qa_rows(ROWS))
            client.datasets.adapt(dataset_id, column_mapping=MAPPING, recipe_specification=recipes)
            done_before = _wait_for_progress(client, dataset_id, 10)
            process.send_signal(signal.SIGKILL)
            process.wait(10)
            client.close()
        assert done_before < ROWS
        with _serve(data_dir, env, log) as (url, _process):
            client = adaption.Adaption(api_key=key, base_url=url, max_retries=0)
            status = wait_done(client, dataset_id)
            lines = client.datasets.download(dataset_id, file_format="jsonl").text().splitlines()
            client.close()
        calls = model.count
    assert status.status == "succeeded", (status, log.read_text()[-3000:])
    ids = [int(json.loads(line)["id"]) for line in lines]
    assert sorted(ids) == list(range(ROWS))  # every row, none twice
    assert ids == list(range(ROWS))  # in input order
    with store.session() as session:
        (run,) = session.query(Run).all()
        # Claimed twice; the kill came after progress, so it did not count against the run's attempts.
        assert (run.status, run.attempts, run.rows_out) == ("succeeded", 1, ROWS)
    store.close()
    # Finished batches were not redone: only the rows of batches in flight at the kill were asked again.
    assert ROWS <= calls <= ROWS + 4 * 5
