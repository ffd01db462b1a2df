"""An AutoScientist run whose worker stops after iteration 1 is recorded resumes at iteration 2.

A server trains a tiny base model (`tiny_training_model`, configured like any local model folder) for a run
of two iterations. As soon as iteration 1 is recorded the server (and its worker) stops, in the middle of
iteration 2 (the judge holds every request from then on, so iteration 2 cannot finish even if it got as far
as judging). A second server on the same data folder takes the run
over: it must train and judge iteration 2 only, keep iteration 1 as recorded, and end with each iteration
once and the best adapter downloadable. Runs on SQLite and on PostgreSQL (`pg_helpers`; skipped without a
test server), where the iterations are a JSON column and the job is claimed with ``FOR UPDATE SKIP LOCKED``.
"""

from __future__ import annotations

import datetime as dt
import io
import tarfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from autoscientist_helpers import HoldingJudge, training_settings
from pg_helpers import KINDS, database_url
from runs_helpers import LOOP_MODEL, MAPPING, loopback_model, run_settings, runs_server, upload, write_routes

from tiny_training_model import NUMBERS, tiny_model

pytestmark = pytest.mark.slow

HYPERPARAMS = {"batch_size": 4, "n_epochs": 1}  # the learning rate and the rank are left to the search


@pytest.fixture(params=KINDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with database_url(str(request.param), tmp_path) as url:
        yield url


def _until(condition: Callable[[], bool], what: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


# peft 0.21 reads a property transformers 5 deprecated; the warning is theirs, not the adapter's.
@pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing.*:FutureWarning")
def test_a_run_stopped_after_iteration_1_resumes_at_iteration_2(tmp_path: Path, db_url: str) -> None:
    folder = tiny_model(tmp_path / "tiny")
    judge = HoldingJudge()
    rows = [{"question": f"name fruit number {n}", "answer": f"pineapple {n}"} for n in NUMBERS]
    with loopback_model(reply=judge) as model:
        routes = write_routes(tmp_path / "routes.yaml", model.base_url)
        settings = run_settings(
            model=LOOP_MODEL, routes_path=routes, training=training_settings(tmp_path / "cache", (folder,))
        )
        with runs_server(tmp_path / "data", settings, database_url=db_url) as first:
            assert first.context.store.engine.dialect.name == db_url.split(":")[0].split("+")[0]
            key = first.new_key()
            client = first.client(key=key)
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
            _until(lambda: client.autoscientist.get(run.id).iterations_completed >= 1, "iteration 1")
            judge.hold.set()  # iteration 2 (training, answering, judging) takes seconds: it is under way
            before = client.autoscientist.get(run.id).to_dict()
            assert (before["status"], before["iterations_completed"]) == ("running", 1)
        judge.hold.clear()
        judge.release.set()  # the stopped worker's requests are answered to no one
        restarted = dt.datetime.now(dt.UTC)
        with runs_server(tmp_path / "data", settings, database_url=db_url) as second:
            client = second.client(key=key)
            done = client.autoscientist.wait_for_completion(
                run.id, initial_interval=0.5, max_interval=2, backoff_factor=1.5, timeout=600
            )
            archive = client.autoscientist.download(run.id).read()

    assert done.status == "succeeded", done.error
    iterations = done.to_dict()["iterations"]
    assert [r["iteration"] for r in iterations] == [1, 2]
    assert iterations[0] == before["iterations"][0]  # iteration 1 as the first worker recorded it
    finished = [dt.datetime.fromisoformat(r["finished_at"]) for r in iterations]
    assert finished[0] < restarted < finished[1]  # the second worker trained iteration 2 only
    assert before["download_available"] is True
    second_iteration = iterations[1]
    assert second_iteration["base_iteration"] == 1
    assert second_iteration["move"] == "lr_up"  # the search went on from iteration 1
    first_rate = iterations[0]["hyperparams"]["learning_rate"]
    assert second_iteration["hyperparams"]["learning_rate"] == first_rate * 2
    assert done.iterations_completed == 2
    assert done.to_dict()["ended_because"] == "max_iterations"
    best = max(iterations, key=lambda r: (r["win_rate"], -r["iteration"]))
    assert done.best_win_rate == best["win_rate"]
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as unpacked:
        names = unpacked.getnames()
    assert "adapter/adapter_model.safetensors" in names
