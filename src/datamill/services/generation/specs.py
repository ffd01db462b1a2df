"""Specs of the Dataframer-compatible API: create (an analysis job), read, edit (new versions), delete.

Creating a spec stores it and queues a ``SPEC_JOB`` (`datamill.services.jobs.spec_analysis`), which writes
version 1; until then the spec reads PROCESSING, and FAILED with ``error`` if the job failed. An edit (PUT)
is validated as a whole spec and stored as the next version, with the server-owned ``metadata`` section
of the latest version put back in place of whatever the user sent. Deleting a spec that has runs needs
``force``, which deletes the runs too (`datamill.services.generation.run_cleanup`).
"""

from __future__ import annotations

from typing import Any

import yaml
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from datamill.core.credits import PriceTable
from datamill.core.dataframer_models import SPEC_MODELS
from datamill.core.fields import Issues, read_bool, read_object, read_str
from datamill.core.spec import with_metadata
from datamill.services.errors import NotFoundError
from datamill.services.generation.common import CodedError, NameTakenError, creator_email, iso
from datamill.services.generation.credits import reserve
from datamill.services.generation.run_cleanup import delete_runs
from datamill.services.tenants import TenantView
from datamill.store import BlobStore, Store
from datamill.store.generation_models import SPEC_JOB, SPEC_STATUS, SeedDataset, Spec, public_status
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

_FLAGS = (
    "extrapolate_values",
    "extrapolate_axes",
    "generate_distributions",
    "generate_conditional_distributions",
)
CREATE_FIELDS = (
    "name",
    "dataset_id",
    "generation_objectives",
    "description",
    *_FLAGS,
    "spec_generation_model_name",
)


def parse_spec_create(body: object) -> dict[str, Any]:
    """The validated create body: name, dataset_id, objectives, description, flags, model."""
    issues = Issues()
    values = read_object(body, "", CREATE_FIELDS, issues) or {}
    out: dict[str, Any] = {"name": read_str(values.get("name"), "name", issues, max_length=512)}
    if values.get("name") is None:
        issues.add("name", "is required")
    for key in ("dataset_id", "generation_objectives", "description"):
        out[key] = read_str(values.get(key), key, issues)
    flags = {key: read_bool(values.get(key), key, issues) for key in _FLAGS}
    flags["generate_distributions"] = flags["generate_distributions"] is not False  # default on
    for key in ("extrapolate_values", "extrapolate_axes", "generate_conditional_distributions"):
        flags[key] = bool(flags[key])
    if flags["generate_conditional_distributions"] and not flags["generate_distributions"]:
        issues.add("generate_conditional_distributions", "requires generate_distributions to be true")
    if values.get("dataset_id") is None and values.get("generation_objectives") is None:
        issues.add("generation_objectives", "is required for a seedless spec (one without dataset_id)")
    model = read_str(values.get("spec_generation_model_name"), "spec_generation_model_name", issues)
    if model is not None and model not in SPEC_MODELS:
        issues.add("spec_generation_model_name", f"must be one of {', '.join(SPEC_MODELS)}; got {model!r}")
    issues.raise_if_any()
    return {**out, **flags, "spec_generation_model_name": model}


#: How many times an edit is stored again after losing the race for a version number.
_VERSION_ATTEMPTS = 20


