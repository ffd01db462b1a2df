"""The ZIP of all a run's files, built by a job on the first download request (generation and anonymization).

The first request for a SUCCEEDED run's ZIP queues its job and answers "not ready" (the server says 202);
later requests answer "not ready" until the job succeeded, then the archive. A job that failed or was
cancelled, or a ZIP the caller calls `outdated` (built before newer results), is queued again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.orm import Session

from datamill.services.generation.common import CodedError, DownloadTarget
from datamill.store.jobs import add_job, get_job
from datamill.store.models import Run


@dataclass(frozen=True)
class ZipState:
    """The ZIP download's answer: not `ready` while it builds, then the blob (and its size when known)."""

    ready: bool
    target: DownloadTarget | None = None
    size_bytes: int | None = None


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
    outdated: Callable[[Run], bool] = lambda _job: False,
) -> tuple[str, bool]:
    """``(zip job id, built)``: the run's ZIP job, queued now when there is none or it must be built again."""
    job = get_job(session, tenant_id, job_id)
    if job is None or job.status in ("failed", "cancelled") or outdated(job):
        return add_job(session, tenant_id, job_kind, run_id, {}).id, False
    return job.id, job.status == "succeeded"


def zip_target(key: str, run_id: str) -> DownloadTarget:
    """The built ZIP at `key`, downloaded as ``<run id>.zip``."""
    return DownloadTarget(key, f"{run_id}.zip", "application/zip")
