"""The official SDK's whole flow (upload → adapt → wait → download) on a server whose database is PostgreSQL.

First in process (the app with its background worker, the shipped fake model); then as a deployment runs it:
`datamill serve --no-worker` and two `datamill worker` processes sharing one PostgreSQL database (and data
dir, for the blobs), with the model on a loopback server that counts its calls, so a run executed twice would
show as extra calls.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import adaption
import pytest
from pg_helpers import fresh_database, postgres_url
from process_helpers import free_port, start_cli, wait_healthy
from runs_helpers import (
    LOOP_MODEL,
    MAPPING,
    loopback_model,
    qa_rows,
    runs_server,
    tenant_key,
    upload,
    wait_done,
    write_routes,
)
from sqlalchemy import select

from datamill.store import Run, Store

ROWS = 6
RUNS = 2


@pytest.fixture
def pg_url() -> Iterator[str]:
    with fresh_database(postgres_url()) as url:
        yield url


def _ids(client: adaption.Adaption, dataset_id: str) -> list[int]:
    lines = client.datasets.download(dataset_id, file_format="jsonl").text().splitlines()
    return sorted(int(json.loads(line)["id"]) for line in lines)


def test_the_sdk_flow_on_a_postgresql_server(pg_url: str, tmp_path: Path) -> None:
    with runs_server(tmp_path / "data", database_url=pg_url) as server:
        assert server.context.store.engine.dialect.name == "postgresql"
        client = server.client()
        dataset_id = upload(client, tmp_path / "qa.jsonl", qa_rows(ROWS))
        launched = client.datasets.adapt(dataset_id, column_mapping=MAPPING)
        done = wait_done(client, dataset_id)
        assert (done.status, done.error_data) == ("succeeded", None)
        assert _ids(client, dataset_id) == list(range(ROWS))
        with server.context.store.session() as session:
            run = session.scalar(select(Run).where(Run.id == launched.run_id))
            assert run is not None
            assert (run.status, run.rows_out, run.attempts) == ("succeeded", ROWS, 1)


def _run_workers(url: str) -> list[str]:
    """The ``worker_id`` of every run: ``host:pid:random`` of the worker that finished it."""
    store = Store.from_url(url)
    try:
        with store.session() as session:
            return [str(worker) for worker in session.scalars(select(Run.worker_id))]
    finally:
        store.close()


def test_an_api_process_and_two_worker_processes_share_postgresql(pg_url: str, tmp_path: Path) -> None:
    key, port, data_dir = tenant_key(pg_url), free_port(), tmp_path / "data"
    url = f"http://127.0.0.1:{port}"
    processes: list[subprocess.Popen[bytes]] = []
    with loopback_model() as model:
        env = os.environ | {
            "DATAMILL_DATABASE_URL": pg_url,
            "DATAMILL_ROUTES": str(write_routes(tmp_path / "routes.yaml", model.base_url)),
            "DATAMILL_MODEL": LOOP_MODEL,
            "DATAMILL_RUN_EVALUATE": "0",
            "DATAMILL_WORKER_POLL_S": "0.2",
        }
        try:
            serve = ["serve", "--no-worker", "--port", str(port), "--data-dir", str(data_dir)]
            processes.append(start_cli(serve, env, tmp_path / "s.log"))
            wait_healthy(url, processes[0], tmp_path / "s.log")
            for i in range(2):
                processes.append(
                    start_cli(["worker", "--data-dir", str(data_dir)], env, tmp_path / f"w{i}.log")
                )
            client = adaption.Adaption(api_key=key, base_url=url, max_retries=0)
            recipes = {"recipes": {"prompt_rephrase": False, "deduplication": False}}
            datasets = [
                upload(client, tmp_path / f"qa{i}.csv", qa_rows(ROWS, start=i * ROWS)) for i in range(RUNS)
            ]
            for dataset_id in datasets:
                client.datasets.adapt(dataset_id, column_mapping=MAPPING, recipe_specification=recipes)
            for i, dataset_id in enumerate(datasets):
                assert wait_done(client, dataset_id).status == "succeeded"
                assert _ids(client, dataset_id) == list(range(i * ROWS, (i + 1) * ROWS))
            assert model.count == RUNS * ROWS  # one completion per row: no run executed twice
            client.close()
            worker_pids = {str(process.pid) for process in processes[1:]}
            finished_by = _run_workers(pg_url)
            assert len(finished_by) == RUNS
            assert {worker.split(":")[1] for worker in finished_by} <= worker_pids  # not the API process
        finally:
            for process in processes:
                if process.poll() is None:
                    process.kill()
                    process.wait(10)
