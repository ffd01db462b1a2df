"""Evaluations of generation runs in the Dataframer-compatible API: create (a job), read, list per run.

Creating one checks the body (``run_id`` required; ``evaluation_model`` optional, one of the API's
evaluation models), that the run is the tenant's (else 404) and that it SUCCEEDED (else 400, code
``run_not_succeeded``), then queues a ``GENERATION_EVAL_JOB`` (`datamill.services.jobs.generation_eval`).
Without
``evaluation_model`` the job uses the server's model (``DATAMILL_MODEL``), else the routing file's
default. Status is the job's: PENDING, PROCESSING, SUCCEEDED or FAILED (with ``error_message``).

The evaluation object carries the SDK's fields (``distribution_analysis`` null and
``sample_classifications`` empty until it SUCCEEDED) and, beyond them, ``conformance_score``,
``conformant_areas``, ``non_conformant_areas``, ``evaluation_model``, ``total_samples`` and
``samples_analyzed`` (see `datamill.pipelines.generation_eval_report` for the definitions), plus
``samples_classified`` while it runs. Each sample classification also says what was drawn for the sample
(``drawn_properties``), whether it matched (``conformant``) and, when its classification failed, ``error``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from datamill.core.credits import PriceTable
from datamill.core.dataframer_models import EVALUATION_MODELS
from datamill.core.fields import Issues, read_object, read_str
from datamill.services.errors import NotFoundError
from datamill.services.generation.common import CodedError, creator_email, iso
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

CREATE_FIELDS = ("run_id", "evaluation_model")


def parse_evaluation_create(body: object) -> tuple[str, str | None]:
    """``(run_id, evaluation_model)`` from the create body; raises `ValidationError` naming each field."""
    issues = Issues()
    fields = read_object(body, "", CREATE_FIELDS, issues)
    if fields is None:
        issues.raise_if_any()
        fields = {}
    run_id = read_str(fields.get("run_id"), "run_id", issues)
    if fields.get("run_id") is None:
        issues.add("run_id", "is required: the id of a SUCCEEDED run")
    model = read_str(fields.get("evaluation_model"), "evaluation_model", issues)
    if model is not None and model not in EVALUATION_MODELS:
        issues.add("evaluation_model", f"{model!r} is not one of: {', '.join(EVALUATION_MODELS)}")
    issues.raise_if_any()
    assert run_id is not None
    return run_id, model


class EvaluationService:
    """The evaluation operations of one tenant's requests; see the module docstring."""

    def __init__(self, store: Store, prices: PriceTable | None = None) -> None:
        self._store = store
        self._prices = prices or PriceTable()

    def create(self, tenant: TenantView, body: object) -> dict[str, Any]:
        run_id, model = parse_evaluation_create(body)
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
            return evaluation_wire(session, evaluation)

    def get(self, tenant_id: str, evaluation_id: str) -> dict[str, Any]:
        with self._store.session() as session:
            evaluation = get_evaluation(session, tenant_id, evaluation_id)
            if evaluation is None:
                raise NotFoundError("evaluation", evaluation_id)
            return evaluation_wire(session, evaluation)

    def list_for_run(self, tenant_id: str, run_id: str) -> list[dict[str, Any]]:
        with self._store.session() as session:
            tenant_run(session, tenant_id, run_id)
            return [evaluation_item(session, e) for e in list_evaluations(session, tenant_id, run_id)]


def evaluation_item(session: Session, evaluation: GenerationEvaluation) -> dict[str, Any]:
    """The list item: ``{id, run_id, status, created_at, completed_at, created_by_email}``."""
    job = get_job(session, evaluation.tenant_id, evaluation.job_id)
    return _item(evaluation, job)


def evaluation_wire(session: Session, evaluation: GenerationEvaluation) -> dict[str, Any]:
    """The evaluation object (see the module docstring)."""
    job = get_job(session, evaluation.tenant_id, evaluation.job_id)
    body = _item(evaluation, job)
    result = evaluation.result if body["status"] == "SUCCEEDED" else None
    body["error_message"] = _error(job)
    body["evaluation_model"] = evaluation.evaluation_model
    body["distribution_analysis"] = result["distribution_analysis"] if result else None
    body["sample_classifications"] = result["sample_classifications"] if result else []
    for key in ("conformance_score", "total_samples", "samples_analyzed"):
        body[key] = result.get(key) if result else None
    body["conformant_areas"] = result["conformant_areas"] if result else []
    body["non_conformant_areas"] = result["non_conformant_areas"] if result else []
    if job is not None and body["status"] == "PROCESSING":
        body["samples_classified"] = job.processed_rows or 0
        body["total_samples"] = job.total_rows
    return body


def _item(evaluation: GenerationEvaluation, job: Run | None) -> dict[str, Any]:
    return {
        "id": evaluation.id,
        "run_id": evaluation.run_id,
        "status": public_status(job.status if job else None, EVALUATION_STATUS),
        "created_at": iso(evaluation.created_at),
        "completed_at": iso(evaluation.completed_at),
        "created_by_email": evaluation.created_by_email,
    }


def _error(job: Run | None) -> str | None:
    if job is None:
        return "the evaluation's job is gone"
    if job.status not in ("failed", "cancelled"):
        return None
    return str((job.error_data or {}).get("message") or "the evaluation failed")
