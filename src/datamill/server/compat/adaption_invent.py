"""Adaption API invent routes: the domain catalogue, and the invent call that generates a dataset.

``GET /api/v1/datasets/invent/domains`` lists the codes (`datasets.invent_catalog`); ``POST
/api/v1/datasets/invent`` (`datasets.invent`) generates a new dataset on the job queue.

Mounted before ``/api/v1/datasets/{dataset_id}``, so ``invent`` and ``invent/domains`` are never read as a
dataset id.
"""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter
from pydantic import BaseModel

from datamill.server.auth import Context, CurrentTenant, JsonBody
from datamill.server.compat.adaption_models import ErrorPublic

router = APIRouter(tags=["datasets: invent"], responses={401: {"model": ErrorPublic}})
_LAUNCH_ERRORS: dict[int | str, dict[str, object]] = {code: {"model": ErrorPublic} for code in (400, 402)}


class InventPublic(BaseModel):
    estimate: bool
    id: str | None
    name: str | None
    training_type: str
    domains: list[str]
    subdomains: list[str]
    rows: int | None
    status: str | None
    created_at: dt.datetime | None
    estimated_credits: float
    available_credits: float


@router.post("/datasets/invent", response_model=InventPublic, responses=_LAUNCH_ERRORS)
def invent_dataset(tenant: CurrentTenant, context: Context, body: JsonBody = None) -> InventPublic:
    """Generate a new dataset from domain codes or a description (``estimate: true``: a quote)."""
    return InventPublic(**context.invent.invent(tenant.id, body))


class SubdomainPublic(BaseModel):
    code: str
    title: str


class DomainPublic(BaseModel):
    code: str
    title: str
    subdomains: list[SubdomainPublic]


class DomainListPublic(BaseModel):
    domains: list[DomainPublic]


@router.get("/datasets/invent/domains", response_model=DomainListPublic)
def list_invent_domains(_tenant: CurrentTenant, context: Context) -> DomainListPublic:
    """The domain and subdomain codes: the shipped catalogue and the operator's additions."""
    return DomainListPublic(domains=[DomainPublic(**d.to_dict()) for d in context.invent_domains])
