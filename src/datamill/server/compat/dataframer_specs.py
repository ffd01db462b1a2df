"""Dataframer-compatible spec routes: ``/api/dataframer/specs/...`` (create, list, retrieve, update, delete).

Handlers only translate between the wire and `datamill.services.generation.specs.SpecService`; they are plain
``def`` functions, run on FastAPI's thread pool. Bodies are read as raw JSON so that every field is
validated (and named) by `dataframer_gen_wire`, which also turns the typed answers into
`dataframer_schemas`' models.
"""

from __future__ import annotations

from fastapi import APIRouter, Response

from datamill.server.auth import Context, CurrentTenant, JsonBody
from datamill.server.compat.dataframer_gen_wire import (
    parse_spec_create,
    read_content_yaml,
    spec_item_public,
    spec_public,
)
from datamill.server.compat.dataframer_schemas import SpecItemPublic, SpecPublic
from datamill.services.generation.specs import SpecService

router = APIRouter(prefix="/api/dataframer", tags=["dataframer: specs"])


def _service(context: Context) -> SpecService:
    return SpecService(context.store, context.blobs, context.runs.settings.price_table)


@router.post("/specs/", status_code=201, response_model=SpecPublic, response_model_exclude_unset=True)
def create_spec(tenant: CurrentTenant, context: Context, body: JsonBody = None) -> SpecPublic:
    """Create a spec and start analysing its seeds (or objectives); it reads PROCESSING until done."""
    return spec_public(_service(context).create(tenant, parse_spec_create(body)))


@router.get("/specs/", response_model=list[SpecItemPublic])
def list_specs(tenant: CurrentTenant, context: Context) -> list[SpecItemPublic]:
    """The tenant's specs, newest first (a bare array)."""
    return [spec_item_public(spec) for spec in _service(context).list(tenant.id)]


@router.get("/specs/{spec_id}/", response_model=SpecPublic, response_model_exclude_unset=True)
def retrieve_spec(
    spec_id: str, tenant: CurrentTenant, context: Context, include_versions: bool = False
) -> SpecPublic:
    """One spec; with ``include_versions=true`` its versions, oldest first."""
    return spec_public(_service(context).get(tenant.id, spec_id, include_versions))


@router.put("/specs/{spec_id}/", response_model=SpecPublic, response_model_exclude_unset=True)
def update_spec(spec_id: str, tenant: CurrentTenant, context: Context, body: JsonBody = None) -> SpecPublic:
    """Store edited YAML as the spec's next version (the ``metadata`` section stays the server's)."""
    return spec_public(_service(context).update(tenant.id, spec_id, read_content_yaml(body)))


@router.delete("/specs/{spec_id}/", status_code=204)
def delete_spec(spec_id: str, tenant: CurrentTenant, context: Context, force: bool = False) -> Response:
    """Delete a spec; one with runs only with ``force=true``, which deletes the runs as well."""
    _service(context).delete(tenant.id, spec_id, force)
    return Response(status_code=204)
