"""The Ray executor on a local Ray instance the tests start: the same rows as the local executor, and resume.

A run's batches go to Ray actors, each planning the run on its own gateway with the deterministic fake model;
the output matches the local executor's row for row. A run whose first batches were checkpointed by an
interrupted attempt resumes on Ray: the saved batches are skipped, the rest are saved by the actors, and the
result is again the same. Actors that do not see the worker's input file, with a data dir of their own,
read the dataset from the database and a blob store they know only by URL, and give the same rows. Through a
worker (`DATAMILL_EXECUTOR=ray` in its settings), a run launched with
the official SDK executes on the actors and downloads with the same rows as one executed locally.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")

from adapt_helpers import BATCH, BATCHES, MODEL, REQUEST, ROWS, SETTINGS, execute, write_input  # noqa: E402

from datamill.services.adaptation.prepare import RunSource  # noqa: E402
from datamill.services.adaptation.ray_actors import ActorInput  # noqa: E402
from datamill.services.settings.runs import RunSettings  # noqa: E402


@pytest.fixture(scope="module", autouse=True)
def local_ray() -> Iterator[None]:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


async def test_a_run_on_ray_actors_gives_the_local_executors_rows(tmp_path: Path) -> None:
    source = write_input(tmp_path)
    local, _, _ = await execute(source, tmp_path / "data", tmp_path / "local")
    on_ray, _, sent = await execute(source, tmp_path / "data", tmp_path / "ray", ray_actors=2)
    assert sent == BATCHES
    assert 99 not in {r["id"] for r in local}  # dedup, a batch step on the worker, dropped the duplicate
    assert [r["_row"] for r in local] == [r["_row"] for r in on_ray]
    assert local == on_ray
    assert all(r["enhanced_completion"] for r in on_ray)


async def test_a_resumed_run_on_ray_skips_the_saved_batches(tmp_path: Path) -> None:
    source = write_input(tmp_path)
    local, _, _ = await execute(source, tmp_path / "data", tmp_path / "local")
    root = tmp_path / "ray"
    await execute(source, tmp_path / "data", root, batches=3)  # an attempt that stopped early
    saved = {p.name: p.stat().st_mtime_ns for p in (root / "parts").glob("*.parquet")}
    assert len(saved) == 3
    on_ray, resumed, sent = await execute(source, tmp_path / "data", root, ray_actors=2)
    assert (resumed, sent) == (3, BATCHES - 3)
    assert {
        p.name: p.stat().st_mtime_ns for p in (root / "parts").glob("*.parquet") if p.name in saved
    } == saved
    assert on_ray == local


def _dataset_in(tmp_path: Path, source: RunSource) -> tuple[str, str, str]:
    """`source` as a dataset's one file, in a database and a blob dir of their own: the ids and URLs."""
    from datamill.services.tenants import TenantService
    from datamill.store import Store
    from datamill.store.datasets import StoredFile, add_dataset_with_file

    database_url = f"sqlite:///{tmp_path / 'metadata.db'}"
    blob_dir = tmp_path / "cluster-blobs"
    (blob_dir / "uploads").mkdir(parents=True)
    (blob_dir / "uploads" / "qa.jsonl").write_bytes(source.path.read_bytes())
    store = Store.from_url(database_url)
    try:
        store.migrate()
        tenant_id = TenantService(store).create_key("ray").tenant.id
        with store.session() as session:
            dataset = add_dataset_with_file(
                session,
                tenant_id=tenant_id,
                name="qa",
                file=StoredFile(
                    "qa.jsonl", "jsonl", "uploads/qa.jsonl", source.path.stat().st_size, "0" * 64
                ),
                status="succeeded",
                ingest_state="ready",
            )
        return dataset.id, database_url, str(blob_dir)
    finally:
        store.close()


async def test_actors_without_the_workers_files_read_the_dataset_by_url(tmp_path: Path) -> None:
    source = write_input(tmp_path)
    local, _, _ = await execute(source, tmp_path / "data", tmp_path / "local")
    dataset_id, database_url, blob_url = _dataset_in(tmp_path, source)
    elsewhere = RunSource(tmp_path / "worker-node" / "data" / "inputs" / "qa.jsonl", "jsonl")
    assert not elsewhere.path.exists()
    actor_data = tmp_path / "actor-node"
    on_ray, _, sent = await execute(
        source,
        tmp_path / "data",
        tmp_path / "ray",
        ray_actors=2,
        actor_input=ActorInput(elsewhere, dataset_id, database_url, blob_url),
        actor_data_dir=actor_data,
    )
    assert sent == BATCHES
    assert on_ray == local
    assert not (tmp_path / "worker-node").exists()
    # The actors kept their response cache in their own data dir; the driver keeps none.
    assert SETTINGS.llm_settings(actor_data).cache_path.is_file()
    assert not SETTINGS.llm_settings(tmp_path / "data").cache_path.exists()


def test_a_worker_with_the_ray_executor_runs_a_launched_run_on_the_actors(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import adaption
    from fleet_helpers import Fleet
    from server_helpers import wait_for, write_rows

    from datamill.services.tenants import TenantService
    from datamill.services.wiring import RunServices
    from datamill.store import Store, blob_store_from_url

    data_dir = tmp_path / "data"
    url = f"sqlite:///{data_dir / 'datamill.db'}"
    store = Store.from_url(url)
    store.migrate()
    key = TenantService(store).create_key("ray").key
    env = os.environ | {"DATAMILL_MODEL": MODEL, "DATAMILL_RUN_EVALUATE": "0", "DATAMILL_RUN_BATCH_SIZE": "4"}
    fleet = Fleet(tmp_path, url, env)
    try:
        client = adaption.Adaption(api_key=key, base_url=fleet.serve(), max_retries=0)
        rows = [{"id": i, "question": f"Why is sample {i} blue?", "answer": "?"} for i in range(ROWS)]
        datasets = []
        for name in ("local", "ray"):
            dataset_id = client.datasets.upload_file(write_rows(tmp_path / f"{name}.jsonl", rows)).dataset_id
            wait_for(client, dataset_id)
            client.datasets.adapt(dataset_id, column_mapping=REQUEST["column_mapping"])
            datasets.append(dataset_id)
        blobs = blob_store_from_url(str(data_dir / "blobs"))
        caplog.set_level(logging.INFO, logger="datamill.services.jobs.adaptation")
        for executor in ("local", "ray"):  # the runs are claimed oldest first
            settings = RunSettings(model=MODEL, batch_size=BATCH, evaluate=False, executor=executor)
            worker = RunServices.build(store, blobs, settings, data_dir).worker.worker
            assert asyncio.run(worker.run_once())
        outputs = [client.datasets.download(d, file_format="jsonl").text().splitlines() for d in datasets]
        statuses = [client.datasets.get_status(d).status for d in datasets]
        client.close()
    finally:
        fleet.close()
        store.close()
    assert statuses == ["succeeded", "succeeded"]
    on_ray = [r.getMessage() for r in caplog.records if "on Ray actors" in r.getMessage()]
    assert len(on_ray) == 1  # the second run only
    assert on_ray[0].endswith(": 8 batches executed on Ray actors")
    assert len(outputs[0]) == ROWS
    assert outputs[0] == outputs[1]
