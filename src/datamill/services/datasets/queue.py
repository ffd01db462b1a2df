"""A small pool of worker threads that processes datasets by id, fairly between tenants.

Datasets wait in one queue per tenant. A free worker takes the oldest waiting dataset of the tenant with the
fewest datasets being processed right now (ties go to the tenant whose waiting dataset was queued first),
and one tenant never holds more than its share of the workers (``max_per_tenant``; by default all workers
but one, and with one worker that one): a worker always stays free for the other tenants. So one tenant's
many or slow files never keep another tenant's small file waiting behind them; they wait behind each other
instead. Within a tenant, datasets are processed in the order they were queued. On start, the datasets left
unfinished by a stop or a crash are queued again.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections import deque
from typing import Protocol

log = logging.getLogger(__name__)


class DatasetProcessor(Protocol):
    """A service whose datasets wait in the store until `process` finishes them."""

    def waiting(self) -> list[str]:
        """Ids of the datasets still to process (after a restart too)."""
        ...

    def tenant_of(self, dataset_id: str) -> str | None:
        """The tenant a dataset belongs to (None when it is gone): the unit of fair scheduling."""
        ...

    def process(self, dataset_id: str) -> None:
        """Process one dataset to its next state."""
        ...


class FairQueue:
    """Dataset ids queued per tenant; `take` answers the next one by the rule in the module docstring.

    Args:
        max_per_tenant: the most datasets of one tenant processed at once.

    Not thread-safe on its own: `DatasetQueue` calls it under its lock.
    """

    def __init__(self, max_per_tenant: int) -> None:
        self.max_per_tenant = max(1, max_per_tenant)
        self._waiting: dict[str, deque[tuple[int, str]]] = {}
        self._running: dict[str, int] = {}
        self._order = itertools.count()

    def __len__(self) -> int:
        return sum(len(q) for q in self._waiting.values())

    def put(self, tenant: str, dataset_id: str) -> None:
        self._waiting.setdefault(tenant, deque()).append((next(self._order), dataset_id))

    def take(self) -> tuple[str, str] | None:
        """The next (tenant, dataset id), now counted as running for its tenant.

        None when nothing waits, or only datasets of tenants already at `max_per_tenant`.
        """
        ready = [t for t in self._waiting if self._running.get(t, 0) < self.max_per_tenant]
        if not ready:
            return None
        tenant = min(ready, key=lambda t: (self._running.get(t, 0), self._waiting[t][0][0]))
        queue = self._waiting[tenant]
        _, dataset_id = queue.popleft()
        if not queue:
            del self._waiting[tenant]
        self._running[tenant] = self._running.get(tenant, 0) + 1
        return tenant, dataset_id

    def done(self, tenant: str) -> None:
        """One of `tenant`'s datasets has finished."""
        left = self._running.get(tenant, 0) - 1
        if left > 0:
            self._running[tenant] = left
        else:
            self._running.pop(tenant, None)

    def clear(self) -> None:
        self._waiting.clear()


class DatasetQueue:
    """Runs ``processor.process`` on a few worker threads, fairly between tenants (module docstring).

    Args:
        processor: The service doing the work.
        workers: How many datasets are processed at once.
        name: The thread name prefix, and the word for the work in log lines (``ingest``, ``import``).
        resumes: What happens on the next start to a dataset queued while stopped (for the log).
        max_per_tenant: The most workers one tenant's datasets hold at once; None: all workers but one.
    """

    def __init__(
        self,
        processor: DatasetProcessor,
        *,
        workers: int,
        name: str,
        resumes: str,
        max_per_tenant: int | None = None,
    ) -> None:
        self._processor = processor
        self._workers = max(1, workers)
        self._name = name
        self._resumes = resumes
        share = self._workers - 1 if max_per_tenant is None else max_per_tenant
        self._queue = FairQueue(max_per_tenant=min(share, self._workers))
        self._cond = threading.Condition()
        self._threads: list[threading.Thread] = []
        self._open = False

    def start(self) -> None:
        with self._cond:
            self._open = True
        self._threads = [
            threading.Thread(target=self._work, name=f"datamill-{self._name}-{n}", daemon=True)
            for n in range(self._workers)
        ]
        for thread in self._threads:
            thread.start()
        for dataset_id in self._processor.waiting():
            self.submit(dataset_id)

    def submit(self, dataset_id: str) -> None:
        """Queue one dataset; after `close` it keeps its state and is picked up on the next start."""
        if not self._open:
            self._not_running(dataset_id)
            return
        try:
            tenant = self._processor.tenant_of(dataset_id)
        except Exception:  # the dataset stays queued in the store and is picked up on the next start
            log.exception("%s: cannot queue dataset %s", self._name, dataset_id)
            return
        if tenant is None:
            return  # deleted meanwhile: nothing to do
        with self._cond:
            if not self._open:
                self._not_running(dataset_id)
                return
            self._queue.put(tenant, dataset_id)
            self._cond.notify()

    def _not_running(self, dataset_id: str) -> None:
        log.warning(
            "%s is not running; dataset %s will be %s on the next start",
            self._name,
            dataset_id,
            self._resumes,
        )

    def _work(self) -> None:
        while True:
            with self._cond:
                taken = self._queue.take()
                while taken is None and self._open:
                    self._cond.wait()
                    taken = self._queue.take()
                if taken is None:
                    return
            tenant, dataset_id = taken
            try:
                self._processor.process(dataset_id)
            except Exception:  # a worker must not die silently; the dataset stays queued for the next start
                log.exception("%s of dataset %s crashed", self._name, dataset_id)
            finally:
                with self._cond:
                    self._queue.done(tenant)
                    self._cond.notify_all()  # a tenant under its cap again may have datasets waiting

    def close(self) -> None:
        """Finish the datasets under way and drop the queue (those datasets resume on the next start)."""
        with self._cond:
            self._open = False
            self._queue.clear()
            self._cond.notify_all()
        threads, self._threads = self._threads, []
        for thread in threads:
            thread.join()
