"""Queries of stored responses (`datamill.store.response_models`); each takes the caller's session."""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from datamill.store.response_models import StoredResponse


def add_response(session: Session, row: StoredResponse) -> None:
    session.add(row)


def get_response(session: Session, tenant_id: str, response_id: str) -> StoredResponse | None:
    query = select(StoredResponse).where(
        StoredResponse.tenant_id == tenant_id, StoredResponse.id == response_id
    )
    return session.scalars(query).first()


def delete_response(session: Session, tenant_id: str, response_id: str) -> bool:
    """Delete the response; False when the tenant has none with this id."""
    done = session.execute(
        delete(StoredResponse).where(StoredResponse.tenant_id == tenant_id, StoredResponse.id == response_id)
    )
    return bool(getattr(done, "rowcount", 0))
