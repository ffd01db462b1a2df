"""The schema of shared rate-limit counters: one row per (limit, identity, window) counted by `limits`.

`datamill.store.ratelimit_storage.DatabaseStorage` keeps the fixed-window counters of the server's rate
limits here, so every API process on one database counts together.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Float, String
from sqlalchemy.orm import Mapped, mapped_column

from datamill.store.models import Base


class RateLimitCounter(Base):
    """Requests counted in the current window of one limit key, and when that window ends (epoch s)."""

    __tablename__ = "rate_limit_counters"

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[float] = mapped_column(Float, index=True)
