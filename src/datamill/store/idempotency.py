"""Repository of idempotency records: what a keyed request created, so a replay answers the same.

Recording is an INSERT on the (tenant, scope, key) primary key, so of two racing requests with one key exactly
one wins; the loser's `IntegrityError` tells it to read the winner's record instead.
"""

from __future__ import annotations

from sqlalchemy import update
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


def swap_record(
    session: Session, tenant_id: str, scope: str, key: str, old_resource_id: str, new_resource_id: str
) -> bool:
    """Point a record at `new_resource_id` if it still points at `old_resource_id`.

    For a key whose resource ended, taken for a new one; False when a racing request swapped it first.
    """
    swapped = session.execute(
        update(IdempotencyRecord)
        .where(
            IdempotencyRecord.tenant_id == tenant_id,
            IdempotencyRecord.scope == scope,
            IdempotencyRecord.key == key,
            IdempotencyRecord.resource_id == old_resource_id,
        )
        .values(resource_id=new_resource_id, created_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(swapped, "rowcount", 0))
