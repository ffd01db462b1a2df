"""A `limits` storage in the metadata database, so every API process counts one rate limit together.

`limits` (the rate-limiting library) keeps its counters in a storage: memory (one process), Redis,
Memcached or MongoDB. None of those is part of a datamill deployment, which already shares one database
between its API processes, so `DatabaseStorage` implements the storage interface the fixed-window strategy
needs on the ``rate_limit_counters`` table (`datamill.store.ratelimit_models`): `incr` is one atomic
upsert (``INSERT ... ON CONFLICT DO UPDATE ... RETURNING``, on SQLite and PostgreSQL alike) that starts a
new window when the old one has ended. On PostgreSQL the counting transaction does not wait for its commit
to reach the disk (``synchronous_commit = off``): a counter lost in a crash only lets a few requests
through early. Ended windows are deleted now and then.

A count costs a write transaction: about 1.5 ms of CPU and, on SQLite, a disk sync each (11 ms on a busy
two-core machine; ``bench/server_rate_limit.py``), which is why the server counts in memory on SQLite
(one API process) and in the database on PostgreSQL (several).
"""

from __future__ import annotations

import itertools
import time
from typing import Any, cast

from limits.storage import Storage
from sqlalchemy import Table, case, delete, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError

from datamill.store.db import Store
from datamill.store.ratelimit_models import RateLimitCounter

#: Ended windows are deleted once every this many increments (per process).
_SWEEP_EVERY = 1000


class DatabaseStorage(Storage):
    """Fixed-window counters of `limits` in the metadata database of `store`."""

    STORAGE_SCHEME = ["datamill+database"]  # noqa: RUF012 (the base class declares it so)

    def __init__(self, store: Store, **options: Any) -> None:
        super().__init__("datamill+database://", **options)
        self._store = store
        dialect = store.engine.dialect.name
        if dialect not in ("sqlite", "postgresql"):
            raise ValueError(f"rate limits in the database need SQLite or PostgreSQL, not {dialect}")
        self._insert = sqlite.insert if dialect == "sqlite" else postgresql.insert
        self._postgres = dialect == "postgresql"
        self._calls = itertools.count(1)

    @property
    def base_exceptions(self) -> type[Exception] | tuple[type[Exception], ...]:
        return SQLAlchemyError

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        now = time.time()
        table = cast("Table", RateLimitCounter.__table__)
        ended = table.c.expires_at <= now
        statement = (
            self._insert(table)
            .values(key=key, count=amount, expires_at=now + expiry)
            .on_conflict_do_update(
                index_elements=[table.c.key],
                set_={
                    "count": case((ended, amount), else_=table.c.count + amount),
                    "expires_at": case((ended, now + expiry), else_=table.c.expires_at),
                },
            )
            .returning(table.c.count)
        )
        with self._store.session() as session:
            if self._postgres:
                session.execute(text("SET LOCAL synchronous_commit TO OFF"))
            count = int(session.execute(statement).scalar_one())
            if next(self._calls) % _SWEEP_EVERY == 0:
                session.execute(delete(RateLimitCounter).where(RateLimitCounter.expires_at <= now))
        return count

    def get(self, key: str) -> int:
        with self._store.session() as session:
            row = session.execute(
                select(RateLimitCounter.count, RateLimitCounter.expires_at).where(RateLimitCounter.key == key)
            ).one_or_none()
        if row is None:
            return 0
        count, expires_at = row
        return int(count) if expires_at > time.time() else 0

    def get_expiry(self, key: str) -> float:
        with self._store.session() as session:
            expires = session.scalar(select(RateLimitCounter.expires_at).where(RateLimitCounter.key == key))
        return float(expires) if expires is not None and expires > time.time() else time.time()

    def check(self) -> bool:
        try:
            with self._store.session() as session:
                session.execute(select(1))
        except SQLAlchemyError:
            return False
        return True

    def reset(self) -> int | None:
        with self._store.session() as session:
            return int(getattr(session.execute(delete(RateLimitCounter)), "rowcount", 0))

    def clear(self, key: str) -> None:
        with self._store.session() as session:
            session.execute(delete(RateLimitCounter).where(RateLimitCounter.key == key))
