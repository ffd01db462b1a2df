"""The run worker on its own, over a real SQLite store with scripted executors: claims, leases, heartbeats,
progress, outcomes and credits, stopping, lost leases and runs that keep dying."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from server_helpers import add_queued_run

from datamill.runners import BackgroundWorker, LiveRun, RunTicket, Worker
from datamill.services.tenants import TenantService
from datamill.store import Dataset, Run, Store, utcnow
from datamill.store import runs as repo
from datamill.store.ids import new_id
from datamill.store.runs import RunOutcome


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    made = Store.from_url(f"sqlite:///{tmp_path / 'db.sqlite'}")
    made.migrate()
    yield made
    made.close()


def _queue(store: Store, *, reserved: float = 10.0, total: int = 5) -> tuple[str, str]:
    """A tenant (100 credits after the reservation) with a running dataset and its queued run."""
    tenant = TenantService(store, default_credits=100.0 - reserved).create_key(new_id("t")).tenant
    with store.session() as session:
        run_id = add_queued_run(session, tenant.id, reserved=reserved, total=total)
    return tenant.id, run_id


def _run(store: Store, run_id: str) -> Run:
    with store.session() as session:
        found = repo.get_run_any_tenant(session, run_id)
        assert found is not None
        return found


def _until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def test_only_one_worker_claims_a_run_until_its_lease_lapses(store: Store) -> None:
    _, run_id = _queue(store)
    now = utcnow()
    with store.session() as session:
        first = repo.claim_next(session, "w1", now, lease_s=30)
        assert first is not None
        assert (first.id, first.worker_id, first.attempts) == (run_id, "w1", 1)
    with store.session() as session:
        assert repo.claim_next(session, "w2", now + dt.timedelta(seconds=29), lease_s=30) is None
    with store.session() as session:
        taken = repo.claim_next(session, "w2", now + dt.timedelta(seconds=31), lease_s=30)
        assert taken is not None
        assert (taken.worker_id, taken.attempts) == ("w2", 2)
    with store.session() as session:  # the first worker has lost it: nothing it writes sticks
        assert not repo.heartbeat(session, run_id, "w1", 30, {"processed_rows": 3})
        assert not repo.finish_run(session, run_id, "w1", RunOutcome("succeeded"))


async def test_a_run_is_executed_with_progress_recorded_and_credits_settled(store: Store) -> None:
    tenant_id, run_id = _queue(store, reserved=10.0)
    proceed = asyncio.Event()
    seen: list[RunTicket] = []

    async def execute(ticket: RunTicket, live: LiveRun) -> RunOutcome:
        seen.append(ticket)
        live.counters.rows_done = 3
        await proceed.wait()
        return RunOutcome("succeeded", rows_out=5, credits_used=4.0, cost_usd=0.5)

    worker = Worker(store, execute, lease_s=30, tick_s=0.02)
    attempt = asyncio.ensure_future(worker.run_once())
    while _run(store, run_id).processed_rows != 3:  # the heartbeat records progress while the run works
        await asyncio.sleep(0.02)
    assert _run(store, run_id).status == "running"
    proceed.set()
    assert await attempt is True
    run = _run(store, run_id)
    assert (run.status, run.rows_out, run.credits_used, run.cost_usd) == ("succeeded", 5, 4.0, 0.5)
    assert seen[0].id == run_id
    with store.session() as session:
        dataset = session.get(Dataset, run.dataset_id)
        assert dataset is not None
        assert dataset.status == "succeeded"
    tenant = TenantService(store).list_tenants()
    assert next(t.credits for t in tenant if t.id == tenant_id) == pytest.approx(96.0)  # 90 + the 6 unused
    assert await worker.run_once() is False  # nothing left to claim


async def test_an_executor_crash_fails_the_run(store: Store) -> None:
    _, run_id = _queue(store)

    async def execute(ticket: RunTicket, live: LiveRun) -> RunOutcome:
        raise RuntimeError("bug")

    assert await Worker(store, execute).run_once() is True
    run = _run(store, run_id)
    assert run.status == "failed"
    assert run.error_data is not None
    assert run.error_data["code"] == "E0399"


async def test_a_lost_lease_stops_the_attempt_without_an_outcome(store: Store) -> None:
    _, run_id = _queue(store)
    cancelled = asyncio.Event()

    async def execute(ticket: RunTicket, live: LiveRun) -> RunOutcome:
        with store.session() as session:  # another worker takes the run over (this one's lease lapsed)
            run = repo.get_run_any_tenant(session, ticket.id)
            assert run is not None
            run.worker_id = "someone-else"
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return RunOutcome("succeeded")

    assert await Worker(store, execute, tick_s=0.02, lease_s=0.3).run_once() is True
    assert cancelled.is_set()
    run = _run(store, run_id)
    assert (run.status, run.worker_id) == ("running", "someone-else")  # left to its new holder


async def test_a_run_that_keeps_dying_is_given_up(store: Store) -> None:
    _, run_id = _queue(store)
    with store.session() as session:  # three claims already, each ended by a crash (lease lapsed)
        run = repo.get_run_any_tenant(session, run_id)
        assert run is not None
        run.status, run.attempts, run.worker_id = "running", 3, "dead"
        run.lease_expires_at = utcnow() - dt.timedelta(seconds=1)

    async def execute(ticket: RunTicket, live: LiveRun) -> RunOutcome:
        raise AssertionError("a given-up run is not executed")

    assert await Worker(store, execute, max_attempts=3).run_once() is True
    run = _run(store, run_id)
    assert run.status == "failed"
    assert run.error_data is not None
    assert run.error_data["code"] == "E0302"


def test_stopping_the_background_worker_gives_the_run_back(store: Store) -> None:
    _, run_id = _queue(store)
    started = []

    async def execute(ticket: RunTicket, live: LiveRun) -> RunOutcome:
        started.append(ticket.id)
        await asyncio.sleep(60)
        return RunOutcome("succeeded")

    background = BackgroundWorker(Worker(store, execute, poll_s=0.05))
    background.start()
    _until(lambda: started == [run_id])
    background.close()
    run = _run(store, run_id)
    assert (run.status, run.worker_id, run.attempts) == ("queued", None, 0)


def test_a_queued_run_is_picked_up_when_the_worker_is_woken(store: Store) -> None:
    done = []

    async def execute(ticket: RunTicket, live: LiveRun) -> RunOutcome:
        done.append(ticket.id)
        return RunOutcome("succeeded")

    background = BackgroundWorker(Worker(store, execute, poll_s=30))  # polls too rarely to matter here
    background.start()
    try:
        time.sleep(0.1)  # let the first (empty) poll pass
        _, run_id = _queue(store)
        background.wake()
        _until(lambda: _run(store, run_id).status == "succeeded")
    finally:
        background.close()
    assert done == [run_id]


def _die_after(store: Store, run_id: str, worker: str, rows: int | None) -> Run | None:
    """Claim the run as `worker`, record `rows` processed (None: none), then die: the lease lapses."""
    with store.session() as session:
        claimed = repo.claim_next(session, worker, utcnow(), lease_s=30)
        if claimed is None or claimed.id != run_id:
            return claimed
        if rows is not None:
            assert repo.heartbeat(session, run_id, worker, 30, {"processed_rows": rows})
    with store.session() as session:
        run = repo.get_run_any_tenant(session, run_id)
        assert run is not None
        run.lease_expires_at = utcnow() - dt.timedelta(seconds=1)
    return claimed


async def test_worker_deaths_while_a_run_makes_progress_do_not_give_it_up(store: Store) -> None:
    """Workers killed for reasons of their own (a deploy, the OOM killer on a neighbour) while the run
    advances: the run is resumed each time, and finishes."""
    _, run_id = _queue(store, total=100)
    for attempt in range(6):
        assert _die_after(store, run_id, f"w{attempt}", rows=10 * (attempt + 1)) is not None

    async def execute(ticket: RunTicket, live: LiveRun) -> RunOutcome:
        return RunOutcome("succeeded", rows_out=100)

    assert await Worker(store, execute, max_attempts=3).run_once() is True
    assert _run(store, run_id).status == "succeeded"


async def test_a_run_that_kills_its_worker_without_progress_is_given_up_with_the_reason(store: Store) -> None:
    _, run_id = _queue(store, total=100)
    assert _die_after(store, run_id, "w0", rows=40) is not None  # progress, then a death
    for attempt in range(1, 4):  # three deaths in a row at the same row
        assert _die_after(store, run_id, f"w{attempt}", rows=None) is not None

    async def execute(ticket: RunTicket, live: LiveRun) -> RunOutcome:
        raise AssertionError("a given-up run is not executed")

    assert await Worker(store, execute, max_attempts=3).run_once() is True
    run = _run(store, run_id)
    assert run.status == "failed"
    assert run.error_data is not None
    assert run.error_data["code"] == "E0302"
    assert "3 times in a row without progress" in run.error_data["message"]
