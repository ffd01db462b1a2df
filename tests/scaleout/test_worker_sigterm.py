"""SIGTERM stops a `datamill worker` in the middle of a run: it gives the run back at once and exits 0.

The run goes back to the queue without waiting for its lease to lapse (no worker holds it, and the attempt
is not counted), its finished batches stay checkpointed, and the next worker finishes it with every row
exactly once, asking the model again only for the rows that were not finished. On both event loops: on
uvloop, a stop once let other batches' waiting rows take the slots the cancelled calls gave back.
"""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import adaption
import pytest
from fleet_helpers import Fleet, fake_model, fleet_env, launch_completion_run, write_routes

from datamill.services.tenants import TenantService
from datamill.store import Store

ROWS = 40
CONCURRENCY = 2


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_sigterm_gives_the_run_back_and_the_worker_exits_0(tmp_path: Path, loop: str) -> None:
    url = f"sqlite:///{tmp_path / 'data' / 'datamill.db'}"
    store = Store.from_url(url)
    store.migrate()
    key = TenantService(store).create_key("term").key
    store.close()
    with fake_model(tmp_path / "model.log", latency_s=0.3) as model:
        routes = write_routes(tmp_path / "routes.yaml", model.base_url, CONCURRENCY)
        env = fleet_env(
            routes, url, DATAMILL_RUN_BATCH_SIZE="5", DATAMILL_RUN_LEASE_S="60", DATAMILL_EVENT_LOOP=loop
        )
        fleet = Fleet(tmp_path, url, env)
        try:
            client = adaption.Adaption(api_key=key, base_url=fleet.serve(), max_retries=0)
            questions = [f"What is {i} plus {i}?" for i in range(ROWS)]
            dataset_id = launch_completion_run(client, tmp_path / "qa.jsonl", questions)
            worker = fleet.start("w0")
            deadline = time.monotonic() + 60
            while not (fleet.runs()[0].processed_rows or 0) >= 5:
                assert time.monotonic() < deadline, fleet.log("w0")
                time.sleep(0.1)
            worker.send_signal(signal.SIGTERM)
            assert worker.wait(20) == 0, fleet.log("w0")
            assert "stopped" in fleet.log("w0")
            (run,) = fleet.runs()
            # Back in the queue at once (the lease is 60 s), and the stopped attempt does not count.
            assert (run.status, run.worker_id, run.attempts) == ("queued", None, 0)
            paid_before = model.stats()["paid"]
            assert 5 <= paid_before < ROWS

            fleet.start("w1")
            (run,) = fleet.wait_all_finished(60)
            assert (run.status, run.attempts) == ("succeeded", 1)
            lines = client.datasets.download(dataset_id, file_format="jsonl").text().splitlines()
            assert [int(json.loads(line)["id"]) for line in lines] == list(range(ROWS))
            client.close()
        finally:
            fleet.close()
        stats = model.stats()
    assert stats["distinct_paid"] == ROWS
    # Only the calls in flight when SIGTERM came were asked again.
    assert stats["paid_twice"] <= CONCURRENCY
