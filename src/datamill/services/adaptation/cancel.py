"""Cancelling an adaptation (or translate/localize) run that is queued or processing rows.

`RunCanceller.cancel` does it all in one transaction:

1. `datamill.store.jobs.cancel_job` marks the run ``cancelled`` only while it is still queued or running
   (else `ConflictError`, 409: it already ended). A worker executing it notices at its next heartbeat that
   its lease is gone and stops; it can no longer record an outcome (`finish_run` needs the lease).
2. The run is settled as the worker would have settled a failed one: ``error_data`` code ``E0304``
   ("the run was cancelled"), the output rows of the batches already finished, the evaluation
   ``skipped``, the credits of those rows (and of the model spend so far) charged and the rest of the
   reservation given back.
3. The dataset the run was writing becomes ``failed`` with the same ``error_data``; a translate/localize
   dataset that was being made is marked read, holding the rows already produced.

The rows already produced stay downloadable, exactly as for a failed run
(`datamill.services.datasets.downloads`).
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import update

from datamill.core.error_codes import ErrorCode, error_data
from datamill.runners.outputs import output_rows
from datamill.services.adaptation.plans import ADAPT
from datamill.services.errors import ConflictError, NotFoundError
from datamill.services.settings.runs import RunSettings
from datamill.store import Dataset, Store, Tenant, utcnow
from datamill.store import runs as repo
from datamill.store.jobs import cancel_job

#: The ``error_data.code`` of a cancelled run and of the dataset it was writing.
CANCELLED_MESSAGE = "the run was cancelled"


class RunCanceller:
    """Cancels runs of one store; `settings` price the rows already produced."""

    def __init__(self, store: Store, settings: RunSettings, data_dir: Path) -> None:
        self._store, self._settings, self._data_dir = store, settings, data_dir

    def cancel(self, tenant_id: str, run_id: str) -> str:
        """Cancel the tenant's run `run_id`; returns the id of the dataset it was writing.

        Raises:
            NotFoundError: no such run for this tenant (another tenant's id included).
            ConflictError: the run already ended (succeeded, failed or cancelled).
        """
        root = self._settings.run_location(self._data_dir, run_id)
        with self._store.session() as session:
            run = repo.get_run(session, tenant_id, run_id)
            if run is None:
                raise NotFoundError("run", run_id)
            if not cancel_job(session, tenant_id, run.id):
                raise ConflictError(
                    f"run {run_id!r} is {run.status}; only a queued or running run can be cancelled"
                )
            session.refresh(run)
            rows = output_rows(root)
            cost = float(run.cost_usd or 0.0)
            used = self._settings.price_table.credits(rows, cost) if rows or cost else 0.0
            used = min(used, float(run.credits_reserved or 0.0))
            error = error_data(ErrorCode.CANCELLED, CANCELLED_MESSAGE)
            run.rows_out, run.credits_used, run.error_data = rows, used, error
            run.evaluation_status = "skipped"
            run.evaluation = {
                "status": "skipped",
                "quality": None,
                "raw_results": {"reason": CANCELLED_MESSAGE},
            }
            # `cancel_job` gave the whole reservation back; what was produced is charged now.
            session.execute(
                update(Tenant).where(Tenant.id == tenant_id).values(credits=Tenant.credits - used)
            )
            dataset = session.get(Dataset, run.dataset_id) if run.dataset_id is not None else None
            if dataset is not None and dataset.run_id == run.id:
                dataset.status, dataset.error_data, dataset.updated_at = "failed", error, utcnow()
                if dataset.ingest_state == repo.DERIVING:
                    dataset.ingest_state = "ready"
                    dataset.row_count = rows if run.kind != ADAPT else dataset.row_count
            return str(run.dataset_id or run.source_dataset_id)
