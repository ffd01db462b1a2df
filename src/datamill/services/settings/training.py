"""Settings of AutoScientist training, read from the environment once (part of `RunSettings`).

| variable                      | meaning                                                | default         |
|-------------------------------|--------------------------------------------------------|-----------------|
| DATAMILL_TRAIN_MODELS         | more trainable base models: folders, GGUF files, ids   | (bundled only)  |
| DATAMILL_TRAIN_DEVICE         | ``auto`` (a GPU if any), ``cpu``, ``cuda``, ``cuda:N``   | auto            |
| DATAMILL_TRAIN_CACHE          | where GGUF base models are kept once converted         | DATA_DIR/models |
| DATAMILL_TRAIN_MAX_NEW_TOKENS | the longest answer generated for a held-out prompt     | 128             |
| DATAMILL_TRAIN_THREADS        | CPU threads torch uses (``0``: torch's default)        | 0               |
| DATAMILL_TRAIN_PROCS_PER_NODE | training processes on this machine (torchrun), ``auto``  | auto            |
| DATAMILL_TRAIN_NNODES         | machines one training spans                            | 1               |
| DATAMILL_TRAIN_RDZV_ENDPOINT  | ``host:port`` where the machines of a training meet    | (one machine)   |
| DATAMILL_TRAIN_RDZV_ID        | the name of the multi-machine training rendezvous      | datamill-train  |

``auto`` processes means one per GPU when training on ``cuda`` (all the GPUs the worker sees), one on a CPU
or a single named GPU (``cuda:N``). More than one process in all (several per machine, or several machines)
launches each training through ``torchrun`` (`datamill.training.launcher`); several machines need
``DATAMILL_TRAIN_RDZV_ENDPOINT``.

On a machine whose cores are shared with other busy processes, ``DATAMILL_TRAIN_THREADS=1`` is several times
faster than the default: torch's threads wait for each other at every operation, and a descheduled one makes
the others wait a whole time slice.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from datamill.core.errors import ConfigError

_DEVICE = re.compile(r"auto|cpu|cuda(:\d+)?")
_ENDPOINT = re.compile(r"[A-Za-z0-9_.\-\[\]:]+:\d{1,5}")
_RDZV_ID = re.compile(r"[A-Za-z0-9_.\-]{1,64}")


def _count(env: Mapping[str, str], name: str, default: str, low: int, auto: bool = False) -> int:
    """A whole number from `low` to 1024 (``auto`` reads as 0 where allowed)."""
    text = env.get(name, default).strip().lower()
    if auto and text == "auto":
        return 0
    if not text.isdigit() or not low <= int(text) <= 1024:
        also = " or auto" if auto else ""
        raise ConfigError(f"{name}: must be a whole number from {low} to 1024{also}, got {text!r}")
    return int(text)


@dataclass(frozen=True)
class TrainingSettings:
    """How AutoScientist runs train; see the module docstring."""

    models: tuple[str, ...] = ()
    device: str = "auto"
    cache_dir: Path | None = None
    max_new_tokens: int = 128
    threads: int = 0
    procs_per_node: int = 0  # 0: auto
    nnodes: int = 1
    rdzv_endpoint: str = ""
    rdzv_id: str = "datamill-train"

    @classmethod
    def from_values(cls, env: Mapping[str, str]) -> TrainingSettings:
        """The settings the declared variables `env` describe.

        Raises:
            ConfigError: a variable that cannot be read, naming it.
        """
        models = tuple(m.strip() for m in env.get("DATAMILL_TRAIN_MODELS", "").split(",") if m.strip())
        device = env.get("DATAMILL_TRAIN_DEVICE", "auto").strip().lower()
        if not _DEVICE.fullmatch(device):
            raise ConfigError(f"DATAMILL_TRAIN_DEVICE: must be auto, cpu, cuda or cuda:N, got {device!r}")
        cache = env.get("DATAMILL_TRAIN_CACHE", "").strip()
        tokens_text = env.get("DATAMILL_TRAIN_MAX_NEW_TOKENS", "128").strip()
        if not tokens_text.isdigit() or not 1 <= int(tokens_text) <= 4096:
            raise ConfigError(
                f"DATAMILL_TRAIN_MAX_NEW_TOKENS: must be a whole number from 1 to 4096, got {tokens_text!r}"
            )
        threads = _count(env, "DATAMILL_TRAIN_THREADS", "0", 0)
        procs = _count(env, "DATAMILL_TRAIN_PROCS_PER_NODE", "auto", 1, auto=True)
        nnodes = _count(env, "DATAMILL_TRAIN_NNODES", "1", 1)
        endpoint = env.get("DATAMILL_TRAIN_RDZV_ENDPOINT", "").strip()
        if endpoint and not _ENDPOINT.fullmatch(endpoint):
            raise ConfigError(f"DATAMILL_TRAIN_RDZV_ENDPOINT: must be host:port, got {endpoint!r}")
        if nnodes > 1 and not endpoint:
            raise ConfigError(
                "DATAMILL_TRAIN_RDZV_ENDPOINT: needed when DATAMILL_TRAIN_NNODES is above 1 "
                "(host:port of a machine every node reaches)"
            )
        rdzv_id = env.get("DATAMILL_TRAIN_RDZV_ID", "datamill-train").strip()
        if not _RDZV_ID.fullmatch(rdzv_id):
            raise ConfigError(
                f"DATAMILL_TRAIN_RDZV_ID: letters, digits, '.', '_' and '-' (at most 64), got {rdzv_id!r}"
            )
        cache_dir = Path(cache).expanduser() if cache else None
        return cls(models, device, cache_dir, int(tokens_text), threads, procs, nnodes, endpoint, rdzv_id)

    def cache_for(self, data_dir: Path) -> Path:
        """The converted-models folder: `cache_dir`, else ``<data_dir>/models``."""
        return self.cache_dir or data_dir / "models"
