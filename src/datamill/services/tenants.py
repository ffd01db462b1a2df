"""Tenants and their API keys: issue keys, authenticate a bearer key, manage credit balances.

A key is ``dm_`` plus 43 URL-safe characters (256 random bits). Only its sha256 is stored: with that much
entropy a plain hash cannot be reversed, and the lookup by hash means the key itself is never compared
byte by byte in a way that leaks timing (the stored hash is still checked with `hmac.compare_digest`).
The key is shown once, when it is issued.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from datamill.core.errors import ValidationError
from datamill.services.settings.server import DEFAULT_CREDITS
from datamill.store import Store, Tenant
from datamill.store import tenants as repo

KEY_PREFIX = "dm_"
DEFAULT_TENANT = "default"


@dataclass(frozen=True)
class TenantView:
    """A tenant as callers see it."""

    id: str
    name: str
    credits: float

    @classmethod
    def of(cls, row: Tenant) -> TenantView:
        return cls(id=row.id, name=row.name, credits=float(row.credits))


@dataclass(frozen=True)
class IssuedKey:
    """A newly created key: `key` is the secret, shown to the user once and never stored."""

    key: str
    key_id: str
    prefix: str
    tenant: TenantView


@dataclass(frozen=True)
class KeyView:
    """A stored key, for listings: its id, display prefix and tenant, never the secret."""

    key_id: str
    prefix: str
    tenant_name: str
    created_at: dt.datetime
    revoked: bool


def hash_key(key: str) -> str:
    """The stored form of a key: lowercase hex sha256."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def _check_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > 200:
        raise ValidationError.of("tenant", "a tenant name must have 1 to 200 characters")
    return name


class TenantService:
    """Operations on tenants and keys over one `Store`."""

    def __init__(self, store: Store, *, default_credits: float = DEFAULT_CREDITS) -> None:
        self._store = store
        self._default_credits = default_credits

    def create_key(self, tenant_name: str, *, credits: float | None = None) -> IssuedKey:
        """Issue a key for a tenant, creating the tenant (with `credits`, or the default) if it is new.

        Raises:
            ValidationError: `credits` is given for a tenant that already exists (use `add_credits`), or the
                name is empty.
        """
        name = _check_name(tenant_name)
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        with self._store.session() as session:
            tenant = repo.tenant_by_name(session, name)
            if tenant is None:
                tenant = repo.add_tenant(session, name, self._default_credits if credits is None else credits)
            elif credits is not None:
                raise ValidationError.of(
                    "credits", f"tenant {name!r} already exists; change its balance with add_credits"
                )
            row = repo.add_key(session, tenant.id, hash_key(key), key[:11])
            return IssuedKey(key=key, key_id=row.id, prefix=row.prefix, tenant=TenantView.of(tenant))

    def authenticate(self, key: str) -> TenantView | None:
        """The tenant of an active key, or None for an unknown or revoked one."""
        if not key.startswith(KEY_PREFIX):
            return None
        digest = hash_key(key)
        with self._store.session() as session:
            row = repo.active_key_by_hash(session, digest)
            if row is None or not hmac.compare_digest(row.key_hash, digest):
                return None
            tenant = repo.tenant_by_id(session, row.tenant_id)
            return None if tenant is None else TenantView.of(tenant)

    def key_id(self, key: str) -> str | None:
        """The id of an active `key` (what per-key limits count by), or None for an unknown or revoked one."""
        if not key.startswith(KEY_PREFIX):
            return None
        with self._store.session() as session:
            row = repo.active_key_by_hash(session, hash_key(key))
            return None if row is None else row.id

    def rotate_key(self, key: str) -> IssuedKey | None:
        """Revoke the active `key` and issue a new one for its tenant, in one transaction.

        None when `key` is not active (unknown, or revoked by a concurrent rotation).
        """
        digest = hash_key(key)
        with self._store.session() as session:
            row = repo.active_key_by_hash(session, digest) if key.startswith(KEY_PREFIX) else None
            tenant = None if row is None else repo.tenant_by_id(session, row.tenant_id)
            if row is None or tenant is None or not repo.revoke_key(session, row.id):
                return None
            new_key = KEY_PREFIX + secrets.token_urlsafe(32)
            added = repo.add_key(session, tenant.id, hash_key(new_key), new_key[:11])
            return IssuedKey(key=new_key, key_id=added.id, prefix=added.prefix, tenant=TenantView.of(tenant))

    def ensure_initial_key(self) -> IssuedKey | None:
        """On a fresh install (no active key at all), issue one for tenant ``default``; else None."""
        with self._store.session() as session:
            if repo.count_active_keys(session) > 0:
                return None
        return self.create_key(DEFAULT_TENANT)

    def add_credits(self, tenant_name: str, amount: float) -> TenantView:
        """Add (or, with a negative amount, take) credits; raises ValidationError for an unknown tenant."""
        with self._store.session() as session:
            tenant = repo.tenant_by_name(session, tenant_name)
            if tenant is None:
                raise ValidationError.of("tenant", f"no tenant named {tenant_name!r}")
            repo.add_credits(session, tenant.id, amount)
            session.refresh(tenant)
            return TenantView.of(tenant)

    def list_tenants(self) -> list[TenantView]:
        with self._store.session() as session:
            return [TenantView.of(t) for t in repo.list_tenants(session)]

    def list_keys(self) -> list[KeyView]:
        with self._store.session() as session:
            return [
                KeyView(key.id, key.prefix, tenant.name, key.created_at, key.revoked_at is not None)
                for key, tenant in repo.list_keys(session)
            ]

    def revoke_key(self, prefix_or_id: str) -> int:
        """Revoke the active keys with this display prefix or id; returns how many were revoked."""
        with self._store.session() as session:
            return repo.revoke_keys_with_prefix(session, prefix_or_id)
