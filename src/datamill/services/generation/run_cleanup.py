"""Deleting generation runs with everything hanging off them: jobs stopped, rows deleted, blobs listed."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy.orm import Session

from datamill.store.generation_runs import (
    delete_generation_run,
    evaluations_of_run,
    get_generation_run,
    zip_blob_key,
)
from datamill.store.jobs import cancel_job


def delete_runs(session: Session, tenant_id: str, run_ids: Iterable[str]) -> list[str]:
    """Cancel the runs' jobs (generation, ZIP, evaluations), delete their rows and evaluations.

    Returns:
        The blob keys of their files and ZIPs, for the caller to delete once the transaction committed.
    """
    keys: list[str] = []
    for run_id in run_ids:
        run = get_generation_run(session, tenant_id, run_id)
        if run is None:
            continue
        jobs = [run.job_id, run.zip_job_id, *(e.job_id for e in evaluations_of_run(session, run.id))]
        for job_id in jobs:
            if job_id is not None:
                cancel_job(session, tenant_id, job_id)
        if run.zip_job_id is not None:
            keys.append(zip_blob_key(tenant_id, run.id, run.zip_job_id))
        keys.extend(delete_generation_run(session, run))
    return keys
