"""A run read just before its job ends shows the results its end wrote, never SUCCEEDED with empty results.

The job's end and the run's results commit together, but a view reads the run first and the job after: a
job that ends between the two reads must not give a SUCCEEDED status beside the results of before. Over a
real store (SQLite, and PostgreSQL when `DATAMILL_TEST_POSTGRES_URL` is set).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pg_helpers import KINDS, migrated_store

from datamill.services.anonymization.view import run_detail, tenant_anonymization
from datamill.services.tenants import TenantService
from datamill.store import Store, utcnow
from datamill.store.anonymization_models import AnonymizationRun
from datamill.store.anonymization_runs import add_anonymization_run, get_anonymization_run_any_tenant
from datamill.store.ids import new_id
from datamill.store.jobs import add_job, get_job


@pytest.fixture(params=KINDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    with migrated_store(str(request.param), tmp_path) as made:
        yield made


def test_an_anonymization_that_ends_between_the_reads_shows_its_results(store: Store) -> None:
    tenant = TenantService(store).create_key(new_id("t")).tenant
    with store.session() as session:
        job = add_job(session, tenant.id, "anonymization", "ds_1", {})
        run = add_anonymization_run(
            session,
            AnonymizationRun(
                id=new_id("anonrun"),
                tenant_id=tenant.id,
                dataset_id="ds_1",
                dataset_name="people",
                detection_method="pii_m1",
                llm_model_name=None,
                threshold=0.35,
                request={"pii_types": ["person"]},
                results=None,
                job_id=job.id,
                created_by_email="a@example.com",
                created_at=utcnow(),
            ),
        )
        run_id, job_id = run.id, job.id

    with store.session() as reader:
        seen = tenant_anonymization(reader, tenant.id, run_id)  # the reader has the run, not yet the job
        assert seen.results is None
        with store.session() as worker:  # the job ends: status and results in one commit
            ended = get_anonymization_run_any_tenant(worker, run_id)
            assert ended is not None
            ended.results = {"samples_processed": 20, "entity_summary": {"person": 20}, "entities_found": []}
            ended.completed_at = utcnow()
            finished = get_job(worker, tenant.id, job_id)
            assert finished is not None
            finished.status = "succeeded"
        detail = run_detail(reader, seen)

    assert detail.status == "SUCCEEDED"
    assert detail.results is not None
    assert detail.results.samples_processed == 20
    assert dict(detail.results.entity_summary) == {"person": 20}
