"""The small Dataframer-compatible endpoints: the data-plane probe and key rotation.

- ``/api/data-plane/...`` (any method): 404 ``{"code": "not_hybrid"}``. The SDK asks
  ``POST /api/data-plane/token/`` before an upload, a spec update or a judge evaluation; this answer tells
  it that files travel in the ordinary requests (datamill keeps them itself).
- ``POST /api/users/api-key/rotate`` (no trailing slash): revokes the calling key and returns a new one for
  the same tenant, ``{api_key, masked_key, expires_at}`` (keys do not expire: ``expires_at`` is null).
- Judges are `datamill.server.compat.dataframer_judges`, failures and context
  `datamill.server.compat.dataframer_insights`.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import BaseModel, ConfigDict, Field

from datamill.server.auth import Context, CurrentTenant, bearer_scheme
from datamill.server.errors import Unauthenticated, dataframer_error

router = APIRouter(tags=["dataframer"])
_ALL_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]


@router.api_route("/api/data-plane/{rest:path}", methods=_ALL_METHODS, include_in_schema=False)
def data_plane(rest: str) -> Any:
    """Not a hybrid deployment: every data-plane call is a 404 with code ``not_hybrid``."""
    return dataframer_error(
        404, "this server is not a hybrid deployment: files travel in the API requests", "not_hybrid"
    )


class RotatedKeyPublic(BaseModel):
    """The new key of ``POST /api/users/api-key/rotate``."""

    model_config = ConfigDict(extra="forbid")

    api_key: str = Field(description="The new key; the calling key is revoked.")
    masked_key: str = Field(description="Its first and last four characters, for display.")
    expires_at: str | None = Field(description="Always null: keys do not expire.")


def _mask(key: str) -> str:
    return f"{key[:4]}{'*' * 8}{key[-4:]}"


@router.post("/api/users/api-key/rotate", response_model=RotatedKeyPublic)
def rotate_api_key(
    context: Context,
    _tenant: CurrentTenant,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> RotatedKeyPublic:
    """Revoke the calling key and issue a new one for the same tenant."""
    issued = None if credentials is None else context.tenants.rotate_key(credentials.credentials)
    if issued is None:  # revoked by a concurrent rotation after authentication
        raise Unauthenticated("invalid or revoked API key")
    return RotatedKeyPublic(api_key=issued.key, masked_key=_mask(issued.key), expires_at=None)
