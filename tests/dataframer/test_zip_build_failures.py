"""A run's ZIP whose build fails answers a clear error through the official SDK, never 202 forever.

The builds fail for real: a generated (or anonymized) file's blob is deleted from storage after the run
SUCCEEDED, so every ZIP job stops on it. The SDK gets a 503 (`InternalServerError`) with code ``zip_failed``
and the reason naming the run's file, never a storage path; the request after each failure queues a new
build until three failed in a row, then none is queued until an hour after the last failure or until the run
changes (a newer evaluation). With the file back, the next build succeeds.
"""

from __future__ import annotations

import datetime as dt
import io
import time
import zipfile
from collections.abc import Callable
from typing import Any

import httpx
from anon_helpers import anonymized_emails
from df_waits import DEADLINE_S, wait_run, wait_zip
from sqlalchemy import select, update
from test_evaluations import wait_evaluation
from test_specs import seedless_spec

import dataframer
from conftest import RunningServer
from datamill.store.anonymization_models import ANONYMIZATION_ZIP_JOB
from datamill.store.anonymization_runs import files_of_anonymization
from datamill.store.generation_models import GENERATION_ZIP_JOB
from datamill.store.generation_runs import files_of_run
from datamill.store.models import Run


def _zip_jobs(server: RunningServer, kind: str, run_id: str) -> list[Run]:
    """The run's ZIP jobs, oldest first."""
    with server.context.store.session() as session:
        query = select(Run).where(Run.kind == kind, Run.source_dataset_id == run_id).order_by(Run.created_at)
        jobs = list(session.scalars(query))
        session.expunge_all()
    return jobs


def _take_blob(server: RunningServer, key: str) -> bytes:
    """Delete the blob `key` from storage; its bytes, to put back later."""
    with server.context.blobs.open_read(key) as handle:
        data = bytes(handle.read())
    server.context.blobs.delete(key)
    assert not server.context.blobs.exists(key)
    return data


def _put_blob(server: RunningServer, key: str, data: bytes) -> None:
    writer = server.context.blobs.open_writer(key)
    writer.write(data)
    writer.commit()


def _next_error(download_all: Callable[[], Any]) -> tuple[int, dataframer.InternalServerError]:
    """Ask for the ZIP until the SDK raises; how many "not ready" answers came first, and the error."""
    not_ready = 0
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        try:
            answer = download_all()
        except dataframer.InternalServerError as exc:
            return not_ready, exc
        assert answer.download_url is None, "a ZIP missing one of the run's files was served"
        not_ready += 1
        time.sleep(0.05)
    raise AssertionError(f"no error after {not_ready} 'not ready' answers in {DEADLINE_S} s")


def _assert_zip_error(exc: dataframer.InternalServerError, server: RunningServer, *needles: str) -> str:
    """The error is the 503 ``zip_failed`` naming each of `needles`, and no path of the server's storage."""
    assert exc.status_code == 503
    assert isinstance(exc.body, dict)
    assert exc.body["code"] == "zip_failed"
    message = str(exc.body["error"])
    for needle in needles:
        assert needle in message, message
    assert str(server.settings.data_dir) not in message
    assert "generated/" not in message  # no storage key
    assert "anonymized/" not in message
    return message


def test_a_failing_generation_zip_answers_its_reason_and_stops_rebuilding(
    df_server: RunningServer, client: dataframer.Dataframer
) -> None:
    run = client.dataframer.runs.create(
        spec_id=seedless_spec(client),
        number_of_samples=2,
        skip_outline=True,
        extra_body={"novelty_threshold": 1},  # the fake's copies
    )
    run_id = str(run.id)
    assert wait_run(client, run_id).status == "SUCCEEDED"
    with df_server.context.store.session() as session:
        key = next(f.blob_key for f in files_of_run(session, run_id) if f.path == "sample_2.txt")
    data = _take_blob(df_server, key)

    def download_all() -> Any:
        return client.dataframer.runs.files.download_all(run_id)

    assert download_all().download_url is None  # the first request queues the build: 202
    errors = [_next_error(download_all)[1] for _ in range(3)]
    for exc in errors[:2]:
        _assert_zip_error(
            exc, df_server, repr(run_id), "sample_2.txt", "cannot be read", "new build is queued"
        )
    last = _assert_zip_error(errors[2], df_server, "sample_2.txt", "3 failed builds in a row")
    assert "No new build is queued before" in last
    jobs = _zip_jobs(df_server, GENERATION_ZIP_JOB, run_id)
    assert [job.status for job in jobs] == ["failed"] * 3
    assert all("sample_2.txt" in (job.error_data or {})["message"] for job in jobs)

    for _ in range(3):  # bounded: answered at once, nothing queued
        not_ready, exc = _next_error(download_all)
        assert not_ready == 0
        _assert_zip_error(exc, df_server, "3 failed builds in a row")
        time.sleep(0.2)
    assert len(_zip_jobs(df_server, GENERATION_ZIP_JOB, run_id)) == 3

    # An hour after the last failure (its time moved back), one more build runs, and fails again.
    with df_server.context.store.session() as session:
        earlier = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1, minutes=1)
        session.execute(update(Run).where(Run.id == jobs[-1].id).values(finished_at=earlier))
    not_ready, exc = _next_error(download_all)
    assert not_ready == 0
    _assert_zip_error(exc, df_server, "sample_2.txt", "new build is queued")
    _assert_zip_error(_next_error(download_all)[1], df_server, "4 failed builds in a row")
    assert [job.status for job in _zip_jobs(df_server, GENERATION_ZIP_JOB, run_id)] == ["failed"] * 4

    # The file restored and the run changed (a newer evaluation): the next request builds it again.
    _put_blob(df_server, key, data)
    evaluation = client.dataframer.evaluations.create(run_id=run_id)
    assert wait_evaluation(client, str(evaluation.id)).status == "SUCCEEDED"
    statuses, ready = wait_zip(client, run_id)
    assert statuses[0] == 202
    assert statuses[-1] == 200
    with zipfile.ZipFile(io.BytesIO(httpx.get(ready.download_url).content)) as archive:
        assert archive.read("sample_2.txt") == data
    jobs = _zip_jobs(df_server, GENERATION_ZIP_JOB, run_id)
    assert [job.status for job in jobs] == ["failed"] * 4 + ["succeeded"]


def test_a_failing_anonymization_zip_answers_its_reason(
    df_server: RunningServer, client: dataframer.Dataframer
) -> None:
    run_id = anonymized_emails(client, seed=5)
    with df_server.context.store.session() as session:
        stored = files_of_anonymization(session, run_id)
        path, key = stored[0].path, stored[0].blob_key
    _take_blob(df_server, key)

    def download_all() -> Any:
        return client.dataframer.anonymization_runs.files.download_all(run_id)

    not_ready, exc = _next_error(download_all)
    assert not_ready >= 1  # the first request queued the build
    _assert_zip_error(exc, df_server, "anonymization run", path, "cannot be read", "new build is queued")
    jobs = _zip_jobs(df_server, ANONYMIZATION_ZIP_JOB, run_id)
    assert jobs[0].status == "failed"
    assert len(jobs) == 2  # the failed build and the one the error's request queued
