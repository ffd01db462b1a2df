"""The Ray executor on a local Ray instance the tests start: the same rows as the local executor, and resume.

A run's batches go to Ray actors, each planning the run on its own gateway with the deterministic fake model;
the output matches the local executor's row for row. A run whose first batches were checkpointed by an
interrupted attempt resumes on Ray: the saved batches are skipped, the rest are saved by the actors, and the
result is again the same. Through a worker (`DATAMILL_EXECUTOR=ray` in its settings), a run launched with
the official SDK executes on the actors and downloads with the same rows as one executed locally.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import os
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

ray = pytest.importorskip("ray")

from datamill.api.adapt import make_gateway  # noqa: E402
from datamill.api.runs_plans import prepare_run, run_job  # noqa: E402
from datamill.api.runs_ray import actor_plan  # noqa: E402
from datamill.api.runs_settings import RunSettings  # noqa: E402
from datamill.dataio import open_dataset  # noqa: E402
from datamill.pipelines.adapt import run_adaptation  # noqa: E402
from datamill.pipelines.checkpoint import DirectoryCheckpoint  # noqa: E402
from datamill.runners.inputs import RunInput  # noqa: E402
from datamill.runners.ray_executor import RayBatchRunners  # noqa: E402

MODEL = "fake/test-model"
ROWS = 30
BATCH = 4
BATCHES = 8  # 31 input rows in batches of 4
REQUEST: dict[str, Any] = {
    "column_mapping": {"prompt": "question", "completion": "answer"},
    "recipe_specification": {"recipes": {"prompt_rephrase": True, "deduplication": True}},
}


@pytest.fixture(scope="module", autouse=True)
def local_ray() -> Iterator[None]:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def _input(tmp_path: Path) -> RunInput:
    path = tmp_path / "qa.jsonl"
    rows = [
        {"id": i, "question": f"Question {i}: how do I reset device {i % 7}?", "answer": "?"}
        for i in range(ROWS)
    ]
    rows.append(dict(rows[3]) | {"id": 99})  # an exact duplicate: dedup (a batch step) drops it
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return RunInput(path, "jsonl")


def _settings() -> RunSettings:
    return RunSettings(model=MODEL, batch_size=BATCH, evaluate=False)


async def _execute(
    source: RunInput,
    settings: RunSettings,
    data_dir: Path,
    root: Path,
    *,
    ray_actors: int = 0,
    batches: int | None = None,
) -> tuple[list[dict[str, Any]], int, int]:
    """Plan and run over `source` into `root`; its output rows, resumed batches and batches sent to Ray."""
    llm = settings.llm_settings(data_dir)
    gateway = make_gateway(llm, use_cache=False)
    options = settings.run_options()
    job = run_job(source, MODEL, options)
    runners = None
    try:
        prepared = await prepare_run("adapt", job, REQUEST, llm, gateway)
        checkpoint = DirectoryCheckpoint(root, "fingerprint")
        if ray_actors:
            plan = partial(
                actor_plan, "adapt", source, MODEL, _options(options), REQUEST, settings, data_dir, None
            )
            runners = RayBatchRunners(
                plan, partial(DirectoryCheckpoint, root, "fingerprint"), actors=ray_actors
            )
        with open_dataset(source.path, format=source.format, batch_size=BATCH) as reader:
            stream = itertools.islice(reader, batches) if batches is not None else reader
            result = await run_adaptation(stream, prepared.plan, checkpoint, batch_runner=runners)
    finally:
        if runners is not None:
            await runners.aclose()
        await gateway.aclose()
    rows = pa.concat_tables(checkpoint.iter_output(internal=True)).to_pylist()
    return rows, result.batches_resumed, runners.batches if runners is not None else 0


def _options(options: Any) -> dict[str, Any]:
    from datamill.api.runs_plans import options_to_dict

    return options_to_dict(options)


async def test_a_run_on_ray_actors_gives_the_local_executors_rows(tmp_path: Path) -> None:
    source, settings = _input(tmp_path), _settings()
    local, _, _ = await _execute(source, settings, tmp_path / "data", tmp_path / "local")
    on_ray, _, sent = await _execute(source, settings, tmp_path / "data", tmp_path / "ray", ray_actors=2)
    assert sent == BATCHES
    assert 99 not in {r["id"] for r in local}  # dedup, a batch step on the worker, dropped the duplicate
    assert [r["_row"] for r in local] == [r["_row"] for r in on_ray]
    assert local == on_ray
    assert all(r["enhanced_completion"] for r in on_ray)


async def test_a_resumed_run_on_ray_skips_the_saved_batches(tmp_path: Path) -> None:
    source, settings = _input(tmp_path), _settings()
    local, _, _ = await _execute(source, settings, tmp_path / "data", tmp_path / "local")
    root = tmp_path / "ray"
    await _execute(source, settings, tmp_path / "data", root, batches=3)  # an attempt that stopped early
    saved = {p.name: p.stat().st_mtime_ns for p in (root / "parts").glob("*.parquet")}
    assert len(saved) == 3
    on_ray, resumed, sent = await _execute(source, settings, tmp_path / "data", root, ray_actors=2)
    assert (resumed, sent) == (3, BATCHES - 3)
    assert {
        p.name: p.stat().st_mtime_ns for p in (root / "parts").glob("*.parquet") if p.name in saved
    } == saved
    assert on_ray == local


def test_a_worker_with_the_ray_executor_runs_a_launched_run_on_the_actors(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import adaption
    from fleet_helpers import Fleet
    from server_helpers import wait_for, write_rows

    from datamill.api.runs_wiring import RunServices
    from datamill.api.tenants import TenantService
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
        caplog.set_level(logging.INFO, logger="datamill.api.runs_execute")
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
