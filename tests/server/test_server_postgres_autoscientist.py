"""The AutoScientist job path through the official SDK on a server whose database is PostgreSQL.

A run is created (its idempotency key answering the same run while it is in progress), claimed by the
server's worker from the shared ``runs`` queue, trained on a tiny base model (`tiny_training_model`),
judged by a loopback judge, recorded in the run's row, and its adapter downloaded and loaded with peft. A
second, long run is cancelled while it trains, and the worker it held trains a third. The job rows show one
attempt each and the outcome the SDK reported. Skipped without a PostgreSQL test server (`pg_helpers`).
"""

from __future__ import annotations

import io
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import adaption
import pytest
from autoscientist_helpers import judge_reply, training_settings
from pg_helpers import fresh_database, postgres_url
from runs_helpers import LOOP_MODEL, MAPPING, loopback_model, run_settings, runs_server, upload, write_routes
from sqlalchemy import select

from datamill.store import Run
from datamill.store.autoscientist_models import AutoscientistRun
from tiny_training_model import NUMBERS, tiny_model

pytestmark = pytest.mark.slow


@pytest.fixture
def pg_url() -> Iterator[str]:
    with fresh_database(postgres_url()) as url:
        yield url


def _wait(client: adaption.Adaption, run_id: str) -> Any:
    return client.autoscientist.wait_for_completion(
        run_id, initial_interval=0.5, max_interval=2, backoff_factor=1.5, timeout=600
    )


def _check_adapter(archive: bytes, folder: str, target: Path) -> None:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as unpacked:
        unpacked.extractall(target, filter="data")
    inputs = AutoTokenizer.from_pretrained(folder)("name fruit number three", return_tensors="pt").input_ids
    base = AutoModelForCausalLM.from_pretrained(folder)
    with torch.no_grad():
        before = base(inputs).logits
        after = PeftModel.from_pretrained(base, str(target / "adapter"))(inputs).logits
    assert (after - before).abs().max().item() > 1e-6


# peft 0.21 reads a property transformers 5 deprecated; the warning is theirs, not the adapter's.
@pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing.*:FutureWarning")
def test_an_autoscientist_run_trains_downloads_and_cancels_on_postgresql(pg_url: str, tmp_path: Path) -> None:
    folder = tiny_model(tmp_path / "tiny")
    rows = [{"question": f"name fruit number {n}", "answer": f"pineapple {n}"} for n in NUMBERS]
    with loopback_model(reply=judge_reply) as model:
        routes = write_routes(tmp_path / "routes.yaml", model.base_url)
        settings = run_settings(
            model=LOOP_MODEL, routes_path=routes, training=training_settings(tmp_path / "cache", (folder,))
        )
        with runs_server(tmp_path / "data", settings, database_url=pg_url) as server:
            assert server.context.store.engine.dialect.name == "postgresql"
            client = server.client()
            dataset_id = upload(
                client, tmp_path / "qa.csv", rows, processing_mode="raw", column_mapping=MAPPING
            )
            options: dict[str, Any] = {
                "dataset_id": dataset_id,
                "model": folder,
                "data_format": "instruction",
            }
            keyed: dict[str, Any] = {
                **options,
                "hyperparams": {"batch_size": 4, "n_epochs": 1},
                "max_iterations": 1,
                "idempotency_key": "pg",
            }
            first = client.autoscientist.create(**keyed)
            assert client.autoscientist.create(**keyed).id == first.id
            with pytest.raises(adaption.UnprocessableEntityError):  # the key with other settings
                client.autoscientist.create(**options, idempotency_key="pg")
            done = _wait(client, first.id)
            archive = client.autoscientist.download(first.id).read()

            long = client.autoscientist.create(
                **options, hyperparams={"batch_size": 1, "n_epochs": 100}, max_iterations=3
            )
            deadline = time.monotonic() + 300
            while client.autoscientist.get(long.id).status != "running":
                assert time.monotonic() < deadline
                time.sleep(0.2)
            assert client.autoscientist.cancel(long.id).status == "cancelled"
            with pytest.raises(adaption.ConflictError):
                client.autoscientist.cancel(long.id)
            quick = client.autoscientist.create(
                **options, hyperparams={"batch_size": 4, "n_epochs": 1}, max_iterations=1
            )
            after_cancel = _wait(client, quick.id)  # the worker the long run held was given back
            cancelled = client.autoscientist.get(long.id)
            listed = [run.id for run in client.autoscientist.list(dataset_id=dataset_id)]
            with server.context.store.session() as session:
                runs = {r.id: r for r in session.scalars(select(AutoscientistRun))}
                jobs = {j.id: j for j in session.scalars(select(Run).where(Run.kind == "autoscientist"))}
                outcomes = {
                    run_id: (jobs[r.job_id].status, jobs[r.job_id].attempts) for run_id, r in runs.items()
                }

    assert done.status == "succeeded", done.error
    record = done.to_dict()["iterations"][0]
    assert (record["iteration"], record["judged"] + record["failed"], record["train_processes"]) == (1, 2, 1)
    assert done.best_win_rate == record["win_rate"]
    assert after_cancel.status == "succeeded", after_cancel.error
    assert (cancelled.status, cancelled.iterations_completed) == ("cancelled", 0)
    assert cancelled.completed_at is not None
    assert listed == [quick.id, long.id, first.id]  # newest first
    assert outcomes == {
        first.id: ("succeeded", 1),
        long.id: ("cancelled", 1),
        quick.id: ("succeeded", 1),
    }
    _check_adapter(archive, folder, tmp_path / "unpacked")
