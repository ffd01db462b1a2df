"""Generation runs: create (a job), read, cancel, delete, downloads.

Creating a run takes a validated request (`RunLaunch`: the server parses it with
`datamill.core.generation_request`, the API's model enum and the Databricks credentials a ``databricks/``
model needs), checks that the Databricks API base may be reached, that the spec SUCCEEDED and that the
version exists (the latest when none is given), stores the request *without* credentials and queues a
``GENERATION_JOB`` whose request carries them (erased when the job ends). Status, progress and cost are
the job's (`datamill.services.generation.run_view`). The ZIP of all files is a ``GENERATION_ZIP_JOB``, queued
by the first download request: 202 while it builds, then 200 with the link. A ZIP built before the
run's newest evaluation finished is built again, so the archive always carries the latest results; a
failed build answers 503 ``zip_failed`` with its reason and is retried a bounded number of times
(`datamill.services.generation.zip_downloads`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from sqlalchemy.orm import Session

from datamill.core.credits import PriceTable
from datamill.core.errors import ValidationError
from datamill.core.generation_request import GenerationRequest
from datamill.services.errors import NotFoundError
from datamill.services.generation.common import CodedError, DownloadTarget, creator_email
from datamill.services.generation.credits import reserve, run_reservation
from datamill.services.generation.databricks import literal_refusal
from datamill.services.generation.run_cleanup import delete_runs
from datamill.services.generation.run_view import (
    GenerationRunDetail,
    GenerationRunSummary,
    run_detail,
    run_status,
    run_summary,
    tenant_run,
)
from datamill.services.generation.specs import spec_status
from datamill.services.generation.zip_downloads import (
    ZipState,
    built_zip,
    refuse_unless_succeeded,
    zip_target,
)
from datamill.services.tenants import TenantView
from datamill.store import BlobStore, Store
from datamill.store.generation_models import GENERATION_JOB, GENERATION_ZIP_JOB, GenerationRun
from datamill.store.generation_runs import (
    add_generation_run,
    evaluations_of_run,
    get_generated_file,
    list_generation_runs,
    zip_blob_key,
)
from datamill.store.ids import new_id
from datamill.store.jobs import CREDENTIALS, add_job, cancel_job
from datamill.store.models import Run, naive_utc, utcnow
from datamill.store.specs import get_spec, get_version, latest_version
from datamill.text.fetch_policy import FetchPolicy

#: Body fields that are credentials: used by the run's job, never stored with the run or echoed.
SECRET_FIELDS = ("databricks_client_id", "databricks_client_secret", "databricks_api_base")


@dataclass(frozen=True)
class RunLaunch:
    """A run to start: the validated `request` (with its `spec_id`) and the request as it was `submitted`.

    The submitted request is stored with the run, without its credentials (`SECRET_FIELDS`), and read back
    by the run's job; the credentials travel with the job only.
    """

    request: GenerationRequest
    submitted: Mapping[str, object]


def _outdated(session: Session, run: GenerationRun, job: Run) -> bool:
    """Whether a built or failed ZIP predates the run's newest finished evaluation (so it is built anew)."""
    if job.status not in ("succeeded", "failed") or job.finished_at is None:
        return False
    finished = [e.completed_at for e in evaluations_of_run(session, run.id) if e.result and e.completed_at]
    return bool(finished) and naive_utc(max(finished, key=naive_utc)) > naive_utc(job.finished_at)