class SpecService:
    """The spec operations of one tenant's requests; see the module docstring."""

    def __init__(self, store: Store, blobs: BlobStore, prices: PriceTable | None = None) -> None:
        self._store, self._blobs = store, blobs
        self._prices = prices or PriceTable()

    def create(self, tenant: TenantView, body: object) -> dict[str, Any]:
        """Store the spec and queue its analysis; the answer reads PROCESSING."""
        fields = parse_spec_create(body)
        name = fields["name"]
        try:
            with self._store.session() as session:
                spec_id = self._insert(session, tenant, fields)
        except IntegrityError:  # a concurrent create took the name between the check and the insert
            raise NameTakenError("spec", name) from None
        return self.get(tenant.id, spec_id)

    def _insert(self, session: Session, tenant: TenantView, fields: dict[str, Any]) -> str:
        if spec_name_taken(session, tenant.id, fields["name"]):
            raise NameTakenError("spec", fields["name"])
        dataset = None
        if fields["dataset_id"] is not None:
            dataset = get_seed_dataset(session, tenant.id, fields["dataset_id"])
            if dataset is None:
                raise NotFoundError("seed dataset", fields["dataset_id"])
        now = utcnow()
        params = {key: fields[key] for key in (*_FLAGS, "spec_generation_model_name")}
        if fields["generation_objectives"] is not None:
            params["generation_objectives"] = fields["generation_objectives"]
        spec = Spec(
            id=new_id("spec"),
            tenant_id=tenant.id,
            name=fields["name"],
            description=fields["description"],
            dataset_id=dataset.id if dataset else None,
            dataset_type=dataset.dataset_type if dataset else "MULTI_FILE",
            generation_objectives=fields["generation_objectives"],
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
            fields["spec_generation_model_name"] or "",
            credits_reserved=reserved,
        )
        spec.job_id = job.id
        return spec.id

    def get(self, tenant_id: str, spec_id: str, include_versions: bool = False) -> dict[str, Any]:
        with self._store.session() as session:
            spec = self._spec(session, tenant_id, spec_id)
            return spec_wire(session, spec, include_versions=include_versions)

    def list(self, tenant_id: str) -> list[dict[str, Any]]:
        with self._store.session() as session:
            return [spec_list_item(session, spec) for spec in list_specs(session, tenant_id)]

    def update(self, tenant_id: str, spec_id: str, body: object) -> dict[str, Any]:
        """Validate the YAML and store it as the next version, keeping the server-owned metadata.

        Concurrent edits each get a version of their own: an edit that lost the race for a version number
        (the unique constraint on spec and version) is stored again as the next one.
        """
        text = read_content_yaml(body)
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

    def _add_version(self, tenant_id: str, spec_id: str, text: str) -> dict[str, Any]:
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
            return spec_wire(session, spec)

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


def read_content_yaml(body: object) -> str:
    """The ``content_yaml`` of an update body; `ValidationError` naming the field if missing or bad."""
    issues = Issues()
    values = read_object(body, "", ("content_yaml",), issues) or {}
    text = read_str(values.get("content_yaml"), "content_yaml", issues)
    if values.get("content_yaml") is None:
        issues.add("content_yaml", "is required: the full spec YAML")
    issues.raise_if_any()
    assert text is not None
    return text


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


def spec_list_item(session: Session, spec: Spec, *, status: str | None = None) -> dict[str, Any]:
    return {
        "id": spec.id,
        "name": spec.name,
        "description": spec.description,
        "status": spec_status(session, spec) if status is None else status,
        "dataset_id": spec.dataset_id,
        "dataset_name": _dataset_name(session, spec),
        "dataset_type": spec.dataset_type,
        "created_at": iso(spec.created_at),
    }


def spec_wire(session: Session, spec: Spec, *, include_versions: bool = False) -> dict[str, Any]:
    """The spec object of create, retrieve and update.

    The analysis job is read once: its status, its error and whether the versions are read all come from
    that one read, so a job that finishes while the object is built cannot show SUCCEEDED without content.
    """
    job = get_job(session, spec.tenant_id, spec.job_id)
    status = _status_of(job)
    versions = versions_of(session, spec.id) if status == "SUCCEEDED" else []
    wire = spec_list_item(session, spec, status=status) | {
        "error": _error(job),
        "content_yaml": versions[-1].content_yaml if versions else None,
        "runtime_params": dict(spec.runtime_params),
        "updated_at": iso(spec.updated_at),
        "created_by_email": spec.created_by_email,
    }
    if include_versions:
        wire["versions"] = [
            {"content_yaml": v.content_yaml, "created_at": iso(v.created_at), "version": v.version}
            for v in versions
        ]
    return wire
