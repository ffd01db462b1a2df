"""Dataframer-compatible failures and context: ``/api/dataframer/failures/`` and ``/api/dataframer/context/``.

Both read what the tenant's own work left behind (`datamill.services.insights`): its failed jobs, rejected
samples and failing judge verdicts, and what its judges and red-team specs say. Every answer leaves out
what the query asks to leave out (``detail=summary``, ``include``, ``exclude``), so the response models
declare those blocks optional and the routes answer only what was set.
"""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter

from datamill.server.auth import Context, CurrentTenant
from datamill.server.compat.dataframer_insights_models import (
    ContextPublic,
    FailureDetailPublic,
    FailureListPublic,
)
from datamill.server.compat.dataframer_insights_wire import (
    check_detail_query,
    check_list_query,
    context_public,
    failure_fields,
    failure_public,
)
from datamill.services.insights.context import ContextService
from datamill.services.insights.failures import FailureService

router = APIRouter(prefix="/api/dataframer", tags=["dataframer: failures and context"])


def _context(context: Context) -> ContextService:
    return ContextService(context.store)


def _failures(context: Context) -> FailureService:
    return FailureService(context.store)


@router.get("/failures/", response_model=FailureListPublic, response_model_exclude_unset=True)
def list_failures(
    tenant: CurrentTenant,
    context: Context,
    detail: str | None = None,
    include: str | None = None,
    limit: int | None = None,
    offset: int | None = None,
    project_id: str | None = None,
    updated_since: dt.datetime | None = None,
) -> FailureListPublic:
    """The tenant's failures, newest first: ``{count, results}`` (and ``context`` when included)."""
    names, size, start = check_list_query(detail, include, limit, offset)
    found = _failures(context).list(tenant.id, project_id=project_id, updated_since=updated_since)
    page = [
        failure_public(f, summary=detail == "summary", include=names) for f in found[start : start + size]
    ]
    if "context" in names:
        shown = context_public(_context(context).get(tenant.id, None, None))
        return FailureListPublic(count=len(found), results=page, context=shown)
    return FailureListPublic(count=len(found), results=page)


@router.get("/failures/{failure_id}/", response_model=FailureDetailPublic, response_model_exclude_unset=True)
def retrieve_failure(
    failure_id: str,
    tenant: CurrentTenant,
    context: Context,
    include: str | None = None,
    exclude: str | None = None,
) -> FailureDetailPublic:
    """One failure with its causes, and its judge's verdicts unless excluded."""
    names, dropped = check_detail_query(include, exclude)
    failure = _failures(context).get(tenant.id, failure_id)
    fields = failure_fields(failure, summary=False, include={"reviews", "judgments"} - dropped)
    shown = context_public(_context(context).get(tenant.id, None, None)) if "context" in names else None
    return FailureDetailPublic(**fields, context=shown)


@router.get("/context/", response_model=ContextPublic, response_model_exclude_unset=True)
def retrieve_context(
    tenant: CurrentTenant, context: Context, project_id: str | None = None, rubric_id: str | None = None
) -> ContextPublic:
    """The tenant's rubrics (its judges) and facts (what its red-team specs say)."""
    return context_public(_context(context).get(tenant.id, project_id, rubric_id))
