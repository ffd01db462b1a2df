"""Idempotency keys: one key names one request, so sending it again answers what the first call made.

Every route that takes a key follows one rule (as the IETF ``Idempotency-Key`` draft and Stripe do): the
first request under a key is recorded with a fingerprint of its parameters (`fingerprint`: the dataset it
names and its body as parsed, so key order and ``56`` vs ``56.0`` do not matter); the same request under
the same key answers the first call's result and starts nothing; a request with different parameters under
a key already used is refused with `IdempotencyKeyReusedError` (HTTP 422), naming the key and its field, and
starts nothing either. Two concurrent requests with one key race on the record's primary key: the loser
answers the winner's result (or the 422, when the two differ).
"""

from __future__ import annotations

import hashlib
import json

from sqlalchemy.orm import Session

from datamill.services.errors import IdempotencyKeyReusedError
from datamill.store import idempotency as records


def fingerprint(*parts: object) -> str:
    """The SHA-256 of the parts as canonical JSON (sorted keys): equal requests, equal fingerprints."""
    text = json.dumps(list(parts), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def recorded(
    session: Session, tenant_id: str, scope: str, key: str, digest: str, *, field: str, what: str
) -> str | None:
    """The resource the first request under `key` made, or None when the key is new.

    Raises:
        IdempotencyKeyReusedError: the key was first used for a request with another fingerprint.
    """
    record = records.find_record(session, tenant_id, scope, key)
    if record is None:
        return None
    if record.request_hash != digest:
        raise IdempotencyKeyReusedError(field, key, what)
    return record.resource_id
