"""Specs: create (an analysis job), read, edit (new versions), delete.

Creating a spec stores it and queues a ``SPEC_JOB`` (`datamill.services.jobs.spec_analysis`), which writes
version 1; until then the spec reads PROCESSING, and FAILED with ``error`` if the job failed. An edit is
validated as a whole spec and stored as the next version, with the server-owned ``metadata`` section
of the latest version put back in place of whatever the user sent. Deleting a spec that has runs needs
``force``, which deletes the runs too (`datamill.services.generation.run_cleanup`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from datamill.core.credits import PriceTable
from datamill.core.spec import with_metadata
from datamill.services.errors import NotFoundError
from datamill.services.generation.common import CodedError, NameTakenError, creator_email
from datamill.services.generation.credits import reserve
from datamill.services.generation.run_cleanup import delete_runs
from datamill.services.tenants import TenantView
from datamill.store import BlobStore, Store
from datamill.store.generation_models import SPEC_JOB, SPEC_STATUS, SeedDataset, Spec, public_status
from datamill.store.generation_models import SpecVersion as SpecVersionRow
from datamill.store.ids import new_id
from datamill.store.jobs import add_job, cancel_job, get_job
from datamill.store.models import Run, utcnow
from datamill.store.specs import (
    add_version,
    delete_spec,
    get_seed_dataset,
    get_spec,
    latest_version,
    list_specs,
    run_ids_of,
    spec_name_taken,
    versions_of,
)


@dataclass(frozen=True, kw_only=True)
class SpecDraft:
    """What a new spec is made of: seeds (`dataset_id`) or, for a seedless spec, `generation_objectives`.

    The flags steer the analysis; `analysis_model` is the model that writes the spec (None: the server's).
    """

    name: str
    dataset_id: str | None = None
    generation_objectives: str | None = None
    description: str | None = None
    extrapolate_values: bool = False
    extrapolate_axes: bool = False
    generate_distributions: bool = True
    generate_conditional_distributions: bool = False
    analysis_model: str | None = None

    def analysis_params(self) -> dict[str, object]:
        """The parameters stored with the spec and handed to its analysis job."""
        params: dict[str, object] = {
            "extrapolate_values": self.extrapolate_values,
            "extrapolate_axes": self.extrapolate_axes,
            "generate_distributions": self.generate_distributions,
            "generate_conditional_distributions": self.generate_conditional_distributions,
            "spec_generation_model_name": self.analysis_model,
        }
        if self.generation_objectives is not None:
            params["generation_objectives"] = self.generation_objectives
        return params


@dataclass(frozen=True, kw_only=True)
class SpecSummary:
    """A spec as listed: its analysis status and the seed dataset it was written from (None: seedless)."""

    id: str
    name: str
    description: str | None
    status: str
    dataset_id: str | None
    dataset_name: str | None
    dataset_type: str
    created_at: dt.datetime


@dataclass(frozen=True, kw_only=True)
class SpecVersion:
    """One stored version of a spec's YAML (1 is the analysis' own, each edit adds one)."""

    version: int
    content_yaml: str
    created_at: dt.datetime


@dataclass(frozen=True, kw_only=True)
class SpecDetail(SpecSummary):
    """A spec with its latest YAML (None until SUCCEEDED), why its analysis failed, and its versions.

    `versions` is None unless they were asked for.
    """

    error: str | None
    content_yaml: str | None
    runtime_params: Mapping[str, object]
    updated_at: dt.datetime
    created_by_email: str
    versions: tuple[SpecVersion, ...] | None = None


#: How many times an edit is stored again after losing the race for a version number.
_VERSION_ATTEMPTS = 20


class SpecService:
    """The spec operations of one tenant's requests; see the module docstring."""

    def __init__(self, store: Store, blobs: BlobStore, prices: PriceTable | None = None) -> None:
        self._store, self._blobs = store, blobs
        self._prices = prices or PriceTable()

    def create(self, tenant: TenantView, draft: SpecDraft) -> SpecDetail:
        """Store the spec and queue its analysis; the answer reads PROCESSING."""
        try:
            with self._store.session() as session:
                spec_id = self._insert(session, tenant, draft)
        except IntegrityError:  # a concurrent create took the name between the check and the insert
            raise NameTakenError("spec", draft.name) from None
        return self.get(tenant.id, spec_id)

    def _insert(self, session: Session, tenant: TenantView, draft: SpecDraft) -> str:
        if spec_name_taken(session, tenant.id, draft.name):
            raise NameTakenError("spec", draft.name)
        dataset = None
        if draft.dataset_id is not None:
            dataset = get_seed_dataset(session, tenant.id, draft.dataset_id)
            if dataset is None:
                raise NotFoundError("seed dataset", draft.dataset_id)
        now = utcnow()
        params = draft.analysis_params()
        spec = Spec(
            id=new_id("spec"),
            tenant_id=tenant.id,
            name=draft.name,
            description=draft.description,
            dataset_id=dataset.id if dataset else None,
            dataset_type=dataset.dataset_type if dataset else "MULTI_FILE",
            generation_objectives=draft.generation_objectives,
            runtime_params=params,
            job_id=None,
            created_by_email=creator_email(tenant),
            created_at=now,
            updated_at=now,
        )
        session.add(spec)
        session.flush()
        reserved = reserve(session, tenant.id, self._prices.minimum_credits, "a spec analysis")
        job = add_job(
            session,
            tenant.id,
            SPEC_JOB,
            spec.id,
            dict(params),
            draft.analysis_model or "",
            credits_reserved=reserved,
        )
        spec.job_id = job.id
        return spec.id

    def get(self, tenant_id: str, spec_id: str, include_versions: bool = False) -> SpecDetail:
        with self._store.session() as session:
            spec = self._spec(session, tenant_id, spec_id)
            return spec_detail(session, spec, include_versions=include_versions)

    def list(self, tenant_id: str) -> list[SpecSummary]:
        with self._store.session() as session:
            return [spec_summary(session, spec) for spec in list_specs(session, tenant_id)]

    def update(self, tenant_id: str, spec_id: str, text: str) -> SpecDetail:
        """Validate the YAML and store it as the next version, keeping the server-owned metadata.

        Concurrent edits each get a version of their own: an edit that lost the race for a version number
        (the unique constraint on spec and version) is stored again as the next one.
        """
        for _ in range(_VERSION_ATTEMPTS - 1):
            try:
                return self._add_version(tenant_id, spec_id, text)
            except IntegrityError:
                continue
        try:
            return self._add_version(tenant_id, spec_id, text)
        except IntegrityError:
            raise CodedError(
                f"spec {spec_id!r} is being edited by many requests at once; send the edit again",
                "conflict",
            ) from None

    def _add_version(self, tenant_id: str, spec_id: str, text: str) -> SpecDetail:
        with self._store.session() as session:
            spec = self._spec(session, tenant_id, spec_id)
            status = spec_status(session, spec)
            latest = latest_version(session, spec.id)
            if status != "SUCCEEDED" or latest is None:
                raise CodedError(
                    f"spec {spec_id!r} is {status}: it can be edited once its analysis succeeded",
                    "spec_not_ready",
                )
            content = with_metadata(text, _metadata(latest.content_yaml))
            add_version(session, spec, content)
            return spec_detail(session, spec)

    def delete(self, tenant_id: str, spec_id: str, force: bool) -> None:
        """Delete the spec; with runs only when `force` (the runs, their files and evaluations go too)."""
        with self._store.session() as session:
            spec = self._spec(session, tenant_id, spec_id)
            run_ids = run_ids_of(session, spec.id)
            if run_ids and not force:
                raise CodedError(
                    f"spec {spec_id!r} has {len(run_ids)} run(s); delete them first or pass force=true",
                    "has_runs",
                )
            keys = delete_runs(session, tenant_id, run_ids)
            if spec.job_id is not None:
                cancel_job(session, tenant_id, spec.job_id)
            delete_spec(session, spec)
        for key in keys:
            self._blobs.delete(key)

    @staticmethod
    def _spec(session: Session, tenant_id: str, spec_id: str) -> Spec:
        spec = get_spec(session, tenant_id, spec_id)
        if spec is None:
            raise NotFoundError("spec", spec_id)
        return spec


