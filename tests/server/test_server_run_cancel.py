"""Cancelling an adaptation run (`datamill.services.adaptation.cancel`): the worker stops, the dataset is
failed with
E0304, the finished rows stay downloadable, the unused credits come back; and what cannot be cancelled."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from runs_helpers import (
    LOOP_MODEL,
    MAPPING,
    loopback_model,
    qa_rows,
    run_settings,
    runs_server,
    upload,
    wait_done,
    write_routes,
)

from conftest import RunningServer
from datamill.llm.fake_server import FakeOpenAIServer
from datamill.services.adaptation.cancel import RunCanceller
from datamill.services.errors import ConflictError, NotFoundError
from datamill.store import Dataset
from datamill.store import runs as runs_repo

ROWS = 40
RECIPES = {"recipes": {"prompt_rephrase": False, "deduplication": False}}


@pytest.fixture(scope="module")
def slow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningServer, FakeOpenAIServer]]:
    """A server whose model answers one call at a time, slowly: a run of `ROWS` rows takes a while."""
    root = tmp_path_factory.mktemp("cancel")
    with loopback_model(latency_s=0.05) as model:
        routes = write_routes(root / "routes.yaml", model.base_url, max_concurrency=1, input_price=1.0)
        settings = run_settings(model=LOOP_MODEL, routes_path=routes, evaluate=False)
        with runs_server(root / "data", settings) as running:
            yield running, model


def _canceller(srv: RunningServer) -> RunCanceller:
    context = srv.context
    return RunCanceller(context.store, context.runs.settings, context.settings.data_dir)


def _tenant_id(srv: RunningServer, key: str) -> str:
    tenant = srv.context.tenants.authenticate(key)
    assert tenant is not None
    return tenant.id


def _run_of(srv: RunningServer, tenant_id: str, dataset_id: str) -> Any:
    view = srv.context.datasets.get(tenant_id, dataset_id)
    assert view.run_id is not None
    with srv.context.store.session() as session:
        return runs_repo.get_run(session, tenant_id, view.run_id)


def _wait_rows(srv: RunningServer, tenant_id: str, dataset_id: str, rows: int) -> None:
    deadline = time.monotonic() + 60
    while (_run_of(srv, tenant_id, dataset_id).processed_rows or 0) < rows:
        assert time.monotonic() < deadline, "the run never got going"
        time.sleep(0.05)


def test_cancel_stops_the_run_and_fails_its_dataset(
    slow: tuple[RunningServer, FakeOpenAIServer], tmp_path: Path
) -> None:
    srv, model = slow
    key = srv.new_key()
    tenant_id = _tenant_id(srv, key)
    client = srv.client(key=key)
    dataset_id = upload(client, tmp_path / "qa.csv", qa_rows(ROWS))
    before = srv.context.tenants.authenticate(key)
    assert before is not None
    client.datasets.adapt(dataset_id, column_mapping=MAPPING, recipe_specification=RECIPES)
    _wait_rows(srv, tenant_id, dataset_id, 8)
    run_id = _run_of(srv, tenant_id, dataset_id).id

    assert _canceller(srv).cancel(tenant_id, run_id) == dataset_id
    status = wait_done(client, dataset_id)
    assert status.status == "failed"
    assert status.error_data is not None
    assert status.error_data.code == "E0304"
    assert status.error_data.message == "the run was cancelled"

    # The worker stops at its next heartbeat: the model hears nothing more.
    time.sleep(1.5)
    calls = model.count
    time.sleep(1.0)
    assert model.count == calls

    run = _run_of(srv, tenant_id, dataset_id)
    assert run.status == "cancelled"
    assert run.evaluation_status == "skipped"
    lines = client.datasets.download(dataset_id, file_format="jsonl").text().splitlines()
    ids = [int(json.loads(line)["id"]) for line in lines]
    assert 0 < len(ids) < ROWS
    assert ids == list(range(len(ids)))  # whole batches, in input order
    assert client.datasets.get_evaluation(dataset_id).status == "skipped"

    # Only what was produced is charged; the rest of the reservation is back.
    after = srv.context.tenants.authenticate(key)
    assert after is not None
    assert float(run.credits_used) <= float(run.credits_reserved)
    assert after.credits == pytest.approx(before.credits - float(run.credits_used))

    with pytest.raises(ConflictError, match="only a queued or running run can be cancelled"):
        _canceller(srv).cancel(tenant_id, run_id)


def test_another_tenants_run_or_an_unknown_one_is_not_found(
    slow: tuple[RunningServer, FakeOpenAIServer], tmp_path: Path
) -> None:
    srv, _model = slow
    key = srv.new_key()
    tenant_id = _tenant_id(srv, key)
    client = srv.client(key=key)
    dataset_id = upload(client, tmp_path / "qa.csv", qa_rows(12))
    client.datasets.adapt(dataset_id, column_mapping=MAPPING, recipe_specification=RECIPES)
    run_id = _run_of(srv, tenant_id, dataset_id).id
    stranger = _tenant_id(srv, srv.new_key())
    with pytest.raises(NotFoundError):
        _canceller(srv).cancel(stranger, run_id)
    with pytest.raises(NotFoundError):
        _canceller(srv).cancel(tenant_id, "run_unknown")
    assert _run_of(srv, tenant_id, dataset_id).status in ("queued", "running")
    _canceller(srv).cancel(tenant_id, run_id)  # leave the shared worker free for the next test


def test_cancelling_a_translation_settles_the_derived_dataset(
    slow: tuple[RunningServer, FakeOpenAIServer], tmp_path: Path
) -> None:
    srv, _model = slow
    key = srv.new_key()
    tenant_id = _tenant_id(srv, key)
    client = srv.client(key=key)
    source = upload(client, tmp_path / "qa.csv", qa_rows(ROWS), processing_mode="raw", column_mapping=MAPPING)
    launched = client.datasets.translate(source, sample_rate=1.0, languages=["es"])
    assert launched.dataset_id is not None
    run_id = _run_of(srv, tenant_id, launched.dataset_id).id
    assert _canceller(srv).cancel(tenant_id, run_id) == launched.dataset_id
    status = client.datasets.get_status(launched.dataset_id)
    assert status.status == "failed"
    assert status.error_data is not None
    assert status.error_data.code == "E0304"
    derived = srv.context.datasets.get(tenant_id, launched.dataset_id)
    assert derived.status == "failed"
    with srv.context.store.session() as session:
        row = session.get(Dataset, launched.dataset_id)
        assert row is not None
        assert row.ingest_state == "ready"  # no longer being made: it can be downloaded or deleted
