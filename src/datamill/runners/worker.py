"""The worker loop: claim a run, execute it under a heartbeat, record how it ended; then the next one.

`Worker.run` claims runs one at a time (the rows inside a run are what runs concurrently), waiting
`poll_s` between empty polls unless woken (a launch wakes it at once). A claimed run is executed by the
injected `RunExecutor` while a `Heartbeat` keeps its lease; then `finish_run` records the outcome, settles
the credits and the dataset, in one transaction, and only if this worker still holds the lease.

Stopping is safe at any point: the run being executed is cancelled and `release`d back to the queue (the
attempt is not counted), and resumes from its checkpoint on the next start. A worker that dies without
releasing (a kill, a crash) leaves the lease to lapse; after `lease_s` another worker, or this server
started again, claims the run and resumes it. A run claimed more than `max_attempts` times in a row without
making progress (it keeps killing its worker at the same point) is failed with code ``E0302`` and a reason
saying so, instead of being tried again; a claim after the run processed rows starts the count again, so
worker deaths the run did not cause (a deploy, a neighbour's out-of-memory kill) never use it up.

`BackgroundWorker` runs a `Worker` on a thread of its own with its own event loop, so a run's batch work
never competes with the HTTP server's loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import threading

from datamill.core.error_codes import ErrorCode, error_data
from datamill.llm import event_loop
from datamill.runners.execution import LiveRun, RunExecutor, RunTicket
from datamill.runners.heartbeat import Heartbeat
from datamill.store import Store, utcnow
from datamill.store import runs as repo
from datamill.store.runs import RunOutcome

log = logging.getLogger(__name__)


def default_worker_id() -> str:
    """Host, process and a random part: unique among the workers sharing one database."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


class Worker:
    """Claims and executes runs from one `Store`; see the module docstring.

    Args:
        store: the metadata database.
        execute: what executing a run means.
        lease_s: seconds a claim lasts without a heartbeat.
        poll_s: seconds between polls when the queue is empty.
        max_attempts: claims in a row without progress a run gets before it is failed.
        tick_s: how often the heartbeat checks for progress to record.
        worker_id: this worker's identity in the ``runs`` table; made up when None.
    """

    def __init__(
        self,
        store: Store,
        execute: RunExecutor,
        *,
        lease_s: float = 30.0,
        poll_s: float = 1.0,
        max_attempts: int = 3,
        tick_s: float = 0.5,
        worker_id: str | None = None,
    ) -> None:
        self._store, self._execute = store, execute
        self.lease_s, self.poll_s, self.max_attempts, self.tick_s = lease_s, poll_s, max_attempts, tick_s
        self.worker_id = worker_id or default_worker_id()

    async def run(self, stop: asyncio.Event, wake: asyncio.Event) -> None:
        """Work until `stop` is set; `wake` cuts an idle wait short."""
        while not stop.is_set():
            try:
                worked = await self.run_once()
            except Exception:  # the loop must survive a database hiccup; the next poll tries again
                log.exception("worker %s: claiming or finishing a run failed", self.worker_id)
                worked = False
            if worked:
                continue
            waits = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(wake.wait())]
            try:
                await asyncio.wait(waits, timeout=self.poll_s, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiter in waits:
                    waiter.cancel()
            wake.clear()

    async def run_once(self) -> bool:
        """Claim and execute one run; False when there was none to claim."""
        with self._store.session() as session:
            run = repo.claim_next(session, self.worker_id, utcnow(), self.lease_s)
            ticket = RunTicket.of(run) if run is not None else None
        if ticket is None:
            return False
        log.info("worker %s: run %s, attempt %d", self.worker_id, ticket.id, ticket.attempts)
        if ticket.attempts > self.max_attempts:
            message = (
                f"the run's worker stopped {self.max_attempts} times in a row without progress (killed, out "
                "of memory or crashed at the same point each time); the run was given up"
            )
            self._finish(ticket, RunOutcome("failed", error_data=error_data(ErrorCode.GIVEN_UP, message)))
            return True
        outcome = await self._attempt(ticket)
        if outcome is not None:
            self._finish(ticket, outcome)
        return True

    async def _attempt(self, ticket: RunTicket) -> RunOutcome | None:
        """Execute under a heartbeat; None when the lease was lost (the new holder finishes the run)."""
        live = LiveRun(total_rows=ticket.total_rows)
        task = asyncio.ensure_future(self._execute(ticket, live))
        loop = asyncio.get_running_loop()

        def cancel() -> None:
            with contextlib.suppress(RuntimeError):  # the loop has closed: the attempt is over anyway
                loop.call_soon_threadsafe(task.cancel)

        beat = Heartbeat(
            self._store,
            ticket.id,
            self.worker_id,
            live,
            lease_s=self.lease_s,
            on_lost=cancel,
            tick_s=self.tick_s,
        )
        beat.start()
        try:
            outcome = await task
        except asyncio.CancelledError:
            beat.stop()
            if beat.lost and not _cancelling():
                return None
            self._release(ticket)
            raise
        except Exception:
            log.exception("run %s crashed", ticket.id)
            outcome = RunOutcome(
                "failed", error_data=error_data(ErrorCode.INTERNAL, "internal error; see the server log")
            )
        finally:
            beat.stop()
        with contextlib.suppress(Exception):  # the final progress is a nicety; the outcome is what counts
            beat.beat(live.values())
        return outcome

    def _finish(self, ticket: RunTicket, outcome: RunOutcome) -> None:
        with self._store.session() as session:
            if not repo.finish_run(session, ticket.id, self.worker_id, outcome):
                log.warning("run %s: lease lost before its outcome was recorded", ticket.id)
                return
        log.info("run %s %s (%d rows out)", ticket.id, outcome.status, outcome.rows_out)

    def _release(self, ticket: RunTicket) -> None:
        try:
            with self._store.session() as session:
                repo.release(session, ticket.id, self.worker_id)
        except Exception:  # stopping anyway; the lease lapses and the run is claimed again later
            log.warning("run %s could not be released", ticket.id, exc_info=True)


def _cancelling() -> bool:
    """Whether the current task itself is being cancelled (a stop), not just the run it awaited."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


class BackgroundWorker:
    """A `Worker` on its own thread and event loop, for the server's lifespan."""

    def __init__(self, worker: Worker, *, loop: str = "auto") -> None:
        self.worker = worker
        self._loop_choice = loop
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None
        self._ready = threading.Event()

    def start(self) -> None:
        """Start the thread; returns once its loop is ready to take wake-ups."""
        self._thread = threading.Thread(target=self._main, name="datamill-worker", daemon=True)
        self._thread.start()
        self._ready.wait(10)

    def _main(self) -> None:
        event_loop.run(self._serve(), self._loop_choice)

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._task = asyncio.ensure_future(self.worker.run(asyncio.Event(), self._wake))
        self._ready.set()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    def wake(self) -> None:
        """Claim now rather than at the next poll (a run was just queued); harmless when not started."""
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed in between
                loop.call_soon_threadsafe(wake.set)

    def close(self, timeout: float = 30.0) -> None:
        """Stop: the run in progress is given back to the queue; returns when the thread has ended."""
        loop, task, thread = self._loop, self._task, self._thread
        if loop is not None and task is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(task.cancel)
        if thread is not None:
            thread.join(timeout)
        self._thread = self._loop = self._task = None
