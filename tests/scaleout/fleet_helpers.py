"""A fleet on loopback for the scale-out tests: a fake model process, an API process and worker processes.

`fake_model` runs `datamill.llm.fake_server` in its own process (echoing prompts, counting answers per
distinct request) and reads its ``/_fake/stats``. `Fleet` starts `datamill serve --no-worker` and any number
of `datamill worker` processes on one data dir and database, kills them with SIGKILL or stops them with
SIGTERM, and reads the runs from the database.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml
from process_helpers import free_port, start_cli, wait_healthy
from server_helpers import wait_for, write_rows

from datamill.store import Run, Store

MODEL = "loop/model"


@dataclass
class FakeModel:
    """A fake OpenAI-compatible server process."""

    base_url: str
    process: subprocess.Popen[bytes]

    def stats(self) -> dict[str, Any]:
        reply = httpx.get(self.base_url.removesuffix("/v1") + "/_fake/stats", timeout=10)
        reply.raise_for_status()
        stats: dict[str, Any] = reply.json()
        return stats


@contextmanager
def fake_model(log: Path, *, latency_s: float, max_concurrent: int | None = None) -> Iterator[FakeModel]:
    """`python -m datamill.llm.fake_server` on a free port until the block ends."""
    port = free_port()
    command = [sys.executable, "-m", "datamill.llm.fake_server", "--port", str(port), "--echo"]
    command += ["--latency", str(latency_s), "--count-prompts"]
    if max_concurrent is not None:
        command += ["--max-concurrent", str(max_concurrent), "--retry-after", "0.2"]
    with log.open("ab") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    model = FakeModel(f"http://127.0.0.1:{port}/v1", process)
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, log.read_text()
            try:
                model.stats()
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the fake model did not start"
                time.sleep(0.05)
        yield model
    finally:
        process.kill()
        process.wait(10)


def write_routes(path: Path, base_url: str, max_concurrency: int) -> Path:
    """A routing file sending ``loop/*`` to `base_url`, at most `max_concurrency` calls at once."""
    entry = {"provider": "openai", "base_url": base_url, "api_key_env": None, "model": "{suffix}"}
    entry |= {"input_price": 0.0, "output_price": 0.0, "max_concurrency": max_concurrency}
    path.write_text(yaml.safe_dump({"default_model": MODEL, "routes": {"loop/*": entry}}), encoding="utf-8")
    return path


@dataclass
class Fleet:
    """API and worker processes sharing `data_dir` and the database at `database_url`."""

    tmp_path: Path
    database_url: str
    env: dict[str, str]
    workers: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    api: subprocess.Popen[bytes] | None = None

    @property
    def data_dir(self) -> Path:
        return self.tmp_path / "data"

    def serve(self) -> str:
        """Start the API without a worker; its URL once healthy."""
        port = free_port()
        log = self.tmp_path / "api.log"
        self.api = start_cli(["serve", "--no-worker", "--port", str(port), *self._dir()], self.env, log)
        url = f"http://127.0.0.1:{port}"
        wait_healthy(url, self.api, log)
        return url

    def start(self, name: str, data_dir: Path | None = None) -> subprocess.Popen[bytes]:
        """Start (or restart) worker `name`, on its own `data_dir` if given; output in ``<name>.log``."""
        where = ["--data-dir", str(data_dir)] if data_dir is not None else self._dir()
        process = start_cli(["worker", *where], self.env, self.tmp_path / f"{name}.log")
        self.workers[name] = process
        return process

    def kill(self, name: str) -> None:
        """SIGKILL worker `name` and reap it."""
        process = self.workers[name]
        process.send_signal(signal.SIGKILL)
        process.wait(10)

    def wait_ready(self, timeout_s: float = 60) -> None:
        """Wait until every worker says it is waiting for runs."""
        deadline = time.monotonic() + timeout_s
        for name in self.workers:
            while "waiting for runs" not in self.log(name):
                self.check_alive()
                assert time.monotonic() < deadline, f"worker {name} did not start"
                time.sleep(0.1)

    def check_alive(self) -> None:
        """Fail with its log if a worker exited on its own."""
        for name, process in self.workers.items():
            assert process.poll() is None, f"worker {name} exited:\n{self.log(name)}"

    def holders(self) -> dict[str, str]:
        """Running run id to the name of the live worker holding it (by process id in the worker id)."""
        by_pid = {str(p.pid): name for name, p in self.workers.items() if p.poll() is None}
        held = {}
        for run in self.runs():
            if run.status == "running" and run.worker_id:
                name = by_pid.get(run.worker_id.split(":")[1])
                if name is not None:
                    held[run.id] = name
        return held

    def runs(self) -> list[Run]:
        store = Store.from_url(self.database_url)
        try:
            with store.session() as session:
                return list(session.query(Run).order_by(Run.created_at))
        finally:
            store.close()

    def wait_all_finished(self, timeout_s: float) -> list[Run]:
        deadline = time.monotonic() + timeout_s
        while True:
            runs = self.runs()
            if all(r.status in ("succeeded", "failed") for r in runs):
                return runs
            assert time.monotonic() < deadline, [(r.id, r.status, r.processed_rows) for r in runs]
            time.sleep(0.2)

    def log(self, name: str) -> str:
        return (self.tmp_path / f"{name}.log").read_text()[-4000:]

    def close(self) -> None:
        for process in [*self.workers.values(), self.api]:
            if process is not None and process.poll() is None:
                process.kill()
                process.wait(10)

    def _dir(self) -> list[str]:
        return ["--data-dir", str(self.data_dir)]


def fleet_env(routes: Path, database_url: str, **extra: str) -> dict[str, str]:
    """The environment every process of a fleet shares: short leases and polls so recovery is quick."""
    return (
        os.environ
        | {
            "DATAMILL_ROUTES": str(routes),
            "DATAMILL_MODEL": MODEL,
            "DATAMILL_DATABASE_URL": database_url,
            "DATAMILL_RUN_EVALUATE": "0",
            "DATAMILL_RUN_LEASE_S": "2",
            "DATAMILL_WORKER_POLL_S": "0.2",
            "DATAMILL_RUN_MAX_ATTEMPTS": "1000",
        }
        | extra
    )


def launch_completion_run(client: Any, path: Path, questions: list[str]) -> str:
    """Upload one row per question to the API, wait for it, and launch a completion-only adaptation of it."""
    rows = [{"id": i, "question": q, "answer": "?"} for i, q in enumerate(questions)]
    dataset_id: str = client.datasets.upload_file(write_rows(path, rows)).dataset_id
    wait_for(client, dataset_id)
    client.datasets.adapt(
        dataset_id,
        column_mapping={"prompt": "question", "completion": "answer"},
        recipe_specification={"recipes": {"prompt_rephrase": False, "deduplication": False}},
    )
    return dataset_id
