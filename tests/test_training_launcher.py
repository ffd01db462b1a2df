"""A training launched through torchrun: two processes on CPU train one LoRA adapter data-parallel (gloo).

Two machines are played by two torchrun launchers on one machine meeting at a c10d rendezvous on loopback:
the launching one with the job, the other with ``--follow``. A worker killed outright (SIGKILL) while its
training runs leaves no training process behind.

The base model is a randomly initialised Llama of a few thousand weights with a word-level tokenizer built
from the examples, so two processes load and train it in seconds; the path is the one a worker takes when
`Launch.procs_per_node` is above 1.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from datamill.training.launcher import Launch, TrainingFailed, train_launched
from datamill.training.lora import Example, Stopped, TrainConfig
from tiny_training_model import NUMBERS, tiny_model

pytestmark = pytest.mark.slow


def _examples() -> list[Example]:
    return [Example(prompt=f"name fruit number {n}", completion=f"pineapple {n}") for n in NUMBERS]


CONFIG = TrainConfig(chat=False, n_epochs=2, learning_rate=1e-2, batch_size=2, lora_r=4, lora_alpha=8)


# peft 0.21 reads a property transformers 5 deprecated; the warning is theirs, not the adapter's.
@pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing.*:FutureWarning")
def test_two_processes_train_one_adapter_through_torchrun(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    monkeypatch.setenv("DATAMILL_TRAIN_THREADS", "1")
    folder = tiny_model(tmp_path / "base")
    out = tmp_path / "iteration-1"
    report = train_launched(
        folder, _examples(), CONFIG, out, launch=Launch(procs_per_node=2), device="cpu", threads=1
    )

    assert report.world_size == 2
    # 10 examples, 2 a batch on each of 2 processes: 3 steps an epoch (one process alone would take 5)
    assert report.steps == 6
    assert report.loss is not None
    ranks = sorted((out / "launch" / "ranks").glob("rank-*.json"))
    records = [json.loads(p.read_text()) for p in ranks]
    assert [(r["rank"], r["world_size"], r["steps"]) for r in records] == [(0, 2, 6), (1, 2, 6)]
    base = AutoModelForCausalLM.from_pretrained(folder)
    inputs = AutoTokenizer.from_pretrained(folder)("name fruit number three", return_tensors="pt").input_ids
    with torch.no_grad():
        before = base(inputs).logits
        tuned = PeftModel.from_pretrained(base, str(out / "adapter"))
        after = tuned(inputs).logits
    assert (after - before).abs().max().item() > 1e-4


def test_a_failing_process_fails_the_launch_with_its_log(tmp_path: Path) -> None:
    folder = tiny_model(tmp_path / "base")
    bad = TrainConfig(chat=False, lora_trainable_modules="no_such_module")
    with pytest.raises(TrainingFailed, match="no_such_module"):
        train_launched(folder, _examples(), bad, tmp_path / "out", launch=Launch(procs_per_node=2), threads=1)


def test_a_stop_ends_the_launcher_and_its_processes(tmp_path: Path) -> None:
    psutil = pytest.importorskip("psutil")
    folder = tiny_model(tmp_path / "base")
    long = TrainConfig(chat=False, n_epochs=10_000, batch_size=1, lora_r=4, lora_alpha=8)
    ranks = tmp_path / "out" / "launch" / "ranks"
    calls = []

    def stop_soon() -> bool:
        calls.append(1)
        return len(calls) > 20

    with pytest.raises(Stopped):
        train_launched(
            folder,
            _examples(),
            long,
            tmp_path / "out",
            launch=Launch(procs_per_node=2),
            threads=1,
            should_stop=stop_soon,
        )
    assert not ranks.exists()  # no process finished
    job = str(tmp_path / "out" / "launch")
    left = [p.pid for p in psutil.process_iter(["cmdline"]) if job in " ".join(p.info["cmdline"] or [])]
    assert left == []  # the launcher and both training processes were ended


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# peft 0.21 reads a property transformers 5 deprecated; the warning is theirs, not the adapter's.
@pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing.*:FutureWarning")
def test_two_nodes_meet_at_the_rendezvous_and_the_follower_receives_the_job(tmp_path: Path) -> None:
    folder = tiny_model(tmp_path / "base")
    launch = Launch(procs_per_node=1, nnodes=2, rdzv_endpoint=f"127.0.0.1:{_free_port()}", rdzv_id="t")
    log = (tmp_path / "follower.log").open("wb")
    follower = subprocess.Popen(launch.follow_command("cpu"), stdout=log, stderr=subprocess.STDOUT)
    try:
        out = tmp_path / "iteration-1"
        report = train_launched(folder, _examples(), CONFIG, out, launch=launch, device="cpu", threads=1)
        assert follower.wait(timeout=120) == 0
    finally:
        if follower.poll() is None:
            follower.kill()
            follower.wait()
        log.close()
    assert report.world_size == 2
    assert report.steps == 6  # as two processes on one machine: the batches were shared across the nodes
    (record,) = [json.loads(p.read_text()) for p in (out / "launch" / "ranks").glob("rank-*.json")]
    assert record["world_size"] == 2  # only the launching node writes; the follower wrote nothing
    assert (out / "adapter" / "adapter_model.safetensors").is_file()


def _processes_naming(marker: str) -> list[int]:
    """The ids of the running processes whose command line holds `marker` (Linux ``/proc``)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes()
            state = (entry / "stat").read_text(encoding="ascii").rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if marker.encode() in command and state != "Z":
            found.append(int(entry.name))
    return found


def test_a_worker_killed_with_sigkill_leaves_no_training_running(tmp_path: Path) -> None:
    """torchrun runs in a session of its own, so only its processes' watch on the worker can end them."""
    if not Path("/proc/self/stat").is_file():
        pytest.skip("finds the training's processes in /proc")
    folder = tiny_model(tmp_path / "base")
    out = tmp_path / "iteration-1"
    job_dir = str(out / "launch")
    worker_script = textwrap.dedent(
        f"""
        from pathlib import Path
        from datamill.training.launcher import Launch, train_launched
        from datamill.training.lora import Example, TrainConfig

        examples = [Example(prompt="name fruit number " + n, completion="pineapple " + n)
                    for n in {NUMBERS!r}]
        config = TrainConfig(chat=False, n_epochs=100000, batch_size=2, lora_r=4, lora_alpha=8)
        train_launched({folder!r}, examples, config, Path({str(out)!r}), launch=Launch(procs_per_node=2),
                       device="cpu", threads=1)
        """
    )
    with (tmp_path / "worker.log").open("wb") as log:
        worker = subprocess.Popen([sys.executable, "-c", worker_script], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while len(_processes_naming(job_dir)) < 3:  # torchrun and its two training processes
            assert worker.poll() is None, (tmp_path / "worker.log").read_text()
            assert time.monotonic() < deadline, "the training processes did not start"
            time.sleep(0.2)
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
        deadline = time.monotonic() + 60
        while _processes_naming(job_dir):
            assert time.monotonic() < deadline, f"still running: {_processes_naming(job_dir)}"
            time.sleep(0.2)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait(10)
        for pid in _processes_naming(job_dir):  # the test's own training, if it was left behind
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    assert "is gone" in (out / "launch" / "torchrun.log").read_text(encoding="utf-8")
