"""Dataframer-compatible red-team routes: ``/api/dataframer/red-team-specs/`` and ``red-team-runs/``.

Specs: create, list (a bare array), retrieve, PATCH, delete. Runs: create, list (``?spec_id=``),
retrieve, ``status/`` (the same object, for polling), ``cancel/`` (POST; not in the SDK 0.19.2, which
reaches it with ``client.post``) and delete. Handlers only translate between the wire and
`datamill.services.redteam`; bodies are read as raw JSON so that the services name every bad field.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field

from datamill.server.auth import Context, CurrentTenant, JsonBody
from datamill.server.compat.dataframer_schemas import RunStatus
from datamill.services.redteam.runs import RedTeamRunService
from datamill.services.redteam.specs import RedTeamSpecService
from datamill.text.fetch_policy import FetchPolicy

router = APIRouter(prefix="/api/dataframer", tags=["dataframer: red teaming"])


class _Wire(BaseModel):
    """Every answer lists exactly its declared fields: an undeclared one is a bug, caught before it leaves."""

    model_config = ConfigDict(extra="forbid")


def _time(description: str) -> Any:
    return Field(description=description, json_schema_extra={"format": "date-time"})


class RedTeamSpecItem(_Wire):
    """A red-team spec in the list."""

    id: str
    name: str = Field(description="snake_case, unique among the tenant's red-team specs.")
    app_description: str
    domain_description: str
    created_at: str = _time("When the spec was created.")
    updated_at: str = _time("When the spec was last changed.")
    created_by_email: str


class RedTeamSpecPublic(RedTeamSpecItem):
    """A red-team spec: what create, retrieve and PATCH answer."""

    concerns: str | None
    created_by: int | None = Field(description="Always null: keys belong to tenants, not to numbered users.")


class EnhancedQuery(_Wire):
    """One adversarial prompt: the plain query, its disguised form and the attack style used."""

    query: str
    adversarial_prompt: str
    attack_style: Literal["role_play", "obfuscation", "multi_step", "payload_splitting"]


class RedTeamResults(_Wire):
    """``{behaviour: [prompt]}``, the behaviours in the order the model listed them."""

    behavior_to_enhanced_queries: dict[str, list[EnhancedQuery]]


class RedTeamRunItem(_Wire):
    """A red-team run in the list."""

    id: str
    status: RunStatus
    red_team_spec_id: str
    spec_name: str | None
    model_name: str
    number_of_behaviors: int
    number_of_prompts_per_behavior: int
    created_at: str = _time("When the run was created.")
    completed_at: str | None = _time("When the run ended; null while it runs.")
    created_by_email: str


class RedTeamRunPublic(RedTeamRunItem):
    """A red-team run: what create, retrieve and status answer; ``results_json`` once SUCCEEDED."""

    created_by: int | None = Field(description="Always null: keys belong to tenants, not to numbered users.")
    error_message: str | None = Field(description="Why the run FAILED.")
    task_id: str = Field(description="The id of the run's job in the queue.")
    results_json: RedTeamResults | None
    prompts_completed: int = Field(description="Prompts written so far.")
    total_prompts: int = Field(description="number_of_behaviors × number_of_prompts_per_behavior.")
    total_cost: float = Field(description="Model spend in USD.")
    summary: dict[str, Any] | None = Field(
        description="Prompts per attack style, dropped items, model calls."
    )


def _specs(context: Context) -> RedTeamSpecService:
    return RedTeamSpecService(context.store)


def _runs(context: Context) -> RedTeamRunService:
    settings = context.runs.settings
    return RedTeamRunService(
        context.store, settings.price_table, FetchPolicy.with_allowed(settings.fetch_allow)
    )


@router.post("/red-team-specs/", status_code=201, response_model=RedTeamSpecPublic)
def create_red_team_spec(tenant: CurrentTenant, context: Context, body: JsonBody = None) -> dict[str, Any]:
    """Describe an LLM application to red-team; ``name`` is stored in snake_case, unique per tenant."""
    return _specs(context).create(tenant, body)


@router.get("/red-team-specs/", response_model=list[RedTeamSpecItem])
def list_red_team_specs(tenant: CurrentTenant, context: Context) -> list[dict[str, Any]]:
    """The tenant's red-team specs, newest first (a bare array, without ``concerns``)."""
    return _specs(context).list(tenant.id)


@router.get("/red-team-specs/{spec_id}/", response_model=RedTeamSpecPublic)
def retrieve_red_team_spec(spec_id: str, tenant: CurrentTenant, context: Context) -> dict[str, Any]:
    """One red-team spec."""
    return _specs(context).get(tenant.id, spec_id)


@router.patch("/red-team-specs/{spec_id}/", response_model=RedTeamSpecPublic)
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


@router.post("/red-team-runs/", status_code=201, response_model=RedTeamRunPublic)
def create_red_team_run(tenant: CurrentTenant, context: Context, body: JsonBody = None) -> dict[str, Any]:
    """Queue a run writing ``number_of_behaviors × number_of_prompts_per_behavior`` adversarial prompts."""
    return _runs(context).create(tenant, body)


@router.get("/red-team-runs/", response_model=list[RedTeamRunItem])
def list_red_team_runs(
    tenant: CurrentTenant, context: Context, spec_id: str | None = None
) -> list[dict[str, Any]]:
    """The tenant's red-team runs (of one spec with ``spec_id``), newest first (a bare array)."""
    return _runs(context).list(tenant.id, spec_id)


@router.get("/red-team-runs/{run_id}/", response_model=RedTeamRunPublic)
def retrieve_red_team_run(run_id: str, tenant: CurrentTenant, context: Context) -> dict[str, Any]:
    """One red-team run, with its prompts once SUCCEEDED."""
    return _runs(context).get(tenant.id, run_id)


@router.get("/red-team-runs/{run_id}/status/", response_model=RedTeamRunPublic)
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
