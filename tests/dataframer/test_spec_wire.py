"""The spec object reads its analysis job once, so a job that finishes meanwhile cannot tear the answer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from datamill.services.generation import specs as dataframer_specs
from datamill.services.generation.specs import SpecDraft, SpecService
from datamill.services.tenants import TenantView
from datamill.store import LocalBlobStore, Store
from datamill.store.generation_models import Spec
from datamill.store.specs import add_version
from datamill.store.tenants import add_tenant


def test_a_job_finishing_while_the_spec_is_read_never_shows_succeeded_without_content(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = Store.from_url(f"sqlite:///{tmp_path / 'db.sqlite'}")
    store.migrate()
    with store.session() as session:
        row = add_tenant(session, "acme", 100.0)
        tenant = TenantView.of(row)
    service = SpecService(store, LocalBlobStore(tmp_path / "blobs"))
    spec_id = service.create(tenant, SpecDraft(name="emails", generation_objectives="Short emails")).id

    real_get_job = dataframer_specs.get_job
    reads: list[str] = []

    def get_job_then_finish(session: Any, tenant_id: str, job_id: str | None) -> Any:
        """The job as it is now; after the first read, the worker finishes it in its own transaction."""
        job = real_get_job(session, tenant_id, job_id)
        reads.append(job.status)
        if len(reads) == 1:
            with store.session() as worker:
                spec = worker.get(Spec, spec_id)
                add_version(worker, spec, "name: done\n")
                real_get_job(worker, tenant_id, job_id).status = "succeeded"
        return job

    monkeypatch.setattr(dataframer_specs, "get_job", get_job_then_finish)
    spec = service.get(tenant.id, spec_id)
    assert (spec.status, spec.content_yaml) == ("PROCESSING", None)
    assert reads == ["queued"]
    monkeypatch.setattr(dataframer_specs, "get_job", real_get_job)
    done = service.get(tenant.id, spec_id)
    assert (done.status, done.content_yaml) == ("SUCCEEDED", "name: done\n")
