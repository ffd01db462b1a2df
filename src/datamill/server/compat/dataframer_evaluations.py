"""Evaluations of generation runs (Dataframer-compatible): create, retrieve, list a run's evaluations.

Handlers are plain functions (FastAPI runs them in its thread pool, as they use the database); they only
translate: `datamill.services.generation.evaluations` holds the rules and the wire shapes.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from datamill.server.auth import Context, CurrentTenant, JsonBody
from datamill.server.compat.dataframer_schemas import EvaluationItemPublic, EvaluationPublic
from datamill.services.generation.evaluations import EvaluationService

router = APIRouter(prefix="/api/dataframer", tags=["dataframer evaluations"])


@router.post(
    "/evaluations/", status_code=201, response_model=EvaluationPublic, response_model_exclude_unset=True
)
def create_evaluation(context: Context, tenant: CurrentTenant, body: JsonBody = None) -> dict[str, Any]:
    """Queue an evaluation of a SUCCEEDED run; poll it until SUCCEEDED or FAILED."""
    return EvaluationService(context.store, context.runs.settings.price_table).create(tenant, body)


@router.get(
    "/evaluations/{evaluation_id}/", response_model=EvaluationPublic, response_model_exclude_unset=True
)
def retrieve_evaluation(evaluation_id: str, context: Context, tenant: CurrentTenant) -> dict[str, Any]:
    """The evaluation, with its analysis once it SUCCEEDED."""
    return EvaluationService(context.store, context.runs.settings.price_table).get(tenant.id, evaluation_id)


@router.get("/runs/{run_id}/evaluations/", response_model=list[EvaluationItemPublic])
def list_run_evaluations(run_id: str, context: Context, tenant: CurrentTenant) -> list[dict[str, Any]]:
    """The run's evaluations, newest first (a bare array)."""
    return EvaluationService(context.store, context.runs.settings.price_table).list_for_run(tenant.id, run_id)
