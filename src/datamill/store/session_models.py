"""The schema of web sessions: one row per sign-in, so signing out ends the session on the server.

The session cookie is signed (`datamill.server.web.session`); its row says whether the session is still
open. Signing out sets `revoked_at`, so a copy of the cookie taken before stops working at once; rows are
deleted once they have expired.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from datamill.store.models import Base


class WebSessionRow(Base):
    """A signed-in web session: who, through which key, until when, and whether it was signed out."""

    __tablename__ = "web_sessions"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    key_id: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[dt.datetime]
    expires_at: Mapped[dt.datetime] = mapped_column(index=True)
    revoked_at: Mapped[dt.datetime | None]
