"""Dataframer-compatible spec routes: ``/api/dataframer/specs/...`` (create, list, retrieve, update, delete).

Handlers only translate between the wire and `datamill.services.generation.specs.SpecService`; they are plain
``def`` functions, run on FastAPI's thread pool. Bodies are read as raw JSON so that every field is
validated (and named) by the service; answers are checked against `dataframer_schemas`' models.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from datamill.server.auth import Context, CurrentTenant, JsonBody
from datamill.server.compat.dataframer_schemas import SpecItemPublic, SpecPublic
from datamill.services.generation.specs import SpecService

router = APIRouter(prefix="/api/dataframer", tags=["dataframer: specs"])


def _service(context: Context) -> SpecService:
    return SpecService(context.store, context.blobs, context.runs.settings.price_table)


@router.post("/specs/", status_code=201, response_model=SpecPublic, response_model_exclude_unset=True)
def create_spec(tenant: CurrentTenant, context: Context, body: JsonBody = None) -> dict[str, Any]:
    """Create a spec and start analysing its seeds (or objectives); it reads PROCESSING until done."""
    return _service(context).create(tenant, body)


@router.get("/specs/", response_model=list[SpecItemPublic])
def list_specs(tenant: CurrentTenant, context: Context) -> list[dict[str, Any]]:
    """The tenant's specs, newest first (a bare array)."""
    return _service(context).list(tenant.id)


@router.get("/specs/{spec_id}/", response_model=SpecPublic, response_model_exclude_unset=True)
def retrieve_spec(
    spec_id: str, tenant: CurrentTenant, context: Context, include_versions: bool = False
) -> dict[str, Any]:
    """One spec; with ``include_versions=true`` its versions, oldest first."""
    return _service(context).get(tenant.id, spec_id, include_versions)


@router.put("/specs/{spec_id}/", response_model=SpecPublic, response_model_exclude_unset=True)
def update_spec(
    spec_id: str, tenant: CurrentTenant, context: Context, body: JsonBody = None
) -> dict[str, Any]:
    """Store edited YAML as the spec's next version (the ``metadata`` section stays the server's)."""
    return _service(context).update(tenant.id, spec_id, body)


@router.delete("/specs/{spec_id}/", status_code=204)
def delete_spec(spec_id: str, tenant: CurrentTenant, context: Context, force: bool = False) -> Response:
    """Delete a spec; one with runs only with ``force=true``, which deletes the runs as well."""
    _service(context).delete(tenant.id, spec_id, force)
    return Response(status_code=204)
