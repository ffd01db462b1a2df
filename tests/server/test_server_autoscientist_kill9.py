"""A `datamill worker` SIGKILLed in the middle of an AutoScientist run: the next worker resumes the run.

`datamill serve --no-worker` and a `datamill worker` process share a data dir and a database (SQLite, then
PostgreSQL when `DATAMILL_TEST_POSTGRES_URL` is set), with the short lease of the scale-out tests (2 s). The
run trains the tiny base model (`tiny_training_model`) for two iterations, judged by the marker judge on
loopback. As soon as iteration 1 is recorded the judge holds every request, so iteration 2 cannot be
recorded, and the worker is killed with SIGKILL: it records nothing more and gives nothing back. Once the
lease lapses a new worker claims the run and must train and judge iteration 2 only, keep iteration 1 as
recorded and its adapter as the best one, and finish with each iteration exactly once.

Every verdict is a tie (the tiny model writes lower-case words only, the marker is upper case), so both
iterations win 0.5 and iteration 1 stays the best: the archive downloaded at the end must be the very bytes
downloaded before the kill. The kill came after an iteration was recorded, so it does not count against
the run's attempts (``DATAMILL_RUN_MAX_ATTEMPTS``): a run that records an iteration per attempt is never
given up.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import tarfile
from pathlib import Path

import adaption
import pytest
from autoscientist_helpers import HoldingJudge
from kill9_fleet import fleet, until
from pg_helpers import KINDS, database_url
from runs_helpers import LOOP_MODEL, MAPPING, loopback_model, upload, write_routes

from datamill.services.tenants import TenantService
from datamill.store import Run, Store
from datamill.store.autoscientist_models import AutoscientistRun
from tiny_training_model import NUMBERS, tiny_model

pytestmark = pytest.mark.slow

HYPERPARAMS = {"batch_size": 4, "n_epochs": 1}  # the learning rate and the rank are left to the search


def _records(url: str, run_id: str) -> tuple[AutoscientistRun, Run]:
    """The AutoScientist run and its job, read from the database."""
    store = Store.from_url(url)
    try:
        with store.session() as session:
            run = session.get(AutoscientistRun, run_id)
            assert run is not None
            job = session.get(Run, run.job_id)
            assert job is not None
            session.expunge_all()
            return run, job
    finally:
        store.close()


def _metadata(archive: bytes) -> dict[str, object]:
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as unpacked:
        member = unpacked.extractfile("datamill.json")
        assert member is not None
        found: dict[str, object] = json.load(member)
        assert "adapter/adapter_model.safetensors" in unpacked.getnames()
    return found


# peft 0.21 reads a property transformers 5 deprecated; the warning is theirs, not the adapter's.
@pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing.*:FutureWarning")
@pytest.mark.parametrize("kind", KINDS)
def test_a_killed_worker_s_autoscientist_run_resumes_at_the_next_iteration(kind: str, tmp_path: Path) -> None:
    folder = tiny_model(tmp_path / "tiny")
    rows = [{"question": f"name fruit number {n}", "answer": f"pineapple {n}"} for n in NUMBERS]
    judge = HoldingJudge()
    with database_url(kind, tmp_path) as url, loopback_model(reply=judge) as model:
        store = Store.from_url(url)
        store.migrate()
        key = TenantService(store).create_key("kill").key
        store.close()
        env = os.environ | {
            "DATAMILL_ROUTES": str(write_routes(tmp_path / "routes.yaml", model.base_url)),
            "DATAMILL_MODEL": LOOP_MODEL,
            "DATAMILL_DATABASE_URL": url,
            "DATAMILL_RUN_LEASE_S": "2",  # the scale-out tests' short lease, so the take-over is quick
            "DATAMILL_WORKER_POLL_S": "0.2",
            "DATAMILL_RUN_MAX_ATTEMPTS": "3",  # the default: the attempts must not add up
            "DATAMILL_TRAIN_MODELS": folder,
            "DATAMILL_TRAIN_CACHE": str(tmp_path / "cache"),
            "DATAMILL_TRAIN_DEVICE": "cpu",
            "DATAMILL_TRAIN_THREADS": "1",
            "DATAMILL_TRAIN_PROCS_PER_NODE": "1",
            "DATAMILL_TRAIN_MAX_NEW_TOKENS": "12",
        }
        with fleet(tmp_path, env) as processes:
            client = adaption.Adaption(api_key=key, base_url=processes.serve(), max_retries=0)
            dataset_id = upload(
                client, tmp_path / "qa.csv", rows, processing_mode="raw", column_mapping=MAPPING
            )
            run = client.autoscientist.create(
                dataset_id=dataset_id,
                model=folder,
                data_format="instruction",
                hyperparams=HYPERPARAMS,
                max_iterations=2,
                target_win_rate=1.0,
            )
            first = processes.start("w0")
            until(
                lambda: client.autoscientist.get(run.id).iterations_completed >= 1,
                "iteration 1",
                lambda: processes.check_alive("w0"),
                timeout=300,
            )
            judge.hold.set()  # iteration 2 can no longer be recorded: it is under way when the kill comes
            before = client.autoscientist.get(run.id).to_dict()
            archive_before = client.autoscientist.download(run.id).read()
            processes.kill("w0")
            killed = dt.datetime.now(dt.UTC)
            assert (before["status"], before["iterations_completed"]) == ("running", 1)
            _, job = _records(url, run.id)
            assert (job.status, job.worker_id.split(":")[1]) == ("running", str(first.pid))
            judge.hold.clear()
            judge.release.set()  # the killed worker's held requests are answered to no one

            second = processes.start("w1")
            done = client.autoscientist.wait_for_completion(
                run.id, initial_interval=0.5, max_interval=2, backoff_factor=1.5, timeout=600
            )
            archive_after = client.autoscientist.download(run.id).read()
            client.close()
        recorded, job = _records(url, run.id)

    assert done.status == "succeeded", (done.error, processes.log("w1"))
    iterations = done.to_dict()["iterations"]
    assert [r["iteration"] for r in iterations] == [1, 2]  # each iteration once
    assert iterations[0] == before["iterations"][0]  # iteration 1 as the killed worker recorded it
    finished = [dt.datetime.fromisoformat(r["finished_at"]) for r in iterations]
    assert finished[0] < killed < finished[1]  # the new worker trained iteration 2 only
    second_iteration = iterations[1]
    assert (second_iteration["base_iteration"], second_iteration["move"]) == (1, "lr_up")
    rate = iterations[0]["hyperparams"]["learning_rate"]
    assert second_iteration["hyperparams"]["learning_rate"] == rate * 2  # the search went on from 1
    assert [r["win_rate"] for r in iterations] == [0.5, 0.5]  # every verdict a tie (module docstring)
    assert (done.iterations_completed, done.to_dict()["ended_because"]) == (2, "max_iterations")
    # The best adapter is still iteration 1's, as the killed worker stored it.
    assert done.to_dict()["best_iteration"] == 1
    assert archive_after == archive_before
    metadata = _metadata(archive_after)
    assert metadata["iteration"] == 1
    assert metadata["rendering"] == {"kind": "plain", "separator": "\n"}  # the tiny model has no template
    assert recorded.artifact_key is not None
    assert recorded.artifact_key.endswith("iteration-1.tar.gz")
    # Finished by the new worker; the killed attempt had recorded an iteration, so it did not count.
    assert job.worker_id is not None
    assert job.worker_id.split(":")[1] == str(second.pid)
    assert (job.status, job.attempts) == ("succeeded", 1)
