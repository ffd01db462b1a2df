"""Evaluations of generation runs (Dataframer-compatible): create, retrieve, list a run's evaluations.

Handlers are plain functions (FastAPI runs them in its thread pool, as they use the database); they only
translate (`dataframer_gen_wire`): `datamill.services.generation.evaluations` holds the rules.
"""

from __future__ import annotations

from fastapi import APIRouter

from datamill.server.auth import Context, CurrentTenant, JsonBody
from datamill.server.compat.dataframer_gen_wire import (
    evaluation_item_public,
    evaluation_public,
    parse_evaluation_create,
)
from datamill.server.compat.dataframer_schemas import EvaluationItemPublic, EvaluationPublic
from datamill.services.generation.evaluations import EvaluationService


def _service(context: Context) -> EvaluationService:
    return EvaluationService(context.store, context.runs.settings.price_table)


router = APIRouter(prefix="/api/dataframer", tags=["dataframer evaluations"])


@router.post(
    "/evaluations/", status_code=201, response_model=EvaluationPublic, response_model_exclude_unset=True
)
def create_evaluation(context: Context, tenant: CurrentTenant, body: JsonBody = None) -> EvaluationPublic:
    """Queue an evaluation of a SUCCEEDED run; poll it until SUCCEEDED or FAILED."""
    run_id, model = parse_evaluation_create(body)
    return evaluation_public(_service(context).create(tenant, run_id, model))


@router.get(
    "/evaluations/{evaluation_id}/", response_model=EvaluationPublic, response_model_exclude_unset=True
)
def retrieve_evaluation(evaluation_id: str, context: Context, tenant: CurrentTenant) -> EvaluationPublic:
    """The evaluation, with its analysis once it SUCCEEDED."""
    return evaluation_public(_service(context).get(tenant.id, evaluation_id))


@router.get("/runs/{run_id}/evaluations/", response_model=list[EvaluationItemPublic])
def list_run_evaluations(run_id: str, context: Context, tenant: CurrentTenant) -> list[EvaluationItemPublic]:
    """The run's evaluations, newest first (a bare array)."""
    return [evaluation_item_public(e) for e in _service(context).list_for_run(tenant.id, run_id)]
