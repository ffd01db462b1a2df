"""Repository of tenants and their API keys. Functions take the caller's session (one transaction)."""

from __future__ import annotations

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from datamill.store.ids import new_id
from datamill.store.models import ApiKey, Tenant, utcnow


def tenant_by_name(session: Session, name: str) -> Tenant | None:
    return session.scalar(select(Tenant).where(Tenant.name == name))


def tenant_by_id(session: Session, tenant_id: str) -> Tenant | None:
    return session.get(Tenant, tenant_id)


def add_tenant(session: Session, name: str, credits: float) -> Tenant:
    tenant = Tenant(id=new_id("tn"), name=name, credits=credits, created_at=utcnow())
    session.add(tenant)
    session.flush()
    return tenant


def list_tenants(session: Session) -> list[Tenant]:
    return list(session.scalars(select(Tenant).order_by(Tenant.name)))


def add_credits(session: Session, tenant_id: str, amount: float) -> None:
    """Add `amount` (negative to take) in one UPDATE, so concurrent changes are not lost."""
    session.execute(update(Tenant).where(Tenant.id == tenant_id).values(credits=Tenant.credits + amount))


def add_key(session: Session, tenant_id: str, key_hash: str, prefix: str) -> ApiKey:
    key = ApiKey(id=new_id("key"), tenant_id=tenant_id, key_hash=key_hash, prefix=prefix, created_at=utcnow())
    session.add(key)
    session.flush()
    return key


def active_key_by_hash(session: Session, key_hash: str) -> ApiKey | None:
    return session.scalar(select(ApiKey).where(ApiKey.key_hash == key_hash, ApiKey.revoked_at.is_(None)))


def count_active_keys(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(ApiKey).where(ApiKey.revoked_at.is_(None))) or 0


def list_keys(session: Session) -> list[tuple[ApiKey, Tenant]]:
    rows = session.execute(
        select(ApiKey, Tenant).join(Tenant, ApiKey.tenant_id == Tenant.id).order_by(ApiKey.created_at)
    )
    return [(row[0], row[1]) for row in rows]


def revoke_keys_with_prefix(session: Session, prefix: str) -> int:
    """Revoke the active keys whose prefix or id is `prefix`; returns how many."""
    result = session.execute(
        update(ApiKey)
        .where((ApiKey.prefix == prefix) | (ApiKey.id == prefix), ApiKey.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    return int(getattr(result, "rowcount", 0) or 0)


def revoke_key(session: Session, key_id: str) -> bool:
    """Revoke one active key by id; False when it was already revoked (or is unknown)."""
    result = session.execute(
        update(ApiKey).where(ApiKey.id == key_id, ApiKey.revoked_at.is_(None)).values(revoked_at=utcnow())
    )
    return int(getattr(result, "rowcount", 0) or 0) == 1
