"""Workers killed with SIGKILL at random points of several runs: no row lost or doubled, few calls repaid.

Two `datamill worker` processes and `datamill serve --no-worker` share a data dir and a database (SQLite,
then PostgreSQL), with the model routed to a fake OpenAI-compatible server in its own process (latency
0.2 s, at most `CONCURRENCY` calls at once per worker). Runs are launched through the official SDK, and a
seeded RNG repeatedly picks a moment and a worker that holds a running run, SIGKILLs it and starts it again,
keeping at least two runs unfinished so every kill lands in the middle of one, until `KILLS` kills are done.

Then: every run succeeded; each run's download holds every input row exactly once, in input order; every row
was answered by the model (distinct requests = rows); and the requests answered more than once ("paid
twice") are at most ``CONCURRENCY * kills``, and at most the calls the model had in flight just before the
kills (plus one per kill for a call sent between that reading and the kill). A killed worker loses only the
answers of the calls it had in flight, because every finished batch is checkpointed and every reply is in
the response cache before the call returns (``DATAMILL_CACHE_COMMIT_EVERY=1``).
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from pathlib import Path

import adaption
import pytest
from fleet_helpers import Fleet, fake_model, fleet_env, write_routes
from pg_helpers import KINDS, database_url
from server_helpers import wait_for, write_rows

from datamill.services.tenants import TenantService
from datamill.store import Store

KILLS = 12
CONCURRENCY = 4
ROWS = 40
MAPPING = {"prompt": "question", "completion": "answer"}
RECIPES = {"recipes": {"prompt_rephrase": False, "deduplication": False}}


def _rows(run: int) -> list[dict[str, object]]:
    ids = [run * 1000 + i for i in range(ROWS)]
    return [{"id": n, "question": f"Run {run}: what is {n} squared?", "answer": "?"} for n in ids]


def _launch(client: adaption.Adaption, tmp_path: Path, run: int) -> str:
    done = client.datasets.upload_file(write_rows(tmp_path / f"run{run}.jsonl", _rows(run)))
    wait_for(client, done.dataset_id)
    client.datasets.adapt(done.dataset_id, column_mapping=MAPPING, recipe_specification=RECIPES)
    return done.dataset_id


@pytest.mark.parametrize("kind", KINDS)
def test_killed_workers_lose_no_row_and_repay_only_calls_in_flight(kind: str, tmp_path: Path) -> None:
    rng = random.Random(f"kill-9/{kind}")
    with database_url(kind, tmp_path) as url, fake_model(tmp_path / "model.log", latency_s=0.2) as model:
        store = Store.from_url(url)
        store.migrate()
        key = TenantService(store).create_key("crash").key
        store.close()
        routes = write_routes(tmp_path / "routes.yaml", model.base_url, CONCURRENCY)
        fleet = Fleet(tmp_path, url, fleet_env(routes, url, DATAMILL_RUN_BATCH_SIZE="5"))
        try:
            client = adaption.Adaption(api_key=key, base_url=fleet.serve(), max_retries=0)
            datasets = {run: _launch(client, tmp_path, run) for run in range(3)}
            for name in ("w0", "w1"):
                fleet.start(name)
            kills, in_flight_at_kills = 0, 0
            interrupted: Counter[str] = Counter()  # run id -> kills of the worker running it
            deadline = time.monotonic() + 900  # a guard against a hang: a loaded machine needs minutes
            while kills < KILLS:
                assert time.monotonic() < deadline, f"only {kills} kills landed in a run"
                time.sleep(rng.uniform(0.3, 1.2))
                fleet.check_alive()
                held = fleet.holders()
                if held:
                    run_id = rng.choice(sorted(held))
                    victim = held[run_id]
                    interrupted[run_id] += 1
                    in_flight_at_kills += model.stats()["in_flight"]
                    fleet.kill(victim)
                    fleet.start(victim)
                    kills += 1
                if sum(r.status in ("queued", "running") for r in fleet.runs()) < 2:
                    datasets[len(datasets)] = _launch(client, tmp_path, len(datasets))
            runs = fleet.wait_all_finished(120)
            assert {r.status for r in runs} == {"succeeded"}, fleet.log("w0") + fleet.log("w1")
            for run, dataset_id in datasets.items():
                lines = client.datasets.download(dataset_id, file_format="jsonl").text().splitlines()
                ids = [int(json.loads(line)["id"]) for line in lines]
                assert ids == [row["id"] for row in _rows(run)]  # every row once, in input order
            client.close()
        finally:
            fleet.close()
        stats = model.stats()
    print(f"{kind}: {len(runs)} runs, kills per run {dict(interrupted)}, model stats {stats}")
    print(f"{kind}: requests in flight at the model (all workers) at the kills: {in_flight_at_kills}")
    # Every kill hit a worker while it ran a run, and more than one run was interrupted.
    assert sum(interrupted.values()) == KILLS
    assert len(interrupted) >= 2
    assert stats["distinct_paid"] == ROWS * len(datasets)  # every row's call was answered
    assert set(stats["statuses"]) == {"200"}
    assert stats["paid_twice"] <= CONCURRENCY * kills
    # Tighter: what the model had in flight just before each kill (all workers' calls; one more per kill
    # for a call sent between the reading and the kill).
    assert stats["paid_twice"] <= in_flight_at_kills + kills
