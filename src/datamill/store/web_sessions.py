"""Queries of web sessions (`datamill.store.session_models`); each takes the caller's session."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import delete, update
from sqlalchemy.orm import Session

from datamill.store.models import utcnow
from datamill.store.session_models import WebSessionRow


def open_session(
    session: Session, session_id: str, tenant_id: str, key_id: str, expires_at: dt.datetime
) -> None:
    """Record a new session, and forget those that have expired."""
    now = utcnow()
    session.execute(delete(WebSessionRow).where(WebSessionRow.expires_at < now))
    session.add(
        WebSessionRow(
            id=session_id, tenant_id=tenant_id, key_id=key_id, created_at=now, expires_at=expires_at
        )
    )


def is_open(session: Session, session_id: str, tenant_id: str) -> bool:
    """Whether the session was opened for this tenant and has been neither signed out nor expired."""
    row = session.get(WebSessionRow, session_id)
    return (
        row is not None
        and row.tenant_id == tenant_id
        and row.revoked_at is None
        and row.expires_at > utcnow()
    )


def revoke(session: Session, session_id: str) -> None:
    """End a session (signing out)."""
    session.execute(update(WebSessionRow).where(WebSessionRow.id == session_id).values(revoked_at=utcnow()))
