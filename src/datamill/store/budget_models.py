"""The schema of the shared concurrency budget: one row per budget key, one per holder of its slots.

``concurrency_budgets`` has a row per (provider, model, endpoint) key; a transaction that changes the key's
slots first updates that row, which serialises the holders of one key on every database (a row lock on
PostgreSQL, the write lock on SQLite). ``concurrency_slots`` records how many slots each holder (one gateway
of one worker) holds and until when; a holder that stops renewing (a dead worker) loses its slots when
``expires_at`` passes.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from datamill.store.models import Base


class ConcurrencyBudgetRow(Base):
    """A budget key and the limit its last user asked for."""

    __tablename__ = "concurrency_budgets"

    key: Mapped[str] = mapped_column(String(400), primary_key=True)
    slot_limit: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[dt.datetime]


class ConcurrencySlots(Base):
    """The slots of one key one holder holds, and when they lapse unless renewed."""

    __tablename__ = "concurrency_slots"

    key: Mapped[str] = mapped_column(String(400), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200), primary_key=True)
    slots: Mapped[int] = mapped_column(Integer)
    expires_at: Mapped[dt.datetime]
