"""Launch one training over several processes, GPUs or machines with PyTorch's own launcher, ``torchrun``.

`Launch` says how many processes to start on this node and how many nodes take part; `train_launched`
writes the job into a folder, runs ``python -m torch.distributed.run ... -m datamill.training.launch
JOB_DIR`` (``torchrun``) as a child process, and reads back what the training did. The trainer of every
process sees torchrun's variables and trains data-parallel; datamill only starts the launcher.

One node: torchrun's ``--standalone`` rendezvous on a free local port. Several nodes: torchrun's ``c10d``
rendezvous at `Launch.rdzv_endpoint` (``host:port`` of a machine every node can reach), with
`Launch.rdzv_id` naming the training; the other nodes run `follow_command` (they receive the job over the
process group, see `datamill.training.launch`).

A stop (a cancelled run) ends the launcher and its processes (SIGTERM to its process group, SIGKILL after a
grace period) and raises `Stopped`; a launcher that fails raises `TrainingFailed` with the end of its log.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from datamill.core.errors import DatamillError
from datamill.training.launch import JOB_FILE, REPORT_FILE, job_text
from datamill.training.lora import Example, Stopped, TrainConfig, TrainReport

#: Seconds the launcher has to end after SIGTERM before it is killed.
GRACE_SECONDS = 20.0
#: Characters of the launcher's log quoted in a failure.
LOG_TAIL = 4000


class TrainingFailed(DatamillError):
    """The distributed training's launcher or one of its processes failed."""


@dataclass(frozen=True)
class Launch:
    """How a training is spread: processes on this node, nodes, and the rendezvous of several nodes."""

    procs_per_node: int = 1
    nnodes: int = 1
    rdzv_endpoint: str = ""
    rdzv_id: str = "datamill-train"

    @property
    def distributed(self) -> bool:
        """Whether training goes through the launcher (more than one process in all)."""
        return self.procs_per_node > 1 or self.nnodes > 1

    def _rendezvous(self) -> list[str]:
        if self.nnodes == 1:
            return ["--standalone"]
        return [
            f"--nnodes={self.nnodes}",
            "--rdzv-backend=c10d",
            f"--rdzv-endpoint={self.rdzv_endpoint}",
            f"--rdzv-id={self.rdzv_id}",
        ]

    def command(self, job_dir: Path) -> list[str]:
        """The torchrun command that trains the job in `job_dir` from this node."""
        return [
            sys.executable,
            "-m",
            "torch.distributed.run",
            f"--nproc-per-node={self.procs_per_node}",
            *self._rendezvous(),
            "-m",
            "datamill.training.launch",
            str(job_dir),
        ]

    def follow_command(self, device: str = "auto") -> list[str]:
        """The torchrun command another node of a multi-node training runs to take part."""
        return [
            sys.executable,
            "-m",
            "torch.distributed.run",
            f"--nproc-per-node={self.procs_per_node}",
            *self._rendezvous(),
            "-m",
            "datamill.training.launch",
            "--follow",
            f"--device={device}",
        ]


def processes_per_node(asked: int, device: str) -> int:
    """`asked`, or for 0 (``auto``): one per GPU the process sees when training on ``cuda``, else 1."""
    if asked > 0:
        return asked
    if device == "cuda":
        import torch

        return max(1, torch.cuda.device_count())
    return 1


def _end(process: subprocess.Popen[bytes]) -> None:
    for sig, wait in ((signal.SIGTERM, GRACE_SECONDS), (signal.SIGKILL, None)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def train_launched(
    folder: str,
    examples: Sequence[Example],
    config: TrainConfig,
    output_dir: Path,
    *,
    launch: Launch,
    device: str = "cpu",
    threads: int = 0,
    should_stop: Callable[[], bool] = lambda: False,
    poll_seconds: float = 0.5,
) -> TrainReport:
    """Train like `datamill.training.lora.train_adapter`, in the processes `launch` describes.

    Raises:
        Stopped: `should_stop` answered True; the launcher and its processes were ended.
        TrainingFailed: the launcher exited with an error.
    """
    job_dir = output_dir / "launch"
    job_dir.mkdir(parents=True, exist_ok=True)
    (job_dir / JOB_FILE).write_text(
        job_text(folder, list(examples), config, output_dir, device, threads), encoding="utf-8"
    )
    log_path = job_dir / "torchrun.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            launch.command(job_dir),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group, so a stop ends every process it started
        )
        try:
            while True:
                try:
                    code = process.wait(timeout=poll_seconds)
                    break
                except subprocess.TimeoutExpired:
                    if should_stop():
                        raise Stopped("training was stopped") from None
        finally:
            if process.poll() is None:
                _end(process)
    report = job_dir / REPORT_FILE
    if code != 0 or not report.is_file():
        tail = log_path.read_text(encoding="utf-8", errors="replace")[-LOG_TAIL:]
        raise TrainingFailed(f"the distributed training exited with code {code}:\n{tail}")
    found = json.loads(report.read_text(encoding="utf-8"))
    return TrainReport(
        steps=int(found["steps"]),
        loss=None if found["loss"] is None else float(found["loss"]),
        seconds=float(found["seconds"]),
        world_size=int(found["world_size"]),
    )
