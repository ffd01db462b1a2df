"""AutoScientist end to end through the official SDK: the bundled SmolLM2 is fine-tuned with LoRA on CPU.

A tiny dataset teaches a marker word; the loopback judge prefers answers that carry it
(`autoscientist_helpers.judge_reply`), so the recorded win rates can be checked against the judge's rule.
The downloaded artifact is loaded with peft and must change the base model's output. Slow: every test
trains (a few optimisation steps, about a minute on two shared cores).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
import time
from pathlib import Path
from typing import Any

import adaption
import pytest
from autoscientist_helpers import (
    FAST_HYPERPARAMS,
    MARKER,
    marker_rows,
    needs_training,
    train_cache,
    training_server,
)
from runs_helpers import MAPPING, upload

from datamill.training.lora import Stopped
from docs_blocks import RUN_BY, blocks

__all__ = ["train_cache"]  # the session fixture, used by name

pytestmark = pytest.mark.slow


def _wait(client: adaption.Adaption, run_id: str, timeout: float = 900) -> Any:
    return client.autoscientist.wait_for_completion(
        run_id, initial_interval=0.5, max_interval=2, backoff_factor=1.5, timeout=timeout
    )


def _pairs(requests: list[dict[str, Any]]) -> list[tuple[str, str]]:
    found = []
    for body in requests:
        text = "\n".join(str(m.get("content", "")) for m in body["messages"])
        a = text.split("<<<BEGIN ANSWER A>>>")[1].split("<<<END ANSWER A>>>")[0]
        b = text.split("<<<BEGIN ANSWER B>>>")[1].split("<<<END ANSWER B>>>")[0]
        found.append((a, b))
    return found


# peft 0.21 reads a property transformers 5 deprecated; the warning is theirs, not the adapter's.
@pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing.*:FutureWarning")
def test_a_run_trains_judges_both_orders_and_its_adapter_changes_the_model(
    tmp_path: Path, train_cache: Path
) -> None:
    needs_training()
    with training_server(tmp_path, train_cache) as (srv, judge):
        client = srv.client()
        dataset_id = upload(
            client, tmp_path / "qa.csv", marker_rows(10), processing_mode="raw", column_mapping=MAPPING
        )
        models = client.autoscientist.list_models().models
        assert [m.id for m in models] == ["smollm2-135m-instruct"]
        assert models[0].methods == ["sft", "dpo"]
        assert models[0].training_types == ["lora"]
        started = client.autoscientist.create(
            dataset_id=dataset_id,
            hyperparams=FAST_HYPERPARAMS,
            max_iterations=2,
            target_win_rate=0.7,
            idempotency_key="first",
        )
        assert started.status == "pending"
        assert (started.model, started.training_method) == ("smollm2-135m-instruct", "instruction")
        assert started.download_available is False
        again = client.autoscientist.create(
            dataset_id=dataset_id,
            hyperparams=FAST_HYPERPARAMS,
            max_iterations=2,
            target_win_rate=0.7,
            idempotency_key="first",
        )
        assert again.id == started.id  # the same request and key while the run is in progress: the same run
        done = _wait(client, started.id)
        assert done.status == "succeeded", done.error
        other = srv.client()
        with pytest.raises(adaption.NotFoundError):
            other.autoscientist.get(started.id)
        with pytest.raises(adaption.NotFoundError):
            other.autoscientist.download(started.id)
        listed = list(client.autoscientist.list(dataset_id=dataset_id))
        artifact = client.autoscientist.download(started.id).read()
        requests = list(judge.requests)

    assert done.status == "succeeded", done.error
    assert done.completed_at is not None
    assert done.download_available is True
    assert [run.id for run in listed] == [started.id]
    iterations = done.to_dict()["iterations"]
    assert done.iterations_completed == len(iterations) >= 1
    assert iterations[0]["hyperparams"]["learning_rate"] == 2e-3  # the overrides are kept
    for record in iterations:
        assert record["judged"] + record["failed"] == 2  # 20% of 10 rows held out
        assert record["wins"] + record["losses"] + record["ties"] == record["judged"]
        assert 0 <= record["low"] <= record["win_rate"] <= record["high"] <= 1
        assert record["train_steps"] == 6  # 8 training rows, batches of 4, 3 epochs
        for sample in record["samples"]:  # the win rate follows the judge's rule
            tuned, base = MARKER in sample["tuned"], MARKER in sample["base"]
            expected = 1.0 if tuned and not base else 0.0 if base and not tuned else 0.5
            assert sample["score"] == expected
    best = max(iterations, key=lambda r: r["win_rate"])
    assert done.best_win_rate == best["win_rate"]
    assert done.best_hyperparams is not None
    assert done.best_hyperparams.learning_rate == best["hyperparams"]["learning_rate"]
    reached = best["win_rate"] >= 0.7
    assert done.to_dict()["ended_because"] == ("target_reached" if reached else "max_iterations")
    assert len(iterations) == (1 if iterations[0]["win_rate"] >= 0.7 else 2)
    pairs = _pairs(requests)
    assert pairs
    assert all((b, a) in pairs for a, b in pairs)  # every prompt judged in both orders
    _check_artifact(artifact, train_cache, tmp_path / "unpacked")


def _check_artifact(artifact: bytes, cache: Path, target: Path) -> None:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    assert gzip.decompress(artifact)  # a gzip stream
    with tarfile.open(fileobj=io.BytesIO(artifact), mode="r:gz") as archive:
        archive.extractall(target, filter="data")
    metadata = json.loads((target / "datamill.json").read_text())
    assert metadata["base_model"] == "smollm2-135m-instruct"
    (folder,) = [p for p in cache.iterdir() if (p / "config.json").is_file()]
    tokenizer = AutoTokenizer.from_pretrained(folder)
    template = tokenizer.get_chat_template().encode("utf-8")  # the chat format, on a model with a template
    assert metadata["rendering"] == {
        "kind": "chat_template",
        "chat_template_sha256": hashlib.sha256(template).hexdigest(),
        "add_generation_prompt": True,
    }
    inputs = tokenizer("Name fruit number 3.", return_tensors="pt")
    base = AutoModelForCausalLM.from_pretrained(folder)
    with torch.no_grad():
        before = base(**inputs).logits
        tuned = PeftModel.from_pretrained(base, str(target / "adapter"))
        after = tuned(**inputs).logits
    assert (after - before).abs().max().item() > 1e-3


def test_cancel_stops_a_training_run_and_frees_the_worker(tmp_path: Path, train_cache: Path) -> None:
    needs_training()
    with training_server(tmp_path, train_cache) as (srv, _judge):
        client = srv.client()
        dataset_id = upload(
            client, tmp_path / "qa.csv", marker_rows(10), processing_mode="raw", column_mapping=MAPPING
        )
        long = client.autoscientist.create(
            dataset_id=dataset_id,
            hyperparams={**FAST_HYPERPARAMS, "n_epochs": 100},
            max_iterations=5,
        )
        deadline = time.monotonic() + 300
        while client.autoscientist.get(long.id).status != "running":
            assert time.monotonic() < deadline
            time.sleep(0.2)
        time.sleep(3)  # into the training
        cancelled = client.autoscientist.cancel(long.id)
        assert cancelled.status == "cancelled"
        with pytest.raises(adaption.ConflictError):
            client.autoscientist.cancel(long.id)
        quick = client.autoscientist.create(
            dataset_id=dataset_id,
            hyperparams={**FAST_HYPERPARAMS, "n_epochs": 1},
            max_iterations=1,
        )
        done = _wait(client, quick.id, timeout=600)  # the worker was given back
        final = client.autoscientist.get(long.id)
    assert done.status == "succeeded", done.error
    assert final.status == "cancelled"
    assert final.iterations_completed == 0
    assert final.completed_at is not None


DOC = Path(__file__).parents[2] / "docs" / "autoscientist.md"


def test_the_docs_block_runs(tmp_path: Path, train_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    needs_training()
    (block,) = [b.code for b in blocks(DOC) if b.mark == RUN_BY and b.mark_text.endswith(Path(__file__).name)]
    printed: list[str] = []

    def record(*values: object) -> None:
        printed.append(" ".join(str(v) for v in values))

    with training_server(tmp_path, train_cache) as (srv, _judge):
        monkeypatch.chdir(tmp_path)
        monkeypatch.setenv("ADAPTION_API_KEY", srv.new_key())
        monkeypatch.setenv("ADAPTION_BASE_URL", srv.base_url)
        exec(compile(block, str(DOC), "exec"), {"__name__": "docs_autoscientist", "print": record})
    assert printed == [
        "['smollm2-135m-instruct']",
        "succeeded 1",
        "True True",
        "['README.md', 'adapter_config.json', 'adapter_model.safetensors']",
        "smollm2-135m-instruct chat_template",
    ]


@pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing.*:FutureWarning")
def test_dpo_trains_an_adapter_on_preference_pairs(tmp_path: Path, train_cache: Path) -> None:
    needs_training()
    from datamill.training.base_models import bundled_model
    from datamill.training.loading import model_folder, use_threads
    from datamill.training.lora import Example, TrainConfig, train_adapter

    model = bundled_model()
    assert model is not None
    use_threads(1)
    folder = model_folder(model, train_cache)
    pairs = [Example(f"Name fruit number {i}.", "", f"{MARKER} {i}.", f"Apple {i}.") for i in range(4)]
    config = TrainConfig(method="dpo", batch_size=2, n_epochs=1, learning_rate=1e-3, lora_r=4, lora_alpha=8)
    report = train_adapter(folder, pairs, config, tmp_path / "dpo")
    assert report.steps == 2
    assert report.loss is not None
    assert (tmp_path / "dpo" / "adapter" / "adapter_model.safetensors").is_file()
    stopped = tmp_path / "stopped"
    with pytest.raises(Stopped):
        train_adapter(folder, pairs, config, stopped, should_stop=lambda: True)
    assert not (stopped / "adapter").exists()  # a stopped training saves nothing
