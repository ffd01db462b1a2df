"""Generate: create a spec (seeded or seedless), watch its analysis, edit its YAML, browse its versions.

The spec page polls ``status.json`` while the analysis is PROCESSING and reloads when it ends. The editor
checks the YAML as the user types with ``parse_spec_yaml`` (the rules and messages of the API's update,
each issue naming its YAML path) and saves it as the next version through the spec service.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Request
from fastapi.responses import HTMLResponse

from datamill.core.dataframer_models import RUN_MODELS
from datamill.core.errors import ValidationError
from datamill.core.generation_request import FilteringType, RevisionType, SeedShuffling
from datamill.core.spec import parse_spec_yaml
from datamill.server.compat.dataframer_gen_wire import parse_spec_create, read_content_yaml
from datamill.server.web import gen_services as services
from datamill.server.web.deps import PostSession, SessionDep, WebDep

router = APIRouter()


@router.post("/generate/specs", status_code=201)
def create_spec(web: WebDep, session: PostSession, body: Annotated[Any, Body()] = None) -> dict[str, Any]:
    """Create the spec (the API's create body) and queue its analysis; where to watch it."""
    created = services.specs(web).create(session.tenant, parse_spec_create(body))
    return {"id": created.id, "url": f"/generate/specs/{created.id}"}


@router.get("/generate/specs/{spec_id}", response_class=HTMLResponse)
def spec_page(
    request: Request, spec_id: str, web: WebDep, session: SessionDep, version: int | None = None
) -> HTMLResponse:
    spec = services.specs(web).get(session.tenant.id, spec_id, include_versions=True)
    versions = spec.versions or ()
    shown = next((v for v in versions if v.version == version), versions[-1] if versions else None)
    if version is not None and (shown is None or shown.version != version):
        raise ValidationError.of(
            "version", f"spec {spec_id!r} has versions 1 to {len(versions)}; got {version}"
        )
    runs = [r for r in services.runs(web).list(session.tenant.id) if r.spec_id == spec_id]
    return web.page(
        request,
        "spec.html",
        session,
        spec=spec,
        versions=versions,
        shown=shown,
        latest=versions[-1].version if versions else None,
        runs=runs,
        run_models=RUN_MODELS,
        revision_types=[t.value for t in RevisionType],
        filtering_types=[t.value for t in FilteringType],
        shuffling=[s.value for s in SeedShuffling],
    )


@router.get("/generate/specs/{spec_id}/status.json")
def spec_status(spec_id: str, web: WebDep, session: SessionDep) -> dict[str, Any]:
    spec = services.specs(web).get(session.tenant.id, spec_id)
    return {"id": spec.id, "status": spec.status, "error": spec.error}


@router.post("/generate/specs/{spec_id}/delete")
def delete_spec(spec_id: str, web: WebDep, session: PostSession) -> dict[str, Any]:
    """Delete the spec with its runs and their files (the page asks first); where to go."""
    services.specs(web).delete(session.tenant.id, spec_id, force=True)
    return {"deleted": spec_id, "url": "/generate"}


@router.post("/generate/specs/{spec_id}/check")
def check_yaml(
    spec_id: str, web: WebDep, session: PostSession, body: Annotated[Any, Body()] = None
) -> dict[str, Any]:
    """Validate edited YAML as the update would; 400 naming each bad YAML path."""
    services.specs(web).get(session.tenant.id, spec_id)  # 404 for an unknown or another tenant's spec
    parsed = parse_spec_yaml(read_content_yaml(body))
    return {
        "valid": True,
        "axes": [axis.name for axis in parsed.axes],
        "requirements": len(parsed.requirements),
    }


@router.post("/generate/specs/{spec_id}/edit")
def save_yaml(
    spec_id: str, web: WebDep, session: PostSession, body: Annotated[Any, Body()] = None
) -> dict[str, Any]:
    """Store the YAML as the spec's next version (the server-owned ``metadata`` is kept)."""
    services.specs(web).update(session.tenant.id, spec_id, read_content_yaml(body))
    versions = services.specs(web).get(session.tenant.id, spec_id, include_versions=True).versions or ()
    latest = versions[-1].version
    return {"version": latest, "url": f"/generate/specs/{spec_id}?version={latest}"}
