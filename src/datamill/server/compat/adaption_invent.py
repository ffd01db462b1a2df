"""Adaption API invent routes: the catalogue of domain and subdomain codes (`datasets.invent_catalog`).

Mounted before ``/api/v1/datasets/{dataset_id}``, so ``invent/domains`` is never read as a dataset id.
``POST /api/v1/datasets/invent`` itself is not served yet (the unknown-route 404).
"""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from datamill.server.auth import Context, CurrentTenant
from datamill.server.compat.adaption_models import ErrorPublic

router = APIRouter(tags=["datasets: invent"], responses={401: {"model": ErrorPublic}})


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
