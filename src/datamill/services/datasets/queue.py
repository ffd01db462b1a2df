"""A small pool of worker threads that processes datasets by id and re-queues unfinished ones on start."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

log = logging.getLogger(__name__)


class DatasetProcessor(Protocol):
    """A service whose datasets wait in the store until `process` finishes them."""

    def waiting(self) -> list[str]:
        """Ids of the datasets still to process (after a restart too)."""
        ...

    def process(self, dataset_id: str) -> None:
        """Process one dataset to its next state."""
        ...


class DatasetQueue:
    """Runs ``processor.process`` on a few worker threads; `start` also re-queues unfinished datasets.

    Args:
        processor: The service doing the work.
        workers: How many datasets are processed at once.
        name: The thread name prefix, and the word for the work in log lines (``ingest``, ``import``).
        resumes: What happens on the next start to a dataset queued while stopped (for the log).
    """

    def __init__(self, processor: DatasetProcessor, *, workers: int, name: str, resumes: str) -> None:
        self._processor = processor
        self._workers = workers
        self._name = name
        self._resumes = resumes
        self._pool: ThreadPoolExecutor | None = None

    def start(self) -> None:
        self._pool = ThreadPoolExecutor(self._workers, thread_name_prefix=f"datamill-{self._name}")
        for dataset_id in self._processor.waiting():
            self.submit(dataset_id)

    def submit(self, dataset_id: str) -> None:
        """Queue one dataset; after `close` it keeps its state and is picked up on the next start."""
        pool = self._pool
        try:
            if pool is None:
                raise RuntimeError("not started")
            pool.submit(self._run, dataset_id)
        except RuntimeError:  # not started, or shut down by a concurrent close
            log.warning(
                "%s is not running; dataset %s will be %s on the next start",
                self._name,
                dataset_id,
                self._resumes,
            )

    def _run(self, dataset_id: str) -> None:
        try:
            self._processor.process(dataset_id)
        except Exception:  # a worker must not die silently; the dataset stays queued for the next start
            log.exception("%s of dataset %s crashed", self._name, dataset_id)

    def close(self) -> None:
        """Finish the datasets under way and drop the queue (those datasets resume on the next start)."""
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
