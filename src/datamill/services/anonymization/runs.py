"""Anonymization runs: create (a job), list, read, soft delete, and the downloads of their files.

Creating a run takes a checked `AnonymizationRequest`, checks that the dataset is the
tenant's (else 404) and, with ``llm`` or ``all``, that the server routes ``llm_model_name`` (else 400
naming it); it then reserves the row fee of the dataset's samples (its rows for a single file, else one
per file), at least the minimum charge, from the tenant's credits (402 when the balance does not cover it,
and nothing is queued) and queues an ``ANONYMIZATION_JOB``
(`datamill.services.jobs.anonymization`). The run is answered PENDING.

A run reads as an `AnonymizationRunDetail` (`datamill.services.anonymization.view`).

Deleting is soft: the run is kept but every read answers 404 as for an unknown id and the list leaves it
out; a run still working is stopped (its reservation comes back) and its files are deleted. The ZIP of
all files is an ``ANONYMIZATION_ZIP_JOB`` queued by the first download request: 202 with ``status:
generating`` while it builds, then 200 with ``status: ready`` and the link; a failed build answers 503
``zip_failed`` with its reason (`datamill.services.generation.zip_downloads`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import PurePosixPath
from typing import Any

from datamill.core.credits import PriceTable
from datamill.core.errors import ConfigError, UnknownModelError, ValidationError
from datamill.llm.routing import Routing
from datamill.services.anonymization.request import AnonymizationRequest
from datamill.services.anonymization.view import (
    AnonymizationRunDetail,
    AnonymizationRunSummary,
    anonymization_status,
    run_detail,
    run_summary,
    tenant_anonymization,
)
from datamill.services.errors import NotFoundError
from datamill.services.generation.common import DownloadTarget, creator_email
from datamill.services.generation.credits import reserve
from datamill.services.generation.zip_downloads import (
    ZipState,
    built_zip,
    refuse_unless_succeeded,
    zip_target,
)
from datamill.services.tenants import TenantView
from datamill.store import BlobStore, Store
from datamill.store.anonymization_models import (
    ANONYMIZATION_JOB,
    ANONYMIZATION_ZIP_JOB,
    AnonymizationRun,
)
from datamill.store.anonymization_runs import (
    add_anonymization_run,
    anonymized_zip_key,
    files_of_anonymization,
    get_anonymized_file,
    list_anonymization_runs,
)
from datamill.store.ids import new_id
from datamill.store.jobs import add_job, cancel_job, get_job
from datamill.store.models import utcnow
from datamill.store.seed_datasets import get_dataset


class AnonymizationService:
    """The anonymization operations of one tenant's requests; see the module docstring.

    `routing` gives the server's model routing, to check ``llm_model_name`` when a run is created.
    """

    def __init__(
        self,
        store: Store,
        blobs: BlobStore,
        prices: PriceTable | None = None,
        routing: Callable[[], Routing] | None = None,
    ) -> None:
        self._store, self._blobs = store, blobs
        self._prices = prices or PriceTable()
        self._routing = routing

    def create(self, tenant: TenantView, request: AnonymizationRequest) -> AnonymizationRunDetail:
        if request.llm_model_name is not None:
            self._check_model(request.llm_model_name)
        with self._store.session() as session:
            dataset = get_dataset(session, tenant.id, request.dataset_id)
            if dataset is None:
                raise NotFoundError("dataset", request.dataset_id)
            run = AnonymizationRun(
                id=new_id("anonrun"),
                tenant_id=tenant.id,
                dataset_id=dataset.id,
                dataset_name=dataset.name,
                detection_method=request.detection_method,
                llm_model_name=request.llm_model_name,
                threshold=request.threshold,
                request=_stored(request),
                results=None,
                job_id="",
                zip_job_id=None,
                created_by_email=creator_email(tenant),
                created_at=utcnow(),
                completed_at=None,
                deleted_at=None,
            )
            add_anonymization_run(session, run)
            samples = dataset.sample_count or dataset.file_count
            amount = max(self._prices.minimum_credits, self._prices.credits(samples, 0.0))
            reserved = reserve(session, tenant.id, amount, f"an anonymization run of {samples} samples")
            job = add_job(
                session,
                tenant.id,
                ANONYMIZATION_JOB,
                run.id,
                {},
                request.llm_model_name or "",
                credits_reserved=reserved,
            )
            run.job_id = job.id
            return run_detail(session, run)

    def _check_model(self, name: str) -> None:
        if self._routing is None:
            return
        try:
            self._routing().resolve(name)
        except UnknownModelError:
            raise ValidationError.of(
                "llm_model_name", f"{name!r:.100} is not a model this server routes (see GET /api/v1/models)"
            ) from None
        except ConfigError as exc:
            raise ValidationError.of("llm_model_name", f"{name!r:.100} cannot be used: {exc}") from None

    def get(self, tenant_id: str, run_id: str) -> AnonymizationRunDetail:
        with self._store.session() as session:
            return run_detail(session, tenant_anonymization(session, tenant_id, run_id))

    def list(self, tenant_id: str) -> list[AnonymizationRunSummary]:
        with self._store.session() as session:
            return [run_summary(session, run) for run in list_anonymization_runs(session, tenant_id)]

    def delete(self, tenant_id: str, run_id: str) -> None:
        """Soft delete: hide the run, stop its job if it still works, delete its files."""
        with self._store.session() as session:
            run = tenant_anonymization(session, tenant_id, run_id)
            cancel_job(session, tenant_id, run.job_id)
            run.deleted_at = utcnow()
            keys = [f.blob_key for f in files_of_anonymization(session, run.id)]
            zip_job = get_job(session, tenant_id, run.zip_job_id)
            if zip_job is not None and zip_job.status == "succeeded":
                keys.append(anonymized_zip_key(tenant_id, run.id, zip_job.id))
        for key in keys:
            self._blobs.delete(key)

    def file(self, tenant_id: str, run_id: str, file_id: str) -> DownloadTarget:
        """One anonymized file, to download (the run must have SUCCEEDED)."""
        with self._store.session() as session:
            run = tenant_anonymization(session, tenant_id, run_id)
            found = get_anonymized_file(session, run.id, file_id)
            if found is None:
                raise NotFoundError("file", file_id)
            return DownloadTarget(found.blob_key, PurePosixPath(found.path).name, found.content_type)

    def zip(self, tenant_id: str, run_id: str) -> ZipState:
        """The ZIP of every file (`datamill.services.generation.zip_downloads`)."""
        with self._store.session() as session:
            run = tenant_anonymization(session, tenant_id, run_id)
            refuse_unless_succeeded("anonymization run", run_id, anonymization_status(session, run))
            build = built_zip(
                session, tenant_id, run.zip_job_id, ANONYMIZATION_ZIP_JOB, run.id, what="anonymization run"
            )
            run.zip_job_id = build.job_id
        if build.failure is not None:
            raise build.failure
        if not build.built:
            return ZipState(False)
        return ZipState(True, zip_target(anonymized_zip_key(tenant_id, run_id, build.job_id), run_id))


def _stored(request: AnonymizationRequest) -> dict[str, Any]:
    return {"pii_types": list(request.pii_types), "mask_config": dict(request.mask_config)}
