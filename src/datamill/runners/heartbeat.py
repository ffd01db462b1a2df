"""The heartbeat of a running run: extends its lease and records its progress, from its own thread.

A thread rather than a task on the worker's event loop, because pipeline batch steps (dedup, checkpoint
writes) run on that loop and can hold it for a while; the lease must not lapse because a batch was busy.
Progress is written as soon as it changes (checked every `tick_s`), and the lease is renewed at least every
third of its length. When an update finds the run no longer held by this worker (another worker took it over
after the lease lapsed), `on_lost` is called once and the heartbeat stops.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from datamill.runners.execution import LiveRun
from datamill.store import Store
from datamill.store import runs as repo

log = logging.getLogger(__name__)


class Heartbeat:
    """Keeps one run leased while it executes; see the module docstring."""

    def __init__(
        self,
        store: Store,
        run_id: str,
        worker_id: str,
        live: LiveRun,
        *,
        lease_s: float,
        on_lost: Callable[[], None],
        tick_s: float = 0.5,
    ) -> None:
        self._store, self._run_id, self._worker_id, self._live = store, run_id, worker_id, live
        self._lease_s, self._on_lost, self._tick_s = lease_s, on_lost, tick_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"datamill-heartbeat-{run_id}", daemon=True)
        self.lost = False

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop beating (idempotent); waits for an update in progress."""
        self._stop.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join()

    def beat(self, values: dict[str, Any]) -> bool:
        """One update now; False when the run is no longer this worker's."""
        with self._store.session() as session:
            return repo.heartbeat(session, self._run_id, self._worker_id, self._lease_s, values)

    def _loop(self) -> None:
        last_values: dict[str, Any] | None = None
        last_beat = time.monotonic()
        while not self._stop.wait(self._tick_s):
            try:
                values = self._live.values()
                due = time.monotonic() - last_beat >= self._lease_s / 3
                if values == last_values and not due:
                    continue
                held = self.beat(values)
            except Exception:  # a database hiccup: keep beating, the next tick tries again
                log.warning("heartbeat of run %s failed", self._run_id, exc_info=True)
                continue
            last_values, last_beat = values, time.monotonic()
            if not held:
                self.lost = True
                log.warning("run %s: lease lost to another worker; stopping this attempt", self._run_id)
                self._on_lost()
                return
