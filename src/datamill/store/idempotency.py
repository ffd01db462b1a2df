"""Repository of idempotency records: what a keyed request created, so a replay answers the same.

Recording is an INSERT on the (tenant, scope, key) primary key, so of two racing requests with one key exactly
one wins; the loser's `IntegrityError` tells it to read the winner's record instead.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from datamill.store.models import IdempotencyRecord, utcnow


def find_record(session: Session, tenant_id: str, scope: str, key: str) -> IdempotencyRecord | None:
    return session.get(IdempotencyRecord, (tenant_id, scope, key))


def add_record(
    session: Session, tenant_id: str, scope: str, key: str, request_hash: str, resource_id: str
) -> IdempotencyRecord:
    """Insert a record; the flush raises `sqlalchemy.exc.IntegrityError` when the key is already taken."""
    row = IdempotencyRecord(
        tenant_id=tenant_id,
        scope=scope,
        key=key,
        request_hash=request_hash,
        resource_id=resource_id,
        created_at=utcnow(),
    )
    session.add(row)
    session.flush()
    return row
