"""The executors of the generation jobs, by ``runs.kind`` (see `datamill.store.generation_models`)."""

from __future__ import annotations

from pathlib import Path

from datamill.api.runs_settings import RunSettings
from datamill.runners.execution import RunExecutor
from datamill.store import BlobStore, Store


def generation_executors(
    store: Store, blobs: BlobStore, settings: RunSettings, data_dir: Path
) -> dict[str, RunExecutor]:
    """One executor per generation job kind, sharing the server's store, blobs and run settings."""
    executors: dict[str, RunExecutor] = {}
    return executors
