"""The schema of stored responses: one row per response created with ``store: true``.

``body`` is the response object as the API answered it; ``input_items`` the items of its input (with the
ids ``input_items.list`` pages by); ``previous_response_id`` links a conversation's turns.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from datamill.store.models import Base


class StoredResponse(Base):
    """A response kept for ``retrieve``, ``input_items.list`` and ``previous_response_id``."""

    __tablename__ = "responses"
    __table_args__ = (Index("ix_responses_tenant_created", "tenant_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    model: Mapped[str] = mapped_column(String(200))
    previous_response_id: Mapped[str | None] = mapped_column(String(40))
    body: Mapped[dict[str, Any]]
    input_items: Mapped[list[Any]]
    created_at: Mapped[dt.datetime]
