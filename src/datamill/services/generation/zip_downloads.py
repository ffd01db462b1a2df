"""The ZIP of all a run's files, built by a job on the first download request (generation and anonymization).

The first request for a SUCCEEDED run's ZIP queues its job and answers "not ready" (the server says 202);
later requests answer "not ready" until the job succeeded, then the archive. A job that was cancelled, or a
ZIP the caller calls `outdated` (built before newer results), is queued again.

A build that failed is never passed off as "not ready": the next request answers `ZipBuildFailedError`
(503, code ``zip_failed``) with the failed job's reason, so a caller polling for the archive stops. That
request also queues a new build, until `ZIP_BUILD_ATTEMPTS` builds in a row failed; after that, a new build
is queued only once `ZIP_RETRY_AFTER` has passed since the last failure, or when the run changes (`outdated`),
and every request in between answers the error at once. A run whose files are gone from storage thus costs
one build an hour, not one per poll.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.orm import Session

from datamill.services.generation.common import CodedError, DownloadTarget
from datamill.store.jobs import add_job, get_job
from datamill.store.models import Run, naive_utc, utcnow

#: Builds of one run's ZIP that may fail in a row, each queued by the request after the previous failure.
ZIP_BUILD_ATTEMPTS = 3
#: After `ZIP_BUILD_ATTEMPTS` failed builds, how long after the last failure a request queues one more.
ZIP_RETRY_AFTER = dt.timedelta(hours=1)
#: The key of a ZIP job's request holding how many builds failed in a row before it was queued.
_FAILED_BEFORE = "failed_before"


@dataclass(frozen=True)
class ZipState:
    """The ZIP download's answer: not `ready` while it builds, then the blob (and its size when known)."""

    ready: bool
    target: DownloadTarget | None = None
    size_bytes: int | None = None


class ZipBuildFailedError(CodedError):
    """The run's last ZIP build failed (503, code ``zip_failed``); the message gives its reason."""

    status = 503

    def __init__(self, message: str) -> None:
        super().__init__(message, "zip_failed")


@dataclass(frozen=True)
class ZipBuild:
    """Where a run's ZIP stands: its job (maybe queued just now), whether it is `built`, or its `failure`.

    The caller records `job_id` on the run, commits, and then raises `failure` when there is one (raising
    inside the transaction would undo the build it queued).
    """

    job_id: str
    built: bool
    failure: ZipBuildFailedError | None = None


def refuse_unless_succeeded(kind: str, run_id: str, status: str) -> None:
    """A run's files are ready once it SUCCEEDED: 400 ``run_not_ready`` before."""
    if status != "SUCCEEDED":
        raise CodedError(
            f"{kind} {run_id!r} is {status}; its files are ready once it SUCCEEDED", "run_not_ready"
        )


def built_zip(
    session: Session,
    tenant_id: str,
    job_id: str | None,
    job_kind: str,
    run_id: str,
    *,
    what: str = "run",
    outdated: Callable[[Run], bool] = lambda _job: False,
) -> ZipBuild:
    """The run's ZIP job, queued now when there is none or it must be built again (module docstring).

    Args:
        session: the request's transaction.
        tenant_id: the run's tenant.
        job_id: the run's last ZIP job, if any.
        job_kind: the kind of job that builds this run's ZIP.
        run_id: the run.
        what: the run as messages name it (``run``, ``anonymization run``).
        outdated: whether a finished job predates the run's newest results (its ZIP must be built again).
    """
    job = get_job(session, tenant_id, job_id)
    if job is None or outdated(job):
        return ZipBuild(_queue(session, tenant_id, job_kind, run_id, 0), False)
    if job.status == "cancelled":
        return ZipBuild(_queue(session, tenant_id, job_kind, run_id, _failures_before(job)), False)
    if job.status != "failed":
        return ZipBuild(job.id, job.status == "succeeded")
    failures = _failures_before(job) + 1
    reason = str((job.error_data or {}).get("message") or "no reason was recorded").rstrip(".")
    failed_at = naive_utc(job.finished_at or job.updated_at)
    retry_at = failed_at + ZIP_RETRY_AFTER
    head = f"the ZIP of {what} {run_id!r} could not be built"
    if failures < ZIP_BUILD_ATTEMPTS or naive_utc(utcnow()) >= retry_at:
        queued = _queue(session, tenant_id, job_kind, run_id, failures)
        again = f"{head}: {reason}. A new build is queued: ask again in a moment"
        return ZipBuild(queued, False, ZipBuildFailedError(again))
    return ZipBuild(
        job.id,
        False,
        ZipBuildFailedError(
            f"{head} ({failures} failed builds in a row): {reason}. No new build is queued before "
            f"{retry_at:%Y-%m-%d %H:%M} UTC"
        ),
    )


def zip_target(key: str, run_id: str) -> DownloadTarget:
    """The built ZIP at `key`, downloaded as ``<run id>.zip``."""
    return DownloadTarget(key, f"{run_id}.zip", "application/zip")


def _queue(session: Session, tenant_id: str, job_kind: str, run_id: str, failures: int) -> str:
    return add_job(session, tenant_id, job_kind, run_id, {_FAILED_BEFORE: failures}).id


def _failures_before(job: Run) -> int:
    value = (job.request or {}).get(_FAILED_BEFORE)
    return value if isinstance(value, int) and value >= 0 else 0
