"""The small Dataframer-compatible endpoints: the data-plane probe, key rotation, and the read-only analysis.

- ``/api/data-plane/...`` (any method): 404 ``{"code": "not_hybrid"}``. The SDK asks
  ``POST /api/data-plane/token/`` before an upload, a spec update or a judge evaluation; this answer tells
  it that files travel in the ordinary requests (datamill keeps them itself).
- ``POST /api/users/api-key/rotate`` (no trailing slash): revokes the calling key and returns a new one for
  the same tenant, ``{api_key, masked_key, expires_at}`` (keys do not expire: ``expires_at`` is null).
- Failures and context describe production-trace analysis, which datamill does not do: the list is empty
  (``{"count": 0, "results": []}``), the context has no facts and no rubrics, and any one failure or rubric
  is a 404. Judges are `datamill.server.compat.dataframer_judges`.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.security import HTTPAuthorizationCredentials

from datamill.server.auth import Context, CurrentTenant, bearer_scheme
from datamill.server.errors import Unauthenticated, dataframer_error
from datamill.services.errors import NotFoundError

router = APIRouter(tags=["dataframer"])
_PREFIX = "/api/dataframer"
_ALL_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]


@router.api_route("/api/data-plane/{rest:path}", methods=_ALL_METHODS, include_in_schema=False)
def data_plane(rest: str) -> Any:
    """Not a hybrid deployment: every data-plane call is a 404 with code ``not_hybrid``."""
    return dataframer_error(
        404, "this server is not a hybrid deployment: files travel in the API requests", "not_hybrid"
    )


def _mask(key: str) -> str:
    return f"{key[:4]}{'*' * 8}{key[-4:]}"


@router.post("/api/users/api-key/rotate")
def rotate_api_key(
    context: Context,
    _tenant: CurrentTenant,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> dict[str, Any]:
    """Revoke the calling key and issue a new one for the same tenant."""
    issued = None if credentials is None else context.tenants.rotate_key(credentials.credentials)
    if issued is None:  # revoked by a concurrent rotation after authentication
        raise Unauthenticated("invalid or revoked API key")
    return {"api_key": issued.key, "masked_key": _mask(issued.key), "expires_at": None}


def _empty_context() -> dict[str, Any]:
    return {"knowledge": {"facts": [], "total": 0}, "rubrics": [], "rubric_count": 0}


@router.get(f"{_PREFIX}/failures/")
def list_failures(_tenant: CurrentTenant, include: str | None = None) -> dict[str, Any]:
    """No production traces are analysed here: no failures."""
    body: dict[str, Any] = {"count": 0, "results": []}
    if include and "context" in include.split(","):
        body["context"] = _empty_context()
    return body


@router.get(f"{_PREFIX}/failures/{{failure_id}}/")
def retrieve_failure(failure_id: str, _tenant: CurrentTenant) -> dict[str, Any]:
    """Always a 404: there are no failures."""
    raise NotFoundError("failure", failure_id)


@router.get(f"{_PREFIX}/context/")
def retrieve_context(_tenant: CurrentTenant, rubric_id: str | None = None) -> dict[str, Any]:
    """An empty context; a named rubric is a 404."""
    if rubric_id is not None:
        raise NotFoundError("rubric", rubric_id)
    return _empty_context()
