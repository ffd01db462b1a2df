"""Dataframer-compatible red-team routes: ``/api/dataframer/red-team-specs/`` and ``red-team-runs/``.

Specs: create, list (a bare array), retrieve, PATCH, delete. Runs: create, list (``?spec_id=``),
retrieve, ``status/`` (the same object, for polling), ``cancel/`` (POST; not in the SDK 0.19.2, which
reaches it with ``client.post``) and delete. Handlers only translate between the wire and
`datamill.services.redteam` (`dataframer_red_team_wire`); bodies are read as raw JSON so that every bad
field is named.
"""

from __future__ import annotations

from fastapi import APIRouter, Response

from datamill.server.auth import Context, CurrentTenant, JsonBody
from datamill.server.compat.dataframer_red_team_models import (
    RedTeamRunItem,
    RedTeamRunPublic,
    RedTeamSpecItem,
    RedTeamSpecPublic,
)
from datamill.server.compat.dataframer_red_team_wire import (
    parse_run_create,
    parse_spec_changes,
    parse_spec_create,
    run_item,
    run_public,
    spec_item,
    spec_public,
)
from datamill.services.redteam.runs import RedTeamRunService
from datamill.services.redteam.specs import RedTeamSpecService
from datamill.text.fetch_policy import FetchPolicy

router = APIRouter(prefix="/api/dataframer", tags=["dataframer: red teaming"])


def _specs(context: Context) -> RedTeamSpecService:
    return RedTeamSpecService(context.store)


def _runs(context: Context) -> RedTeamRunService:
    settings = context.runs.settings
    return RedTeamRunService(
        context.store, settings.price_table, FetchPolicy.with_allowed(settings.fetch_allow)
    )


@router.post("/red-team-specs/", status_code=201, response_model=RedTeamSpecPublic)
def create_red_team_spec(tenant: CurrentTenant, context: Context, body: JsonBody = None) -> RedTeamSpecPublic:
    """Describe an LLM application to red-team; ``name`` is stored in snake_case, unique per tenant."""
    return spec_public(_specs(context).create(tenant, parse_spec_create(body)))


@router.get("/red-team-specs/", response_model=list[RedTeamSpecItem])
def list_red_team_specs(tenant: CurrentTenant, context: Context) -> list[RedTeamSpecItem]:
    """The tenant's red-team specs, newest first (a bare array, without ``concerns``)."""
    return [spec_item(spec) for spec in _specs(context).list(tenant.id)]


@router.get("/red-team-specs/{spec_id}/", response_model=RedTeamSpecPublic)
def retrieve_red_team_spec(spec_id: str, tenant: CurrentTenant, context: Context) -> RedTeamSpecPublic:
    """One red-team spec."""
    return spec_public(_specs(context).get(tenant.id, spec_id))


@router.patch("/red-team-specs/{spec_id}/", response_model=RedTeamSpecPublic)
def update_red_team_spec(
    spec_id: str, tenant: CurrentTenant, context: Context, body: JsonBody = None
) -> RedTeamSpecPublic:
    """Change any of ``name``, ``app_description``, ``domain_description``, ``concerns``."""
    return spec_public(_specs(context).update(tenant.id, spec_id, parse_spec_changes(body)))


@router.delete("/red-team-specs/{spec_id}/", status_code=204)
def delete_red_team_spec(spec_id: str, tenant: CurrentTenant, context: Context) -> Response:
    """Delete a red-team spec and its runs (running ones are cancelled)."""
    _specs(context).delete(tenant.id, spec_id)
    return Response(status_code=204)


@router.post("/red-team-runs/", status_code=201, response_model=RedTeamRunPublic)
def create_red_team_run(tenant: CurrentTenant, context: Context, body: JsonBody = None) -> RedTeamRunPublic:
    """Queue a run writing ``number_of_behaviors × number_of_prompts_per_behavior`` adversarial prompts."""
    return run_public(_runs(context).create(tenant, parse_run_create(body)))


@router.get("/red-team-runs/", response_model=list[RedTeamRunItem])
def list_red_team_runs(
    tenant: CurrentTenant, context: Context, spec_id: str | None = None
) -> list[RedTeamRunItem]:
    """The tenant's red-team runs (of one spec with ``spec_id``), newest first (a bare array)."""
    return [run_item(run) for run in _runs(context).list(tenant.id, spec_id)]


@router.get("/red-team-runs/{run_id}/", response_model=RedTeamRunPublic)
def retrieve_red_team_run(run_id: str, tenant: CurrentTenant, context: Context) -> RedTeamRunPublic:
    """One red-team run, with its prompts once SUCCEEDED."""
    return run_public(_runs(context).get(tenant.id, run_id))


@router.get("/red-team-runs/{run_id}/status/", response_model=RedTeamRunPublic)
def red_team_run_status(run_id: str, tenant: CurrentTenant, context: Context) -> RedTeamRunPublic:
    """The run, for polling until SUCCEEDED, FAILED or CANCELED."""
    return run_public(_runs(context).get(tenant.id, run_id))


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
