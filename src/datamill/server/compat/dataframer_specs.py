"""Dataframer-compatible spec routes: ``/api/dataframer/specs/...`` (create, list, retrieve, update, delete).

Handlers only translate between the wire and `datamill.services.generation.specs.SpecService`; they are plain
``def`` functions, run on FastAPI's thread pool. Bodies are read as raw JSON so that every field is
validated (and named) by the service.
"""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse

from datamill.server.auth import Context, CurrentTenant, JsonBody
from datamill.services.generation.specs import SpecService

router = APIRouter(prefix="/api/dataframer", tags=["dataframer: specs"])


def _service(context: Context) -> SpecService:
    return SpecService(context.store, context.blobs, context.runs.settings.price_table)


@router.post("/specs/", status_code=201)
def create_spec(tenant: CurrentTenant, context: Context, body: JsonBody = None) -> JSONResponse:
    """Create a spec and start analysing its seeds (or objectives); it reads PROCESSING until done."""
    return JSONResponse(_service(context).create(tenant, body), status_code=201)


@router.get("/specs/")
def list_specs(tenant: CurrentTenant, context: Context) -> JSONResponse:
    """The tenant's specs, newest first (a bare array)."""
    return JSONResponse(_service(context).list(tenant.id))


@router.get("/specs/{spec_id}/")
def retrieve_spec(
    spec_id: str, tenant: CurrentTenant, context: Context, include_versions: bool = False
) -> JSONResponse:
    """One spec; with ``include_versions=true`` its versions, oldest first."""
    return JSONResponse(_service(context).get(tenant.id, spec_id, include_versions))


@router.put("/specs/{spec_id}/")
def update_spec(spec_id: str, tenant: CurrentTenant, context: Context, body: JsonBody = None) -> JSONResponse:
    """Store edited YAML as the spec's next version (the ``metadata`` section stays the server's)."""
    return JSONResponse(_service(context).update(tenant.id, spec_id, body))


@router.delete("/specs/{spec_id}/", status_code=204)
def delete_spec(spec_id: str, tenant: CurrentTenant, context: Context, force: bool = False) -> Response:
    """Delete a spec; one with runs only with ``force=true``, which deletes the runs as well."""
    _service(context).delete(tenant.id, spec_id, force)
    return Response(status_code=204)
