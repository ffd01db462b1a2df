"""Bearer-key authentication: ``Authorization: Bearer <key>`` on every API request (Adaption API).

A missing, unknown or revoked key answers 401 (the SDK's `AuthenticationError`). The tenant found is what
every service call is scoped by.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Body, Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from datamill.server.context import ServerContext, get_context
from datamill.server.errors import Unauthenticated
from datamill.services.tenants import TenantView

bearer_scheme = HTTPBearer(auto_error=False, description="An API key made by `datamill keys create`.")


def current_tenant(
    context: Annotated[ServerContext, Depends(get_context)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> TenantView:
    """FastAPI dependency: the tenant whose key authorised the request."""
    if credentials is None:
        raise Unauthenticated("missing API key: send the header 'Authorization: Bearer <key>'")
    tenant = context.tenants.authenticate(credentials.credentials)
    if tenant is None:
        raise Unauthenticated("invalid or revoked API key")
    return tenant


CurrentTenant = Annotated[TenantView, Depends(current_tenant)]
Context = Annotated[ServerContext, Depends(get_context)]
#: A request body read as raw JSON, so that the service validates (and names) every field.
JsonBody = Annotated[Any, Body()]
