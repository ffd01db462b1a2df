"""Repository of upload slots: create, look up, and move one through pending → receiving → received.

The claim is one conditional UPDATE, so two PUTs racing for the same slot cannot both win. While a PUT
streams, its claim is refreshed (`touch`, ``received_at`` holding the time of the last refresh until the slot
is received); a claim not refreshed for `STALE_CLAIM` belongs to a PUT whose process died, and the next PUT
to the link takes it over, so a crash mid-upload never locks a link for good.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from datamill.store.models import Upload, utcnow


def get_upload(session: Session, upload_id: str) -> Upload | None:
    return session.get(Upload, upload_id)


def upload_by_key(session: Session, tenant_id: str, s3_key: str) -> Upload | None:
    return session.scalar(select(Upload).where(Upload.s3_key == s3_key, Upload.tenant_id == tenant_id))


def uploads_of_dataset(session: Session, dataset_id: str) -> list[Upload]:
    stmt = select(Upload).where(Upload.dataset_id == dataset_id).order_by(Upload.s3_key)
    return list(session.scalars(stmt))


#: A claim not refreshed for this long belongs to a PUT that died with its process (the PUT in progress
#: refreshes it every `TOUCH_EVERY`).
STALE_CLAIM = dt.timedelta(minutes=2)
TOUCH_EVERY = dt.timedelta(seconds=20)


def claim(session: Session, upload_id: str, now: dt.datetime) -> bool:
    """Take a pending (or abandoned), unexpired slot for one PUT; False if used, busy, expired or unknown."""
    abandoned = and_(
        Upload.state == "receiving", or_(Upload.received_at.is_(None), Upload.received_at < now - STALE_CLAIM)
    )
    result = session.execute(
        update(Upload)
        .where(Upload.id == upload_id, or_(Upload.state == "pending", abandoned), Upload.expires_at > now)
        .values(state="receiving", received_at=now)
    )
    return bool(getattr(result, "rowcount", 0))


def touch(session: Session, upload_id: str, now: dt.datetime) -> None:
    """Refresh the claim of a PUT still streaming, so it is not taken for abandoned."""
    session.execute(
        update(Upload).where(Upload.id == upload_id, Upload.state == "receiving").values(received_at=now)
    )


def release(session: Session, upload_id: str) -> None:
    """Give back a claim after a failed PUT, so the URL can be tried again."""
    session.execute(
        update(Upload)
        .where(Upload.id == upload_id, Upload.state == "receiving")
        .values(state="pending", received_at=None)
    )


def mark_received(session: Session, upload_id: str, size: int, sha256: str) -> None:
    session.execute(
        update(Upload)
        .where(Upload.id == upload_id)
        .values(state="received", size_bytes=size, sha256=sha256, received_at=utcnow())
    )
