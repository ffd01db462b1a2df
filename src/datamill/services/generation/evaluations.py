"""Evaluations of generation runs: create (a job), read, list per run.

Creating one checks that the run is the tenant's (else 404) and that it SUCCEEDED (else 400, code
``run_not_succeeded``), then queues a ``GENERATION_EVAL_JOB`` (`datamill.services.jobs.generation_eval`).
Without an evaluation model the job uses the server's model (``DATAMILL_MODEL``), else the routing file's
default. Status is the job's: PENDING, PROCESSING, SUCCEEDED or FAILED (with ``error_message``).

An `EvaluationDetail` carries, once it SUCCEEDED, the distribution analysis and sample classifications,
the ``conformance_score``, ``conformant_areas``, ``non_conformant_areas``, ``total_samples`` and
``samples_analyzed`` (see `datamill.pipelines.generation_eval_report` for the definitions), plus
``samples_classified`` while it runs. Each sample classification also says what was drawn for the sample
(``drawn_properties``), whether it matched (``conformant``) and, when its classification failed, ``error``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from datamill.core.credits import PriceTable
from datamill.services.errors import NotFoundError
from datamill.services.generation.common import CodedError, creator_email
from datamill.services.generation.credits import reserve
from datamill.services.generation.run_view import tenant_run
from datamill.services.tenants import TenantView
from datamill.store import Store
from datamill.store.generation_evals import (
    EVALUATION_STATUS,
    add_evaluation,
    get_evaluation,
    list_evaluations,
)
from datamill.store.generation_models import (
    GENERATION_EVAL_JOB,
    RUN_STATUS,
    GenerationEvaluation,
    public_status,
)
from datamill.store.ids import new_id
from datamill.store.jobs import add_job, get_job
from datamill.store.models import Run, utcnow


@dataclass(frozen=True, kw_only=True)
class EvaluationSummary:
    """An evaluation as listed: which run it grades and where its job stands."""

    id: str
    run_id: str
    status: str
    created_at: dt.datetime
    completed_at: dt.datetime | None
    created_by_email: str


@dataclass(frozen=True, kw_only=True)
class EvaluationDetail(EvaluationSummary):
    """An evaluation with its results once SUCCEEDED (see the module docstring).

    `distribution_analysis` (one entry per spec property) is None and `sample_classifications` empty until
    then; `samples_classified` is set only while it runs.
    """

    error_message: str | None
    evaluation_model: str | None
    distribution_analysis: tuple[Mapping[str, Any], ...] | None
    sample_classifications: tuple[Mapping[str, Any], ...]
    conformance_score: float | None
    total_samples: int | None
    samples_analyzed: int | None
    conformant_areas: tuple[object, ...]
    non_conformant_areas: tuple[object, ...]
    samples_classified: int | None = None


class EvaluationService:
    """The evaluation operations of one tenant's requests; see the module docstring."""

    def __init__(self, store: Store, prices: PriceTable | None = None) -> None:
        self._store = store
        self._prices = prices or PriceTable()

    def create(self, tenant: TenantView, run_id: str, model: str | None = None) -> EvaluationDetail:
        """Queue an evaluation of the tenant's SUCCEEDED run `run_id` by `model` (None: the server's)."""
        with self._store.session() as session:
            run = tenant_run(session, tenant.id, run_id)
            job = get_job(session, tenant.id, run.job_id)
            status = public_status(job.status if job else None, RUN_STATUS)
            if status != "SUCCEEDED":
                raise CodedError(
                    f"run {run_id!r} is {status}; only a SUCCEEDED run can be evaluated",
                    "run_not_succeeded",
                    field="run_id",
                )
            evaluation = GenerationEvaluation(
                id=new_id("geneval"),
                tenant_id=tenant.id,
                run_id=run.id,
                evaluation_model=model,
                job_id="",
                result=None,
                created_by_email=creator_email(tenant),
                created_at=utcnow(),
                completed_at=None,
            )
            add_evaluation(session, evaluation)
            reserved = reserve(session, tenant.id, self._prices.minimum_credits, "an evaluation")
            evaluation.job_id = add_job(
                session,
                tenant.id,
                GENERATION_EVAL_JOB,
                evaluation.id,
                {},
                model or "",
                credits_reserved=reserved,
            ).id
            return evaluation_detail(session, evaluation)

    def get(self, tenant_id: str, evaluation_id: str) -> EvaluationDetail:
        with self._store.session() as session:
            evaluation = get_evaluation(session, tenant_id, evaluation_id)
            if evaluation is None:
                raise NotFoundError("evaluation", evaluation_id)
            return evaluation_detail(session, evaluation)

    def list_for_run(self, tenant_id: str, run_id: str) -> list[EvaluationSummary]:
        with self._store.session() as session:
            tenant_run(session, tenant_id, run_id)
            return [evaluation_summary(session, e) for e in list_evaluations(session, tenant_id, run_id)]


def evaluation_summary(session: Session, evaluation: GenerationEvaluation) -> EvaluationSummary:
    """The list item: which run, the job's status, when."""
    return _summary(evaluation, get_job(session, evaluation.tenant_id, evaluation.job_id))


def evaluation_detail(session: Session, evaluation: GenerationEvaluation) -> EvaluationDetail:
    """The evaluation with its results (see the module docstring)."""
    job = get_job(session, evaluation.tenant_id, evaluation.job_id)
    summary = _summary(evaluation, job)
    if summary.status in ("SUCCEEDED", "FAILED"):
        session.refresh(evaluation)  # it ended after the evaluation was read: show the result its end wrote
        summary = _summary(evaluation, job)
    result = evaluation.result if summary.status == "SUCCEEDED" else None
    running = job is not None and summary.status == "PROCESSING"
    total = result.get("total_samples") if result else None
    return EvaluationDetail(
        **vars(summary),
        error_message=_error(job),
        evaluation_model=evaluation.evaluation_model,
        distribution_analysis=tuple(result["distribution_analysis"]) if result else None,
        sample_classifications=tuple(result["sample_classifications"]) if result else (),
        conformance_score=result.get("conformance_score") if result else None,
        total_samples=job.total_rows if running and job is not None else total,
        samples_analyzed=result.get("samples_analyzed") if result else None,
        conformant_areas=tuple(result["conformant_areas"]) if result else (),
        non_conformant_areas=tuple(result["non_conformant_areas"]) if result else (),
        samples_classified=(job.processed_rows or 0) if running and job is not None else None,
    )


def _summary(evaluation: GenerationEvaluation, job: Run | None) -> EvaluationSummary:
    return EvaluationSummary(
        id=evaluation.id,
        run_id=evaluation.run_id,
        status=public_status(job.status if job else None, EVALUATION_STATUS),
        created_at=evaluation.created_at,
        completed_at=evaluation.completed_at,
        created_by_email=evaluation.created_by_email,
    )


def _error(job: Run | None) -> str | None:
    if job is None:
        return "the evaluation's job is gone"
    if job.status not in ("failed", "cancelled"):
        return None
    return str((job.error_data or {}).get("message") or "the evaluation failed")
