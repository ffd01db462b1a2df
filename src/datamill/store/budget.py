"""`DatabaseConcurrencyBudget`: the `datamill.llm.limits.shared.ConcurrencyBudget` in the metadata database.

Every worker process sharing a database shares each key's limit. A request for slots is one short
transaction: lock the key's row (`datamill.store.budget_models`), drop holders whose slots have expired, and
grant what is free, up to the holder's fair share (the limit divided among the key's holders). Slots last
``ttl_s`` seconds; a thread renews the slots of this process' holders every third of that, so a live worker
keeps its slots through calls of any length and a dead one's are free again within ``ttl_s``.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import threading

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from datamill.llm.limits.shared import Grant
from datamill.store.budget_models import ConcurrencyBudgetRow, ConcurrencySlots
from datamill.store.db import Store
from datamill.store.models import utcnow

log = logging.getLogger(__name__)


class DatabaseConcurrencyBudget:
    """Slots of per-key limits shared through `store`; see the module docstring.

    Args:
        store: the metadata database every worker shares.
        owner: a prefix of this process' holder names (the worker id), for whoever reads the table.
        ttl_s: seconds slots last without renewal.
    """

    def __init__(self, store: Store, *, owner: str = "", ttl_s: float = 30.0) -> None:
        self._store, self._owner, self.ttl_s = store, owner, ttl_s
        self._holders: set[tuple[str, str]] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None

    def acquire(self, key: str, holder: str, limit: int, want: int) -> Grant:
        name = self._name(holder)
        for attempt in range(3):
            try:
                with self._store.session() as session:
                    grant = self._grant(session, key, name, limit, want)
                break
            except IntegrityError:  # two holders created the key's row at once: the row exists now
                if attempt == 2:
                    raise
        with self._lock:
            self._holders.add((key, name))
        self._start_renewing()
        return grant

    def release(self, key: str, holder: str, count: int) -> None:
        name = self._name(holder)
        with self._store.session() as session:
            _lock_key(session, key, None)
            row = session.get(ConcurrencySlots, (key, name))
            if row is None:
                return
            row.slots -= count
            if row.slots <= 0:
                session.delete(row)
                with self._lock:
                    self._holders.discard((key, name))

    def renew(self) -> None:
        """Extend the slots of every holder of this process."""
        with self._lock:
            held = list(self._holders)
        if not held:
            return
        expires = utcnow() + dt.timedelta(seconds=self.ttl_s)
        with self._store.session() as session:
            for key, name in held:
                session.execute(
                    update(ConcurrencySlots)
                    .where(ConcurrencySlots.key == key, ConcurrencySlots.holder == name)
                    .values(expires_at=expires)
                )

    def close(self) -> None:
        """Stop renewing and give back every slot this process holds."""
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join(5)
        with self._lock:
            held, self._holders = list(self._holders), set()
        if held:
            with self._store.session() as session:
                for key, name in held:
                    session.execute(
                        delete(ConcurrencySlots).where(
                            ConcurrencySlots.key == key, ConcurrencySlots.holder == name
                        )
                    )

    def _grant(self, session: Session, key: str, name: str, limit: int, want: int) -> Grant:
        now = utcnow()
        _lock_key(session, key, limit)
        session.execute(
            delete(ConcurrencySlots).where(ConcurrencySlots.key == key, ConcurrencySlots.expires_at < now)
        )
        held = dict(
            session.execute(
                select(ConcurrencySlots.holder, ConcurrencySlots.slots).where(ConcurrencySlots.key == key)
            ).all()
        )
        mine = held.get(name, 0)
        share = math.ceil(limit / len(held.keys() | {name}))
        granted = max(0, min(want, limit - sum(held.values()), share - mine))
        expires = now + dt.timedelta(seconds=self.ttl_s)
        row = session.get(ConcurrencySlots, (key, name))
        if row is None:  # a holder without slots is recorded too: it counts in the others' fair share
            session.add(ConcurrencySlots(key=key, holder=name, slots=granted, expires_at=expires))
        else:
            row.slots, row.expires_at = mine + granted, expires
        return Grant(granted, share)

    def _name(self, holder: str) -> str:
        return f"{self._owner}/{holder}" if self._owner else holder

    def _start_renewing(self) -> None:
        if self._renewer is None:
            self._renewer = threading.Thread(target=self._renew_loop, name="datamill-budget", daemon=True)
            self._renewer.start()

    def _renew_loop(self) -> None:
        while not self._stop.wait(self.ttl_s / 3):
            try:
                self.renew()
            except Exception:  # a database hiccup: the next tick tries again before the slots lapse
                log.warning("renewing concurrency slots failed", exc_info=True)


def _lock_key(session: Session, key: str, limit: int | None) -> None:
    """Take the key's row lock for the transaction (creating the row when `limit` is given)."""
    values: dict[str, object] = {"updated_at": utcnow()}
    if limit is not None:
        values["slot_limit"] = limit
    done = session.execute(
        update(ConcurrencyBudgetRow).where(ConcurrencyBudgetRow.key == key).values(**values)
    )
    if not getattr(done, "rowcount", 0) and limit is not None:
        session.add(ConcurrencyBudgetRow(key=key, slot_limit=limit, updated_at=utcnow()))
        session.flush()
