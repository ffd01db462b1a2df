"""Repository of upload slots: create, look up, and move one through pending → receiving → received.

The claim is one conditional UPDATE, so two PUTs racing for the same slot cannot both win.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from datamill.store.models import Upload, utcnow


def get_upload(session: Session, upload_id: str) -> Upload | None:
    return session.get(Upload, upload_id)


def upload_by_key(session: Session, tenant_id: str, s3_key: str) -> Upload | None:
    return session.scalar(select(Upload).where(Upload.s3_key == s3_key, Upload.tenant_id == tenant_id))


def uploads_of_dataset(session: Session, dataset_id: str) -> list[Upload]:
    stmt = select(Upload).where(Upload.dataset_id == dataset_id).order_by(Upload.s3_key)
    return list(session.scalars(stmt))


def claim(session: Session, upload_id: str, now: dt.datetime) -> bool:
    """Take a pending, unexpired slot for one PUT; False when it is used, busy, expired or unknown."""
    result = session.execute(
        update(Upload)
        .where(Upload.id == upload_id, Upload.state == "pending", Upload.expires_at > now)
        .values(state="receiving")
    )
    return bool(getattr(result, "rowcount", 0))


def release(session: Session, upload_id: str) -> None:
    """Give back a claim after a failed PUT, so the URL can be tried again."""
    session.execute(
        update(Upload).where(Upload.id == upload_id, Upload.state == "receiving").values(state="pending")
    )


def mark_received(session: Session, upload_id: str, size: int, sha256: str) -> None:
    session.execute(
        update(Upload)
        .where(Upload.id == upload_id)
        .values(state="received", size_bytes=size, sha256=sha256, received_at=utcnow())
    )
