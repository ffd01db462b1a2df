"""Deleting a dataset deletes its data: the API keeps only the flagged record the contract's soft delete
needs (404 on every read), while the uploaded files, their file records and the outputs and checkpoints of
its runs are removed from storage."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import adaption
import httpx
import pytest
from runs_helpers import MAPPING, qa_rows, run_settings, runs_server, upload, wait_done
from sqlalchemy import select

from conftest import RunningServer
from datamill.store import Dataset, Run
from datamill.store.autoscientist import artifact_blob_key
from datamill.store.autoscientist_models import AutoscientistRun
from datamill.store.models import DatasetFile, Upload


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with runs_server(tmp_path_factory.mktemp("purge")) as running:
        yield running


@pytest.fixture(scope="module")
def idle(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A server whose worker is off: launched runs stay queued."""
    with runs_server(tmp_path_factory.mktemp("purge-idle"), run_settings(worker=False)) as running:
        yield running


def test_a_deleted_dataset_leaves_no_files_behind(srv: RunningServer, tmp_path: Path) -> None:
    client = srv.client()
    dataset_id = upload(client, tmp_path / "qa.csv", qa_rows(4))
    client.datasets.adapt(dataset_id, column_mapping=MAPPING)
    assert wait_done(client, dataset_id).status == "succeeded"
    store, blobs = srv.context.store, srv.context.blobs
    with store.session() as session:
        keys = list(session.scalars(select(DatasetFile.blob_key).where(DatasetFile.dataset_id == dataset_id)))
        uploads = list(session.scalars(select(Upload.s3_key).where(Upload.dataset_id == dataset_id)))
        (run_id,) = session.scalars(select(Run.id).where(Run.dataset_id == dataset_id))
    run_dir = srv.settings.data_dir / "runs" / run_id
    assert keys
    assert all(blobs.exists(key) for key in keys)
    assert run_dir.is_dir()

    client.datasets.delete(dataset_id)

    with pytest.raises(adaption.NotFoundError):
        client.datasets.get(dataset_id)
    assert not any(blobs.exists(key) for key in [*keys, *uploads])
    assert not run_dir.exists()
    with store.session() as session:
        row = session.get(Dataset, dataset_id)
        assert row is not None
        assert row.deleted_at is not None  # the soft-deleted record the contract keeps
        assert list(session.scalars(select(DatasetFile).where(DatasetFile.dataset_id == dataset_id))) == []


def test_deleting_a_dataset_leaves_other_datasets_whole(srv: RunningServer, tmp_path: Path) -> None:
    client = srv.client()
    kept = upload(client, tmp_path / "kept.csv", qa_rows(3))
    gone = upload(client, tmp_path / "gone.csv", qa_rows(3))
    client.datasets.delete(gone)
    with srv.context.store.session() as session:
        keys = list(session.scalars(select(DatasetFile.blob_key).where(DatasetFile.dataset_id == kept)))
    assert keys
    assert all(srv.context.blobs.exists(key) for key in keys)
    assert client.datasets.get(kept).row_count == 3


def test_a_purge_cut_short_is_finished_by_the_sweep_at_start(srv: RunningServer, tmp_path: Path) -> None:
    client = srv.client()
    dataset_id = upload(client, tmp_path / "qa.csv", qa_rows(2))
    store = srv.context.store
    with store.session() as session:
        keys = list(session.scalars(select(DatasetFile.blob_key).where(DatasetFile.dataset_id == dataset_id)))
        row = session.get(Dataset, dataset_id)
        assert row is not None
        row.deleted_at = row.updated_at  # flagged, as by a process that died before purging
    assert all(srv.context.blobs.exists(key) for key in keys)
    assert srv.context.purge.sweep() >= 1
    assert not any(srv.context.blobs.exists(key) for key in keys)
    assert srv.context.purge.sweep() == 0


def test_an_upload_link_of_a_deleted_dataset_takes_nothing(srv: RunningServer) -> None:
    client = srv.client()
    created = client.datasets.create(source={"name": "data.csv"})
    assert created.upload_instructions is not None
    client.datasets.delete(created.dataset_id)
    answer = httpx.put(created.upload_instructions.url, content=b"question,answer\nq,a\n")
    assert 400 <= answer.status_code < 500
    with srv.context.store.session() as session:
        assert list(session.scalars(select(Upload).where(Upload.dataset_id == created.dataset_id))) == []


def test_a_dataset_a_queued_run_reads_cannot_be_deleted(idle: RunningServer, tmp_path: Path) -> None:
    """A translation queued from a source needs the source's files: deleting it waits for the run."""
    client = idle.client()
    source = upload(client, tmp_path / "qa.csv", qa_rows(4), processing_mode="raw", column_mapping=MAPPING)
    client.datasets.translate(source, sample_rate=1, languages=["es"])
    with pytest.raises(adaption.ConflictError) as caught:
        client.datasets.delete(source)
    assert "run" in str(caught.value)
    assert client.datasets.get(source).dataset_id == source


def test_the_adapters_trained_on_a_deleted_dataset_go_with_it(idle: RunningServer, tmp_path: Path) -> None:
    client = idle.client()
    source = upload(client, tmp_path / "qa.csv", qa_rows(10), processing_mode="raw", column_mapping=MAPPING)
    run_id = client.autoscientist.create(dataset_id=source, max_iterations=2).to_dict()["id"]
    with pytest.raises(adaption.ConflictError):  # it trains on the dataset: deleting waits for it
        client.datasets.delete(source)
    client.autoscientist.cancel(run_id)
    # The best adapter an iteration trained before the cancel, as the training job stores it.
    tenant = idle.context.tenants.authenticate(client.api_key)
    assert tenant is not None
    key = artifact_blob_key(tenant.id, run_id, 1)
    writer = idle.context.blobs.open_writer(key)
    writer.write(b"adapter weights")
    writer.commit()
    with idle.context.store.session() as session:
        row = session.get(AutoscientistRun, run_id)
        assert row is not None
        row.artifact_key = key
    assert client.autoscientist.download(run_id) is not None

    client.datasets.delete(source)

    assert not idle.context.blobs.exists(key)
    with pytest.raises(adaption.UnprocessableEntityError, match="no trained model"):
        client.autoscientist.download(run_id)
