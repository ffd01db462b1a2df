"""Run data on S3 (``DATAMILL_RUN_DATA_URL``, moto's server): workers on different machines, no shared volume.

Blobs and run data both live in the bucket. A worker with its own data dir is SIGKILLed in the middle of a
run; a worker with another data dir (another machine: no local checkpoint, no response cache) resumes the run
from the checkpoint in the bucket; the API serves the download from the bucket too. Every row is in the output
exactly once, in input order, and nothing of the run is written under any data dir.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import adaption
from fleet_helpers import Fleet, fake_model, fleet_env, launch_completion_run, write_routes
from s3_helpers import BUCKET, moto_s3

from datamill.services.tenants import TenantService
from datamill.store import Store

ROWS = 40


def test_a_run_killed_on_one_machine_finishes_on_another_from_s3(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    store = Store.from_url(url)
    store.migrate()
    key = TenantService(store).create_key("s3").key
    store.close()
    with moto_s3() as s3, fake_model(tmp_path / "model.log", latency_s=0.2) as model:
        s3.make_bucket()
        routes = write_routes(tmp_path / "routes.yaml", model.base_url, 2)
        env = fleet_env(
            routes,
            url,
            DATAMILL_RUN_BATCH_SIZE="5",
            DATAMILL_BLOB_URL=f"s3://{BUCKET}/blobs",
            DATAMILL_RUN_DATA_URL=f"s3://{BUCKET}/runs",
        )
        fleet = Fleet(tmp_path, url, env)
        try:
            client = adaption.Adaption(api_key=key, base_url=fleet.serve(), max_retries=0)
            questions = [f"How far is town {i}?" for i in range(ROWS)]
            dataset_id = launch_completion_run(client, tmp_path / "qa.jsonl", questions)
            fleet.start("a", tmp_path / "machine-a")
            (run,) = fleet.runs()
            deadline = time.monotonic() + 60
            # This run's parts only: moto keeps one store per process, shared by the tests' servers.
            while len(s3.bucket_objects(prefix=f"runs/{run.id}/parts/")) < 2:
                fleet.check_alive()
                assert time.monotonic() < deadline, fleet.log("a")
                time.sleep(0.2)
            fleet.kill("a")
            (run,) = fleet.runs()
            assert run.status == "running"
            fleet.start("b", tmp_path / "machine-b")
            (run,) = fleet.wait_all_finished(90)
            # Claimed twice; machine a had written parts before the kill, so the kill did not count against
            # the run's attempts (they count claims in a row without progress).
            assert (run.status, run.attempts) == ("succeeded", 1), fleet.log("b")
            lines = client.datasets.download(dataset_id, file_format="jsonl").text().splitlines()
            client.close()
        finally:
            fleet.close()
        objects = s3.bucket_objects(prefix=f"runs/{run.id}/")
    assert [int(json.loads(line)["id"]) for line in lines] == list(range(ROWS))
    assert f"runs/{run.id}/manifest.json" in objects
    assert f"runs/{run.id}/request.json" in objects
    assert len([k for k in objects if k.endswith(".parquet")]) == ROWS // 5
    for data_dir in ("data", "machine-a", "machine-b"):
        assert not (tmp_path / data_dir / "runs").exists()