class RunService:
    """The run operations of one tenant's requests; see the module docstring."""

    def __init__(
        self,
        store: Store,
        blobs: BlobStore,
        prices: PriceTable | None = None,
        policy: FetchPolicy | None = None,
    ) -> None:
        self._store, self._blobs = store, blobs
        self._prices = prices or PriceTable()
        self._policy = policy if policy is not None else FetchPolicy()

    def create(self, tenant: TenantView, launch: RunLaunch) -> GenerationRunDetail:
        request = launch.request
        base = dict(request.databricks).get("databricks_api_base")
        refused = literal_refusal(base, self._policy) if base else None
        if refused is not None:
            raise ValidationError.of("databricks_api_base", refused)
        if request.spec_id is None:
            raise ValidationError.of("spec_id", "is required: the id of a SUCCEEDED spec")
        with self._store.session() as session:
            spec = get_spec(session, tenant.id, request.spec_id)
            if spec is None:
                raise NotFoundError("spec", request.spec_id)
            status = spec_status(session, spec)
            if status != "SUCCEEDED":
                raise CodedError(
                    f"spec {spec.id!r} is {status}; a run needs a SUCCEEDED spec",
                    "spec_not_ready",
                    field="spec_id",
                )
            version = self._version(session, spec.id, request.spec_version)
            stored = {k: v for k, v in launch.submitted.items() if k not in SECRET_FIELDS}
            run = GenerationRun(
                id=new_id("genrun"),
                tenant_id=tenant.id,
                spec_id=spec.id,
                spec_version=version,
                number_of_samples=request.number_of_samples,
                request=stored,
                runtime_params=request.runtime_params(),
                job_id="",
                summary=None,
                zip_job_id=None,
                created_by_email=creator_email(tenant),
                created_at=utcnow(),
                completed_at=None,
            )
            add_generation_run(session, run)
            job_request: dict[str, Any] = {}
            if request.databricks:
                job_request[CREDENTIALS] = dict(request.databricks)
            amount = run_reservation(self._prices, request.number_of_samples)
            reserved = reserve(session, tenant.id, amount, f"a run of {request.number_of_samples} samples")
            job = add_job(
                session,
                tenant.id,
                GENERATION_JOB,
                run.id,
                job_request,
                request.generation_model or "",
                credits_reserved=reserved,
            )
            run.job_id = job.id
            return run_detail(session, run)

    @staticmethod
    def _version(session: Session, spec_id: str, asked: int | None) -> int:
        latest = latest_version(session, spec_id)
        assert latest is not None  # a SUCCEEDED spec has version 1
        if asked is None:
            return latest.version
        if get_version(session, spec_id, asked) is None:
            raise ValidationError.of(
                "spec_version", f"spec {spec_id!r} has versions 1 to {latest.version}; got {asked}"
            )
        return asked

    def get(self, tenant_id: str, run_id: str) -> GenerationRunDetail:
        with self._store.session() as session:
            return run_detail(session, tenant_run(session, tenant_id, run_id))

    def list(self, tenant_id: str) -> list[GenerationRunSummary]:
        with self._store.session() as session:
            return [run_summary(session, run) for run in list_generation_runs(session, tenant_id)]

    def cancel(self, tenant_id: str, run_id: str) -> None:
        """Cancel a PENDING or PROCESSING run; its worker stops at its next heartbeat."""
        with self._store.session() as session:
            run = tenant_run(session, tenant_id, run_id)
            if not cancel_job(session, tenant_id, run.job_id):
                raise CodedError(
                    f"run {run_id!r} is {run_status(session, run)}; only PENDING or PROCESSING runs can be "
                    "canceled",
                    "not_cancelable",
                )
            run.completed_at = utcnow()

    def delete(self, tenant_id: str, run_id: str) -> None:
        with self._store.session() as session:
            tenant_run(session, tenant_id, run_id)
            keys = delete_runs(session, tenant_id, [run_id])
        for key in keys:
            self._blobs.delete(key)

    def file(self, tenant_id: str, run_id: str, file_id: str) -> DownloadTarget:
        """One generated file, to download."""
        with self._store.session() as session:
            run = tenant_run(session, tenant_id, run_id)
            found = get_generated_file(session, run.id, file_id)
            if found is None:
                raise NotFoundError("file", file_id)
            return DownloadTarget(found.blob_key, PurePosixPath(found.path).name, found.file_type)

    def zip(self, tenant_id: str, run_id: str) -> ZipState:
        """The ZIP of every file (`zip_downloads`), built again after a newer evaluation."""
        with self._store.session() as session:
            run = tenant_run(session, tenant_id, run_id)
            refuse_unless_succeeded("run", run_id, run_status(session, run))
            build = built_zip(
                session,
                tenant_id,
                run.zip_job_id,
                GENERATION_ZIP_JOB,
                run.id,
                outdated=lambda job: _outdated(session, run, job),
            )
            run.zip_job_id = build.job_id
        if build.failure is not None:
            raise build.failure
        if not build.built:
            return ZipState(False)
        key = zip_blob_key(tenant_id, run_id, build.job_id)
        with self._blobs.open_read(key) as handle:
            size = handle.seek(0, 2)
        return ZipState(True, zip_target(key, run_id), size)
