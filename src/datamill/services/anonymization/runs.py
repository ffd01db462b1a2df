"""Anonymization runs: create (a job), list, read, soft delete, and the downloads of their files.

Creating a run checks the body (`datamill.services.anonymization.request`), that the dataset is the
tenant's (else 404) and, with ``llm`` or ``all``, that the server routes ``llm_model_name`` (else 400
naming it); it then reserves the row fee of the dataset's samples (its rows for a single file, else one
per file), at least the minimum charge, from the tenant's credits (402 when the balance does not cover it,
and nothing is queued) and queues an ``ANONYMIZATION_JOB``
(`datamill.services.jobs.anonymization`). The run is answered PENDING.

The run object carries the SDK's fields: ``results`` (``samples_processed``, ``entity_summary``,
``entities_found``, ``error``) is null until the run ended, and ``anonymized_files`` is filled once it
SUCCEEDED. Beyond them it shows ``mask_config`` and ``threshold`` as used.

Deleting is soft: the run is kept but every read answers 404 as for an unknown id and the list leaves it
out; a run still working is stopped (its reservation comes back) and its files are deleted. The ZIP of
all files is an ``ANONYMIZATION_ZIP_JOB`` queued by the first download request: 202 with ``status:
generating`` while it builds, then 200 with ``status: ready`` and the link.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from sqlalchemy.orm import Session

from datamill.core.credits import PriceTable
from datamill.core.errors import ConfigError, UnknownModelError, ValidationError
from datamill.llm.routing import Routing
from datamill.services.anonymization.request import AnonymizationRequest, parse_anonymization_create
from datamill.services.errors import NotFoundError
from datamill.services.generation.common import CodedError, DownloadTarget, creator_email, iso
from datamill.services.generation.credits import reserve
from datamill.services.tenants import TenantView
from datamill.store import BlobStore, Store
from datamill.store.anonymization_models import (
    ANONYMIZATION_JOB,
    ANONYMIZATION_STATUS,
    ANONYMIZATION_ZIP_JOB,
    AnonymizationRun,
)
from datamill.store.anonymization_runs import (
    add_anonymization_run,
    anonymized_zip_key,
    files_of_anonymization,
    get_anonymization_run,
    get_anonymized_file,
    list_anonymization_runs,
)
from datamill.store.generation_models import public_status
from datamill.store.ids import new_id
from datamill.store.jobs import add_job, cancel_job, get_job
from datamill.store.models import Run, utcnow
from datamill.store.seed_datasets import get_dataset


@dataclass(frozen=True)
class ZipState:
    """The ZIP download's answer: 202 while it builds, 200 with the blob once built."""

    ready: bool
    target: DownloadTarget | None = None


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

    def create(self, tenant: TenantView, body: object) -> dict[str, Any]:
        request = parse_anonymization_create(body)
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
            return run_wire(session, run)

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

    def get(self, tenant_id: str, run_id: str) -> dict[str, Any]:
        with self._store.session() as session:
            return run_wire(session, tenant_anonymization(session, tenant_id, run_id))

    def list(self, tenant_id: str) -> list[dict[str, Any]]:
        with self._store.session() as session:
            return [run_item(session, run) for run in list_anonymization_runs(session, tenant_id)]

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
        """The ZIP of every file: queue its job on the first call (or after a failed one), else its state."""
        with self._store.session() as session:
            run = tenant_anonymization(session, tenant_id, run_id)
            status = anonymization_status(session, run)
            if status != "SUCCEEDED":
                raise CodedError(
                    f"anonymization run {run_id!r} is {status}; its files are ready once it SUCCEEDED",
                    "run_not_ready",
                )
            job = get_job(session, tenant_id, run.zip_job_id)
            if job is None or job.status in ("failed", "cancelled"):
                run.zip_job_id = add_job(session, tenant_id, ANONYMIZATION_ZIP_JOB, run.id, {}).id
                return ZipState(False)
            if job.status != "succeeded":
                return ZipState(False)
            key = anonymized_zip_key(tenant_id, run.id, job.id)
        return ZipState(True, DownloadTarget(key, f"{run_id}.zip", "application/zip"))


def _stored(request: AnonymizationRequest) -> dict[str, Any]:
    return {"pii_types": list(request.pii_types), "mask_config": dict(request.mask_config)}


def tenant_anonymization(session: Session, tenant_id: str, run_id: str) -> AnonymizationRun:
    """The tenant's live run `run_id`; NotFoundError for an unknown, deleted or another tenant's id."""
    run = get_anonymization_run(session, tenant_id, run_id)
    if run is None:
        raise NotFoundError("anonymization run", run_id)
    return run


def anonymization_status(session: Session, run: AnonymizationRun) -> str:
    job = get_job(session, run.tenant_id, run.job_id)
    return public_status(job.status if job else None, ANONYMIZATION_STATUS)


def run_item(session: Session, run: AnonymizationRun) -> dict[str, Any]:
    """The list item: the run without its files, results and options."""
    return {
        "id": run.id,
        "status": anonymization_status(session, run),
        "dataset_id": run.dataset_id,
        "dataset_name": run.dataset_name,
        "detection_method": run.detection_method,
        "llm_model_name": run.llm_model_name,
        "pii_types": list(run.request.get("pii_types") or []),
        "created_at": iso(run.created_at),
        "completed_at": iso(run.completed_at),
        "created_by_email": run.created_by_email,
    }


def run_wire(session: Session, run: AnonymizationRun) -> dict[str, Any]:
    """The run object (see the module docstring)."""
    job = get_job(session, run.tenant_id, run.job_id)
    body = run_item(session, run)
    body["mask_config"] = dict(run.request.get("mask_config") or {})
    body["threshold"] = run.threshold
    body["duration_seconds"] = _duration(run.created_at, run.completed_at)
    body["results"] = _results(run, job, body["status"])
    files = files_of_anonymization(session, run.id) if body["status"] == "SUCCEEDED" else []
    body["anonymized_files"] = [
        {"id": f.id, "path": f.path, "content_type": f.content_type, "size_in_bytes": f.size_bytes}
        for f in files
    ]
    return body


def _duration(start: dt.datetime, end: dt.datetime | None) -> int | None:
    if end is None:
        return None
    return max(0, round((_naive(end) - _naive(start)).total_seconds()))


def _naive(moment: dt.datetime) -> dt.datetime:
    return moment.astimezone(dt.UTC).replace(tzinfo=None) if moment.tzinfo else moment


def _results(run: AnonymizationRun, job: Run | None, status: str) -> dict[str, Any] | None:
    if status in ("PENDING", "PROCESSING"):
        return None
    results = dict(run.results or {})
    base: dict[str, Any] = {
        "samples_processed": results.get("samples_processed", 0),
        "entity_summary": results.get("entity_summary", {}),
        "entities_found": results.get("entities_found", []),
        "error": None,
    }
    if status == "FAILED":
        base["error"] = str(((job.error_data if job else None) or {}).get("message") or "the run failed")
    for key in ("entities_truncated", "llm_entities_dropped"):
        if key in results:
            base[key] = results[key]
    return base
