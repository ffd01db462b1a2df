"""What a command does before it works: read its settings once and make the process-wide choices.

The library never changes the process it runs in; a CLI command owns its process, so it opts in here:
the network guard of ``DATAMILL_BLOCK_REMOTE_MODELS``, pyarrow's lean memory pool and a quieter cyclic GC.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from datamill.services.settings.entry import Settings
from datamill.services.settings.tree import DatamillSettings, load_settings


def apply(settings: Settings) -> Settings:
    """Make the process-wide choices `settings` describe; return them."""
    from datamill.llm.guard import block_remote

    if settings.block_remote:
        block_remote(True)
    return settings


def use_lean_memory(settings: Settings) -> None:
    """Switch pyarrow to the memory pool that hands freed memory back (a command that processes data)."""
    from datamill.dataio.memory import use_lean_memory_pool

    use_lean_memory_pool(settings.memory_pool)


#: How many blocks are inside `quiet_gc`, and the GC thresholds to restore when the last one leaves.
_GC_STATE: dict[str, Any] = {"depth": 0, "threshold": (700, 10, 10)}


@contextmanager
def quiet_gc(young_threshold: int = 20_000) -> Iterator[None]:
    """For the block: freeze the objects that exist now out of the cyclic GC, and collect less often.

    Why: on 3,000 rows at C=256 the cyclic GC took about 40% of the run's CPU (746 collections, full ones up
    to 110 ms, each stalling every response in flight), mostly rescanning long-lived objects (modules,
    tokenizer, plan). Rows and replies are acyclic, so collecting the young generation every 20,000
    allocations instead of 700 loses little memory. Nested blocks share one setting: the first to enter sets
    it and the last to leave restores it. The whole process is affected, so only commands that own their
    process (``adapt``, ``worker``) use it; a server running runs in-process keeps Python's defaults.
    """
    if not _GC_STATE["depth"]:
        _GC_STATE["threshold"] = gc.get_threshold()
        gc.freeze()
        first, second, third = _GC_STATE["threshold"]
        gc.set_threshold(max(first, young_threshold), second, third)
    _GC_STATE["depth"] += 1
    try:
        yield
    finally:
        _GC_STATE["depth"] -= 1
        if not _GC_STATE["depth"]:
            gc.set_threshold(*_GC_STATE["threshold"])
            gc.unfreeze()


def command_settings() -> Settings:
    """The settings of a local command (adapt, generate, models), read from the environment."""
    return apply(Settings.from_env())


def server_settings(data_dir: Path | None = None) -> DatamillSettings:
    """The whole settings tree of a server command (serve, worker, keys); `data_dir` overrides the home."""
    tree = load_settings(data_dir=data_dir)
    apply(tree.llm)
    return tree
