"""A worker configured for two training processes trains each iteration through torchrun.

The server's training settings ask for two processes a machine (``DATAMILL_TRAIN_PROCS_PER_NODE=2``); on
CPU they train data-parallel with gloo. The run's iteration records that two processes trained it, and its
adapter, written by the first process, downloads and loads with peft.
"""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest
from autoscientist_helpers import judge_reply, training_settings
from runs_helpers import LOOP_MODEL, MAPPING, loopback_model, run_settings, runs_server, upload, write_routes

from tiny_training_model import NUMBERS, tiny_model

pytestmark = pytest.mark.slow


# peft 0.21 reads a property transformers 5 deprecated; the warning is theirs, not the adapter's.
@pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing.*:FutureWarning")
def test_a_run_trains_with_two_processes_when_the_worker_is_told_to(tmp_path: Path) -> None:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    folder = tiny_model(tmp_path / "tiny")
    rows = [{"question": f"name fruit number {n}", "answer": f"pineapple {n}"} for n in NUMBERS]
    with loopback_model(reply=judge_reply) as model:
        routes = write_routes(tmp_path / "routes.yaml", model.base_url)
        training = training_settings(tmp_path / "cache", (folder,), procs_per_node=2)
        settings = run_settings(model=LOOP_MODEL, routes_path=routes, training=training)
        with runs_server(tmp_path / "data", settings) as server:
            client = server.client()
            dataset_id = upload(
                client, tmp_path / "qa.csv", rows, processing_mode="raw", column_mapping=MAPPING
            )
            run = client.autoscientist.create(
                dataset_id=dataset_id,
                model=folder,
                data_format="instruction",
                hyperparams={"batch_size": 2, "n_epochs": 1},
                max_iterations=1,
            )
            done = client.autoscientist.wait_for_completion(
                run.id, initial_interval=0.5, max_interval=2, backoff_factor=1.5, timeout=600
            )
            archive = client.autoscientist.download(run.id).read()

    assert done.status == "succeeded", done.error
    (record,) = done.to_dict()["iterations"]
    assert record["train_processes"] == 2
    assert record["train_steps"] == 2  # 8 training rows, 2 a batch on each of 2 processes
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as unpacked:
        unpacked.extractall(tmp_path / "unpacked", filter="data")
    base = AutoModelForCausalLM.from_pretrained(folder)
    inputs = torch.tensor([[4, 5, 6, 7]])
    with torch.no_grad():
        before = base(inputs).logits
        after = PeftModel.from_pretrained(base, str(tmp_path / "unpacked" / "adapter"))(inputs).logits
    assert (after - before).abs().max().item() > 1e-6
