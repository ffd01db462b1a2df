"""A dataset's quality evaluation (Adaption API): the before/after grade of its latest run.

``status`` follows the run: null before any run; ``pending`` while the run is queued or processing rows;
``running`` while the judge grades the sample; then ``succeeded``, ``failed`` (the judge could not grade:
``raw_results.error`` says why) or ``skipped`` (the run failed before it was graded, evaluation is turned
off, or the run is a translate/localize run, which is not graded). ``quality`` is set once the evaluation
succeeded; ``raw_results`` (rubric, sample, per-side details and every per-row judgement) once it ended.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from datamill.services.datasets.catalog import DatasetService
from datamill.store import Run, Store
from datamill.store import runs as repo

#: Evaluation statuses after which nothing changes until the next run.
FINAL = ("succeeded", "failed", "skipped")


@dataclass(frozen=True)
class EvaluationView:
    """The evaluation of a dataset in the wire's shape."""

    dataset_id: str
    status: str | None = None
    quality: dict[str, Any] | None = None
    raw_results: dict[str, Any] | None = None


def evaluation_status(run: Run) -> str | None:
    """The evaluation status a run shows (module docstring)."""
    if run.evaluation_status is not None:
        return run.evaluation_status
    return "skipped" if run.status in ("failed", "cancelled") else "pending"


def quality_of(run: Run) -> dict[str, Any] | None:
    """The run's ``quality`` once its evaluation succeeded, else None."""
    report = run.evaluation or {}
    quality = report.get("quality")
    return quality if run.evaluation_status == "succeeded" and isinstance(quality, dict) else None


class EvaluationService:
    """Reads evaluations; the worker writes them with the run's outcome."""

    def __init__(self, store: Store, datasets: DatasetService) -> None:
        self._store, self._datasets = store, datasets

    def get(self, tenant_id: str, dataset_id: str) -> EvaluationView:
        """The evaluation of the dataset's latest run; raises NotFoundError for another tenant's dataset."""
        view = self._datasets.get(tenant_id, dataset_id)
        if view.run_id is None:
            return EvaluationView(dataset_id=view.id)
        with self._store.session() as session:
            run = repo.get_run(session, tenant_id, view.run_id)
        if run is None:
            return EvaluationView(dataset_id=view.id)
        status = evaluation_status(run)
        raw = (run.evaluation or {}).get("raw_results") if status in FINAL else None
        return EvaluationView(view.id, status, quality_of(run), raw if isinstance(raw, dict) else None)