def _metadata(content_yaml: str) -> dict[str, Any]:
    doc = yaml.safe_load(content_yaml)
    meta = doc.get("metadata") if isinstance(doc, dict) else None
    return dict(meta) if isinstance(meta, dict) else {}


def spec_status(session: Session, spec: Spec) -> str:
    return _status_of(get_job(session, spec.tenant_id, spec.job_id))


def _status_of(job: Run | None) -> str:
    return public_status(job.status if job else None, SPEC_STATUS)


def _error(job: Run | None) -> str | None:
    if job is None or job.status in ("queued", "running", "succeeded"):
        return None
    message = (job.error_data or {}).get("message")
    return str(message) if message else f"the spec analysis {job.status}"


def _dataset_name(session: Session, spec: Spec) -> str | None:
    dataset = session.get(SeedDataset, spec.dataset_id) if spec.dataset_id else None
    return dataset.name if dataset else None


def spec_summary(session: Session, spec: Spec, *, status: str | None = None) -> SpecSummary:
    return SpecSummary(
        id=spec.id,
        name=spec.name,
        description=spec.description,
        status=spec_status(session, spec) if status is None else status,
        dataset_id=spec.dataset_id,
        dataset_name=_dataset_name(session, spec),
        dataset_type=spec.dataset_type,
        created_at=spec.created_at,
    )


def _version(row: SpecVersionRow) -> SpecVersion:
    return SpecVersion(version=row.version, content_yaml=row.content_yaml, created_at=row.created_at)


def spec_detail(session: Session, spec: Spec, *, include_versions: bool = False) -> SpecDetail:
    """The spec of create, retrieve and update.

    The analysis job is read once: its status, its error and whether the versions are read all come from
    that one read, so a job that finishes while the spec is read cannot show SUCCEEDED without content.
    """
    job = get_job(session, spec.tenant_id, spec.job_id)
    status = _status_of(job)
    versions = versions_of(session, spec.id) if status == "SUCCEEDED" else []
    summary = spec_summary(session, spec, status=status)
    return SpecDetail(
        **vars(summary),
        error=_error(job),
        content_yaml=versions[-1].content_yaml if versions else None,
        runtime_params=dict(spec.runtime_params),
        updated_at=spec.updated_at,
        created_by_email=spec.created_by_email,
        versions=tuple(_version(v) for v in versions) if include_versions else None,
    )
