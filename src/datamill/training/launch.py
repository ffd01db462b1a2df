"""The program every process of a distributed training runs: ``python -m datamill.training.launch``.

PyTorch's launcher (``torchrun``, `datamill.training.launcher` builds its command) starts it once per
process with the usual ``RANK``, ``LOCAL_RANK`` and ``WORLD_SIZE`` variables; each process calls
`datamill.training.lora.train_adapter`, whose trl trainer sees the launcher's variables and trains
data-parallel (DDP: gloo on CPUs, NCCL on GPUs). Nothing here splits batches or averages gradients.

``python -m datamill.training.launch JOB_DIR`` runs on the node whose worker launched the training: the
job (``JOB_DIR/job.json``: base model folder, examples, hyperparameters, device) is read from there, its
first process writes the adapter and ``JOB_DIR/report.json``, and every process of the node writes
``JOB_DIR/ranks/rank-N.json`` (its rank, the world size, its steps).

The launching node's processes watch the worker that launched them (its process id and, on Linux, its start
time are in the job): a worker killed outright (SIGKILL, out of memory) cannot end the launcher it started
in a session of its own, so each process exits as soon as that worker is gone, torchrun ends the others, and
no orphaned training goes on beside the one the next worker starts.

``python -m datamill.training.launch --follow`` runs on the other nodes of a multi-node training: the job
is received from the launching node over the process group, and nothing is written; the base model must be
at the same path on every node (a shared filesystem, or the same folder layout).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from datamill.training.loading import pick_device, use_threads
from datamill.training.lora import Example, TrainConfig, train_adapter

JOB_FILE = "job.json"
REPORT_FILE = "report.json"
RANKS_DIR = "ranks"


def job_text(
    folder: str,
    examples: list[Example],
    config: TrainConfig,
    output_dir: Path,
    device: str,
    threads: int,
) -> str:
    """The job file's text: everything a process needs to train, and the process that launched it."""
    return json.dumps(
        {
            "folder": folder,
            "examples": [asdict(e) for e in examples],
            "config": asdict(config),
            "output_dir": str(output_dir),
            "device": device,
            "threads": threads,
            "parent": {"pid": os.getpid(), "started": process_started(os.getpid())},
        }
    )


#: The exit status of a process whose launching worker is gone.
PARENT_GONE = 75
#: Seconds between two checks that the launching worker is still there.
WATCH_SECONDS = 1.0


def process_started(pid: int) -> str | None:
    """When process `pid` started, in clock ticks since boot (Linux ``/proc``); None where unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii")
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]  # field 22; the name before it may hold spaces


def parent_alive(parent: dict[str, Any]) -> bool:
    """Whether the process `parent` names (``pid`` and ``started``) still runs: the same one, not a reuse."""
    pid = int(parent["pid"])
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # there, but not ours
        pass
    started = parent.get("started")
    return started is None or process_started(pid) in (started, None)


def _watch(parent: dict[str, Any]) -> None:
    """Exit this process (`PARENT_GONE`) as soon as the worker that launched the training is gone."""

    def loop() -> None:
        while parent_alive(parent):
            time.sleep(WATCH_SECONDS)
        print(f"the worker (process {parent['pid']}) that launched this training is gone", file=sys.stderr)
        os._exit(PARENT_GONE)

    threading.Thread(target=loop, name="datamill-parent-watch", daemon=True).start()


def _env_int(name: str, default: int) -> int:
    """One of the variables torchrun gives each process (``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``...)."""
    return int(os.environ.get(name, default))


def _exchange(text: str | None, device: str) -> str:
    """The job text of the launching node's first process, on every process of a multi-node training."""
    import torch
    import torch.distributed as dist

    if device.startswith("cuda"):
        torch.cuda.set_device(_env_int("LOCAL_RANK", 0))
        dist.init_process_group(backend="cuda:nccl,cpu:gloo")
    else:
        dist.init_process_group(backend="gloo")
    holder = torch.tensor([dist.get_rank() if text is not None and _env_int("LOCAL_RANK", 0) == 0 else -1])
    dist.all_reduce(holder, op=dist.ReduceOp.MAX)
    source = int(holder.item())
    if source < 0:
        raise SystemExit("no node of this training was started with a job folder")
    box: list[Any] = [text]
    dist.broadcast_object_list(box, src=source, device=torch.device("cpu"))
    return str(box[0])


def _device(asked: str) -> str:
    """Each process of a GPU training uses the GPU of its local rank."""
    if asked.startswith("cuda") and _env_int("LOCAL_RANK", -1) >= 0:
        return f"cuda:{_env_int('LOCAL_RANK', 0)}"
    return asked


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m datamill.training.launch")
    parser.add_argument("job_dir", nargs="?", type=Path, help="the job folder (on the launching node)")
    parser.add_argument("--follow", action="store_true", help="receive the job from the launching node")
    parser.add_argument("--device", default="auto", help="with --follow: auto, cpu, cuda")
    args = parser.parse_args(argv)
    if (args.job_dir is None) == (not args.follow):
        parser.error("give a job folder or --follow, not both")
    text = (args.job_dir / JOB_FILE).read_text(encoding="utf-8") if args.job_dir else None
    multi_node = _env_int("WORLD_SIZE", 1) != _env_int("LOCAL_WORLD_SIZE", 1)
    if multi_node:
        asked = json.loads(text)["device"] if text else args.device
        text = _exchange(text, pick_device(asked))
    elif text is None:
        parser.error("--follow is for the other nodes of a multi-node training")
    job = json.loads(text)
    if args.job_dir is not None and job.get("parent"):
        _watch(job["parent"])
    if not Path(job["folder"]).exists() and Path(job["folder"]).is_absolute():
        raise SystemExit(f"the base model folder {job['folder']} is not on this node")
    use_threads(int(job["threads"]))
    local_rank = _env_int("LOCAL_RANK", 0)
    leader = args.job_dir is not None
    report = train_adapter(
        job["folder"],
        [Example(**e) for e in job["examples"]],
        TrainConfig(**job["config"]),
        Path(job["output_dir"]),
        device=_device(job["device"]),
        saves=leader and local_rank == 0,
    )
    if leader:
        rank = _env_int("RANK", 0)
        record = {**asdict(report), "rank": rank, "local_rank": local_rank}
        ranks = args.job_dir / RANKS_DIR
        ranks.mkdir(parents=True, exist_ok=True)
        (ranks / f"rank-{rank}.json").write_text(json.dumps(record), encoding="utf-8")
        if local_rank == 0:
            (args.job_dir / REPORT_FILE).write_text(json.dumps(record), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
