"""Several workers share one queue: every run is executed exactly once and none is lost.

Three `Worker`s, each with its own `Store` (its own connection pool, as separate processes have) and its own
event loop on a thread, drain 20 queued runs with a counting executor. The first run each worker takes waits
at a barrier until all three hold one, so the claims really are concurrent. Runs on PostgreSQL (where claims
use ``FOR UPDATE SKIP LOCKED``) and, as the same contract, on SQLite; a last test shows on PostgreSQL that a
claim passes over a run another worker is in the middle of claiming instead of waiting for it. A run whose
worker died (its lease lapsed) is taken over by another worker.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from pg_helpers import KINDS, database_url
from server_helpers import add_queued_run
from sqlalchemy import select, text

from datamill.runners import LiveRun, RunExecutor, RunTicket, Worker
from datamill.services.tenants import TenantService
from datamill.store import Run, Store, utcnow
from datamill.store import runs as runs_repo
from datamill.store.runs import RunOutcome

RUNS = 20
WORKERS = 3


@pytest.fixture(params=KINDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with database_url(str(request.param), tmp_path) as url:
        store = Store.from_url(url)
        store.migrate()
        store.close()
        yield url


def _queue(store: Store, count: int) -> list[str]:
    """`count` queued runs of one tenant, each on a dataset of its own; their ids, oldest first."""
    tenant_id = TenantService(store).create_key("fleet").tenant.id
    with store.session() as session:
        return [add_queued_run(session, tenant_id) for _ in range(count)]


class CountingExecutor:
    """Counts executions per run and per worker; each worker's first run waits until all hold one."""

    def __init__(self, workers: int) -> None:
        self.runs: Counter[str] = Counter()
        self.by_worker: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._together = threading.Barrier(workers)

    def for_worker(self, name: str) -> RunExecutor:
        async def execute(ticket: RunTicket, live: LiveRun) -> RunOutcome:
            with self._lock:
                self.runs[ticket.id] += 1
                self.by_worker[name] += 1
                first = self.by_worker[name] == 1
            if first:  # off the loop, so this worker's heartbeat keeps the lease meanwhile
                await asyncio.to_thread(self._together.wait, 30)
            live.counters.rows_done = rows = ticket.total_rows or 0
            await asyncio.sleep(0)
            return RunOutcome("succeeded", rows_out=rows)

        return execute


def _drain(url: str, name: str, executor: CountingExecutor, errors: list[BaseException]) -> None:
    """One worker process' worth: its own store and loop, claiming until the queue is empty."""
    store = Store.from_url(url)
    worker = Worker(store, executor.for_worker(name), lease_s=30, tick_s=0.05, worker_id=name)

    async def work() -> None:
        while await worker.run_once():
            pass

    try:
        asyncio.run(work())
    except BaseException as exc:  # surfaced by the test thread, which can fail the test
        errors.append(exc)
    finally:
        store.close()


def test_workers_share_one_queue_with_no_run_twice_and_none_lost(db_url: str) -> None:
    store = Store.from_url(db_url)
    try:
        queued = _queue(store, RUNS)
        executor = CountingExecutor(WORKERS)
        errors: list[BaseException] = []
        threads = [
            threading.Thread(target=_drain, args=(db_url, f"w{i}", executor, errors)) for i in range(WORKERS)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        assert errors == []
        assert executor.runs == Counter(dict.fromkeys(queued, 1))  # every run exactly once
        assert set(executor.by_worker) == {f"w{i}" for i in range(WORKERS)}  # all took part
        with store.session() as session:
            rows = session.execute(select(Run.id, Run.status, Run.attempts, Run.worker_id)).all()
        assert sorted(r.id for r in rows) == sorted(queued)
        assert {(r.status, r.attempts) for r in rows} == {("succeeded", 1)}
        assert Counter(r.worker_id for r in rows) == executor.by_worker
    finally:
        store.close()


async def test_a_dead_workers_run_is_taken_over_when_its_lease_lapses(db_url: str) -> None:
    store = Store.from_url(db_url)
    try:
        (run_id,) = _queue(store, 1)
        with store.session() as session:  # claimed a minute ago by a worker that has died since
            dead = runs_repo.claim_next(session, "dead", utcnow() - dt.timedelta(seconds=60), lease_s=1)
            assert dead is not None
        executor = CountingExecutor(1)
        assert await Worker(store, executor.for_worker("alive"), worker_id="alive").run_once() is True
        assert executor.runs == Counter({run_id: 1})
        with store.session() as session:
            run = runs_repo.get_run_any_tenant(session, run_id)
            assert run is not None
            assert (run.status, run.worker_id, run.attempts) == ("succeeded", "alive", 2)
    finally:
        store.close()


def test_on_postgresql_a_claim_skips_a_run_another_worker_is_claiming(tmp_path: Path) -> None:
    with database_url("postgresql", tmp_path) as url:
        store = Store.from_url(url)
        try:
            store.migrate()
            first, second = _queue(store, 2)
            with store.session() as holding:
                held = runs_repo.claim_next(holding, "w1", utcnow(), lease_s=30)
                assert held is not None
                assert held.id == first
                with store.session() as other:  # w1 has not committed: its row is locked, not yet "running"
                    other.execute(text("SET LOCAL lock_timeout = '5s'"))  # fail, not hang, if it would wait
                    taken = runs_repo.claim_next(other, "w2", utcnow(), lease_s=30)
                    assert taken is not None
                    assert taken.id == second
        finally:
            store.close()
