"""Dataframer-compatible red-team routes: ``/api/dataframer/red-team-specs/`` and ``red-team-runs/``.

Specs: create, list (a bare array), retrieve, PATCH, delete. Runs: create, list (``?spec_id=``),
retrieve, ``status/`` (the same object, for polling), ``cancel/`` (POST; not in the SDK 0.19.2, which
reaches it with ``client.post``) and delete. Handlers only translate between the wire and
`datamill.services.redteam`; bodies are read as raw JSON so that the services name every bad field.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from pydantic import BaseModel

from datamill.server.auth import Context, CurrentTenant, JsonBody
from datamill.services.redteam.runs import RedTeamRunService
from datamill.services.redteam.specs import RedTeamSpecService

router = APIRouter(prefix="/api/dataframer", tags=["dataframer: red teaming"])


class RedTeamSpecItem(BaseModel):
    """A red-team spec in the list."""

    id: str
    name: str
    app_description: str
    domain_description: str
    created_at: str
    updated_at: str
    created_by_email: str


class RedTeamSpecOut(RedTeamSpecItem):
    """A red-team spec: what create, retrieve and PATCH answer."""

    concerns: str | None
    created_by: int | None


class EnhancedQuery(BaseModel):
    """One adversarial prompt: the plain query, its disguised form and the attack style used."""

    query: str
    adversarial_prompt: str
    attack_style: str


class RedTeamResults(BaseModel):
    """``{behaviour: [prompt]}``, the behaviours in the order the model listed them."""

    behavior_to_enhanced_queries: dict[str, list[EnhancedQuery]]


class RedTeamRunItem(BaseModel):
    """A red-team run in the list."""

    id: str
    status: str
    red_team_spec_id: str
    spec_name: str | None
    model_name: str
    number_of_behaviors: int
    number_of_prompts_per_behavior: int
    created_at: str
    completed_at: str | None
    created_by_email: str


class RedTeamRunOut(RedTeamRunItem):
    """A red-team run: what create, retrieve and status answer; ``results_json`` once SUCCEEDED."""

    created_by: int | None
    error_message: str | None
    task_id: str
    results_json: RedTeamResults | None
    prompts_completed: int
    total_prompts: int
    total_cost: float
    summary: dict[str, Any] | None


def _specs(context: Context) -> RedTeamSpecService:
    return RedTeamSpecService(context.store)


def _runs(context: Context) -> RedTeamRunService:
    return RedTeamRunService(context.store, context.runs.settings.price_table)


@router.post("/red-team-specs/", status_code=201, response_model=RedTeamSpecOut)
def create_red_team_spec(tenant: CurrentTenant, context: Context, body: JsonBody = None) -> dict[str, Any]:
    """Describe an LLM application to red-team; ``name`` is stored in snake_case, unique per tenant."""
    return _specs(context).create(tenant, body)


@router.get("/red-team-specs/", response_model=list[RedTeamSpecItem])
def list_red_team_specs(tenant: CurrentTenant, context: Context) -> list[dict[str, Any]]:
    """The tenant's red-team specs, newest first (a bare array, without ``concerns``)."""
    return _specs(context).list(tenant.id)


@router.get("/red-team-specs/{spec_id}/", response_model=RedTeamSpecOut)
def retrieve_red_team_spec(spec_id: str, tenant: CurrentTenant, context: Context) -> dict[str, Any]:
    """One red-team spec."""
    return _specs(context).get(tenant.id, spec_id)


@router.patch("/red-team-specs/{spec_id}/", response_model=RedTeamSpecOut)
def update_red_team_spec(
    spec_id: str, tenant: CurrentTenant, context: Context, body: JsonBody = None
) -> dict[str, Any]:
    """Change any of ``name``, ``app_description``, ``domain_description``, ``concerns``."""
    return _specs(context).update(tenant.id, spec_id, body)


@router.delete("/red-team-specs/{spec_id}/", status_code=204)
def delete_red_team_spec(spec_id: str, tenant: CurrentTenant, context: Context) -> Response:
    """Delete a red-team spec and its runs (running ones are cancelled)."""
    _specs(context).delete(tenant.id, spec_id)
    return Response(status_code=204)


@router.post("/red-team-runs/", status_code=201, response_model=RedTeamRunOut)
def create_red_team_run(tenant: CurrentTenant, context: Context, body: JsonBody = None) -> dict[str, Any]:
    """Queue a run writing ``number_of_behaviors × number_of_prompts_per_behavior`` adversarial prompts."""
    return _runs(context).create(tenant, body)


@router.get("/red-team-runs/", response_model=list[RedTeamRunItem])
def list_red_team_runs(
    tenant: CurrentTenant, context: Context, spec_id: str | None = None
) -> list[dict[str, Any]]:
    """The tenant's red-team runs (of one spec with ``spec_id``), newest first (a bare array)."""
    return _runs(context).list(tenant.id, spec_id)


@router.get("/red-team-runs/{run_id}/", response_model=RedTeamRunOut)
def retrieve_red_team_run(run_id: str, tenant: CurrentTenant, context: Context) -> dict[str, Any]:
    """One red-team run, with its prompts once SUCCEEDED."""
    return _runs(context).get(tenant.id, run_id)


@router.get("/red-team-runs/{run_id}/status/", response_model=RedTeamRunOut)
def red_team_run_status(run_id: str, tenant: CurrentTenant, context: Context) -> dict[str, Any]:
    """The run, for polling until SUCCEEDED, FAILED or CANCELED."""
    return _runs(context).get(tenant.id, run_id)


@router.post("/red-team-runs/{run_id}/cancel/", status_code=204)
def cancel_red_team_run(run_id: str, tenant: CurrentTenant, context: Context) -> Response:
    """Cancel a PENDING or PROCESSING run; it reads CANCELED and its reserved credits come back."""
    _runs(context).cancel(tenant.id, run_id)
    return Response(status_code=204)


@router.delete("/red-team-runs/{run_id}/", status_code=204)
def delete_red_team_run(run_id: str, tenant: CurrentTenant, context: Context) -> Response:
    """Delete a run (a running one is cancelled first)."""
    _runs(context).delete(tenant.id, run_id)
    return Response(status_code=204)
