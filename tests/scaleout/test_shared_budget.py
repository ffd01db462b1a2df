"""A concurrency budget shared by several worker processes keeps a provider's limit for the fleet.

In the database (SQLite and PostgreSQL): holders never hold more than the limit together, each gets at most
its fair share, a holder's slots come back when it releases them or when its lease lapses (a dead worker).
In one process: gateways' `SharedSlots` never let more calls than the limit run at once. Across processes:
three `datamill worker` processes with ``DATAMILL_SHARED_CONCURRENCY=1``, each running a run at the same time
against a fake model that answers 429 above `LIMIT` requests in flight, never pass `LIMIT` and get no 429;
without the budget, the same fleet passes it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import adaption
import pytest
from fleet_helpers import Fleet, fake_model, fleet_env, write_routes
from pg_helpers import KINDS, database_url, migrated_store
from server_helpers import wait_for, write_rows

from datamill.llm.limits.shared import InMemoryConcurrencyBudget, SharedSlots
from datamill.services.tenants import TenantService
from datamill.store import Store
from datamill.store.budget import DatabaseConcurrencyBudget

LIMIT = 4


@pytest.fixture(params=KINDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    with migrated_store(str(request.param), tmp_path) as made:
        yield made


def test_database_budget_grants_at_most_the_limit_and_fair_shares(store: Store) -> None:
    budget = DatabaseConcurrencyBudget(store, owner="w1", ttl_s=30)
    try:
        first = budget.acquire("k", "a", 10, 16)
        assert (first.slots, first.share) == (10, 10)  # alone: the whole limit
        second = budget.acquire("k", "b", 10, 16)
        assert (second.slots, second.share) == (0, 5)  # nothing free; its fair share is half
        budget.release("k", "a", 6)  # a gives back what it does not use
        assert budget.acquire("k", "b", 10, 16).slots == 5  # b takes up to its share
        assert budget.acquire("k", "a", 10, 16).slots == 1  # a has 4, its share is 5
        assert budget.acquire("other", "a", 3, 16).slots == 3  # keys are independent
    finally:
        budget.close()
    fresh = DatabaseConcurrencyBudget(store, owner="w2", ttl_s=30)
    try:
        assert fresh.acquire("k", "c", 10, 16).slots == 10  # close gave everything back
    finally:
        fresh.close()


def test_a_dead_holders_slots_lapse(store: Store) -> None:
    dead = DatabaseConcurrencyBudget(store, owner="dead", ttl_s=0.5)
    assert dead.acquire("k", "a", 4, 4).slots == 4
    dead._stop.set()  # the process is gone: nothing renews its slots
    alive = DatabaseConcurrencyBudget(store, owner="alive", ttl_s=30)
    try:
        assert alive.acquire("k", "b", 4, 4).slots == 0
        time.sleep(2.0)
        assert alive.acquire("k", "b", 4, 4).slots == 4
    finally:
        alive.close()


async def test_shared_slots_of_several_gateways_never_pass_the_limit() -> None:
    budget = InMemoryConcurrencyBudget()
    holders = [SharedSlots(budget, "k", LIMIT, block=2, idle_s=0.01, retry_s=0.005) for _ in range(3)]
    running, peak, done = 0, 0, 0

    async def call(slots: SharedSlots) -> None:
        nonlocal running, peak, done
        await slots.acquire()
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.002)
        running -= 1
        done += 1
        slots.release()

    await asyncio.gather(*(call(holders[i % 3]) for i in range(300)))
    assert (done, peak) == (300, LIMIT)
    await asyncio.sleep(0.05)  # idle: everything is given back
    assert budget.held("k") == 0


def _fleet_run(tmp_path: Path, url: str, shared: bool) -> dict[str, object]:
    store = Store.from_url(url)
    store.migrate()
    key = TenantService(store).create_key("budget").key
    store.close()
    with fake_model(tmp_path / "model.log", latency_s=0.3, max_concurrent=LIMIT) as model:
        routes = write_routes(tmp_path / "routes.yaml", model.base_url, LIMIT)
        env = fleet_env(routes, url, DATAMILL_SHARED_CONCURRENCY="1" if shared else "0")
        fleet = Fleet(tmp_path, url, env)
        try:
            client = adaption.Adaption(api_key=key, base_url=fleet.serve(), max_retries=0)
            datasets = []
            for run in range(3):
                rows = [{"id": i, "question": f"Run {run}, question {i}?", "answer": "?"} for i in range(24)]
                datasets.append(client.datasets.upload_file(write_rows(tmp_path / f"r{run}.jsonl", rows)))
                wait_for(client, datasets[-1].dataset_id)
            for name in ("w0", "w1", "w2"):
                fleet.start(name)
            fleet.wait_ready()
            for dataset in datasets:  # launched together, so each worker claims one
                client.datasets.adapt(
                    dataset.dataset_id,
                    column_mapping={"prompt": "question", "completion": "answer"},
                    recipe_specification={"recipes": {"prompt_rephrase": False, "deduplication": False}},
                )
            client.close()
            runs = fleet.wait_all_finished(120)
            assert {r.status for r in runs} == {"succeeded"}, fleet.log("w0")
            assert len({r.worker_id for r in runs}) == 3  # the three workers each ran one, at once
        finally:
            fleet.close()
        return model.stats()


@pytest.mark.parametrize("kind", KINDS)
def test_workers_sharing_a_budget_keep_the_providers_limit(kind: str, tmp_path: Path) -> None:
    with database_url(kind, tmp_path) as url:
        stats = _fleet_run(tmp_path, url, shared=True)
    assert stats["max_in_flight"] == LIMIT
    assert stats["statuses"] == {"200": 72}  # no 429


def test_without_the_budget_the_same_fleet_passes_the_limit(tmp_path: Path) -> None:
    stats = _fleet_run(tmp_path, f"sqlite:///{tmp_path / 'data' / 'datamill.db'}", shared=False)
    assert "429" in stats["statuses"]  # max_in_flight stops at LIMIT: the server refuses the rest
