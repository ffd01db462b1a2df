"""Settings of AutoScientist training, read from the environment once (part of `RunSettings`).

| variable                      | meaning                                                | default         |
|-------------------------------|--------------------------------------------------------|-----------------|
| DATAMILL_TRAIN_MODELS         | more trainable base models: folders, GGUF files, ids   | (bundled only)  |
| DATAMILL_TRAIN_DEVICE         | ``auto`` (a GPU if any), ``cpu``, ``cuda``, ``cuda:N``   | auto            |
| DATAMILL_TRAIN_CACHE          | where GGUF base models are kept once converted         | DATA_DIR/models |
| DATAMILL_TRAIN_MAX_NEW_TOKENS | the longest answer generated for a held-out prompt     | 128             |
| DATAMILL_TRAIN_THREADS        | CPU threads torch uses (``0``: torch's default)        | 0               |

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


@dataclass(frozen=True)
class TrainingSettings:
    """How AutoScientist runs train; see the module docstring."""

    models: tuple[str, ...] = ()
    device: str = "auto"
    cache_dir: Path | None = None
    max_new_tokens: int = 128
    threads: int = 0

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
        threads = env.get("DATAMILL_TRAIN_THREADS", "0").strip()
        if not threads.isdigit() or int(threads) > 1024:
            raise ConfigError(
                f"DATAMILL_TRAIN_THREADS: must be a whole number from 0 to 1024, got {threads!r}"
            )
        cache_dir = Path(cache).expanduser() if cache else None
        return cls(models, device, cache_dir, int(tokens_text), int(threads))

    def cache_for(self, data_dir: Path) -> Path:
        """The converted-models folder: `cache_dir`, else ``<data_dir>/models``."""
        return self.cache_dir or data_dir / "models"
