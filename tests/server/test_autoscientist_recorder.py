"""How an AutoScientist attempt records its iterations: with the job's progress, while it holds the job.

Over a real store (SQLite, and PostgreSQL when `DATAMILL_TEST_POSTGRES_URL` is set) and a local blob
store, with the job claimed the way a worker claims it: each recorded iteration moves the job's
``processed_rows`` in the same transaction (so a worker killed after it has made progress, and its attempt
does not count against the run), and an attempt whose lease another worker took over records no
iteration, no progress and leaves no adapter behind.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pg_helpers import KINDS, migrated_store

from datamill.runners import LiveRun, RunTicket
from datamill.services.jobs.autoscientist import LeaseLost, _Recorder
from datamill.services.tenants import TenantService
from datamill.store import LocalBlobStore, Run, Store, utcnow
from datamill.store import runs as repo
from datamill.store.autoscientist import artifact_blob_key
from datamill.store.autoscientist_models import AUTOSCIENTIST_JOB, AutoscientistRun
from datamill.store.ids import new_id
from datamill.store.jobs import add_job

TRAIN_ROWS = 8
RENDERING = {"kind": "plain", "separator": "\n"}


@pytest.fixture(params=KINDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    with migrated_store(str(request.param), tmp_path) as made:
        yield made


def _claimed_run(store: Store) -> tuple[AutoscientistRun, RunTicket]:
    """An AutoScientist run of three iterations whose job worker ``w1`` has claimed."""
    tenant = TenantService(store).create_key(new_id("t")).tenant
    with store.session() as session:
        run = AutoscientistRun(
            id=new_id("asr"),
            tenant_id=tenant.id,
            dataset_id=new_id("ds"),
            model="tiny",
            training_method="instruction",
            data_format="instruction",
            column_mapping=None,
            hyperparams={"start": {"learning_rate": 1e-3}, "fixed": []},
            max_iterations=3,
            target_win_rate=1.0,
            idempotency_key=None,
            job_id="",
            iterations=[],
            created_at=utcnow(),
        )
        session.add(run)
        session.flush()
        run.job_id = add_job(session, tenant.id, AUTOSCIENTIST_JOB, run.id, {}, "tiny").id
        session.expunge(run)
    with store.session() as session:
        job = repo.claim_next(session, "w1", utcnow(), lease_s=30)
        assert job is not None
        ticket = RunTicket.of(job)
    assert ticket.worker_id == "w1"
    return run, ticket


def _record(iteration: int) -> dict[str, Any]:
    return {
        "iteration": iteration,
        "judged": 4,
        "first_error": None,
        "hyperparams": {"learning_rate": 1e-3 * iteration},
        "win_rate": 0.5 + iteration / 10,
        "low": 0.1,
        "high": 0.9,
    }


def _adapter(tmp_path: Path, iteration: int) -> Path:
    folder = tmp_path / f"adapter-{iteration}"
    folder.mkdir()
    (folder / "adapter_model.safetensors").write_bytes(b"weights %d" % iteration)
    return folder


def _metadata(archive: bytes) -> dict[str, Any]:
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as unpacked:
        member = unpacked.extractfile("datamill.json")
        assert member is not None
        found: dict[str, Any] = json.load(member)
    return found


def _read(store: Store, run: AutoscientistRun) -> tuple[AutoscientistRun, Run]:
    with store.session() as session:
        found, job = session.get(AutoscientistRun, run.id), session.get(Run, run.job_id)
        assert found is not None
        assert job is not None
        session.expunge_all()
        return found, job


def test_an_iteration_is_recorded_with_the_job_s_progress(store: Store, tmp_path: Path) -> None:
    blobs = LocalBlobStore(tmp_path / "blobs")
    run, ticket = _claimed_run(store)
    live = LiveRun()
    recorder = _Recorder(store, blobs, run, ticket, live)
    assert recorder.resume() == []
    recorder.start(TRAIN_ROWS, 0, RENDERING)
    recorder.iteration_done(_record(1), _adapter(tmp_path, 1), best=True)
    found, job = _read(store, run)
    assert [r["iteration"] for r in found.iterations] == [1]
    assert (job.processed_rows, live.counters.rows_done) == (TRAIN_ROWS, TRAIN_ROWS)
    assert found.artifact_key == artifact_blob_key(run.tenant_id, run.id, 1)
    with blobs.open_read(found.artifact_key) as archive:
        metadata = _metadata(archive.read())
    assert (metadata["iteration"], metadata["rendering"]) == (1, RENDERING)

    # The lease lapses and a second worker claims the job: its progress starts where iteration 1 left it.
    with store.session() as session:
        later = utcnow() + dt.timedelta(seconds=31)
        taken = repo.claim_next(session, "w2", later, lease_s=30)
        assert taken is not None
        assert (taken.worker_id, taken.attempts, taken.attempt_rows) == ("w2", 1, TRAIN_ROWS)
    second = _Recorder(store, blobs, run, RunTicket.of(taken), LiveRun())
    assert [r["iteration"] for r in second.resume()] == [1]

    # The first worker, still alive, finishes iteration 2: nothing of it is recorded or kept.
    with pytest.raises(LeaseLost, match="another worker took the run over"):
        recorder.iteration_done(_record(2), _adapter(tmp_path, 2), best=True)
    found, job = _read(store, run)
    assert [r["iteration"] for r in found.iterations] == [1]
    assert job.processed_rows == TRAIN_ROWS
    assert found.artifact_key == artifact_blob_key(run.tenant_id, run.id, 1)
    assert not blobs.exists(artifact_blob_key(run.tenant_id, run.id, 2))
    assert blobs.exists(found.artifact_key)

    # The new holder records iteration 2 once.
    second.start(TRAIN_ROWS, 1, RENDERING)
    second.iteration_done(_record(2), _adapter(tmp_path, 22), best=True)
    found, job = _read(store, run)
    assert [r["iteration"] for r in found.iterations] == [1, 2]
    assert job.processed_rows == 2 * TRAIN_ROWS
    assert found.artifact_key == artifact_blob_key(run.tenant_id, run.id, 2)
    assert not blobs.exists(artifact_blob_key(run.tenant_id, run.id, 1))  # the old best is let go
