"""Signed upload links: the credential of the bare PUT that uploads a file (Adaption API).

The SDK PUTs the bytes with no Authorization header, so the link carries its own proof: an expiry time and
an HMAC-SHA256 over the method, the upload id and that time, keyed by a server secret. A link whose signature
does not match (altered id, altered expiry) or whose time has passed is refused with 403; that a link is used
only once is enforced by the upload slot itself (`datamill.services.datasets.uploads`).

The secret comes from the settings or, by default, from a file in the data dir, created on first start.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import os
import secrets
from pathlib import Path
from urllib.parse import urlencode

from datamill.services.errors import UploadRejectedError


class UploadSigner:
    """Makes and checks the query string of upload links."""

    def __init__(self, secret: str) -> None:
        self._key = secret.encode("utf-8")

    def _signature(self, upload_id: str, expires: int) -> str:
        message = f"PUT\n{upload_id}\n{expires}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def query(self, upload_id: str, expires_at: dt.datetime) -> str:
        """The query string (``expires=...&signature=...``) that authorises one PUT until `expires_at`."""
        expires = int(expires_at.timestamp())
        return urlencode({"expires": expires, "signature": self._signature(upload_id, expires)})

    def verify(
        self, upload_id: str, expires: str | None, signature: str | None, now: dt.datetime | None = None
    ) -> None:
        """Check a link's query values.

        Raises:
            UploadRejectedError: A value is missing or malformed, the signature does not match, or the link
                has expired.
        """
        if not expires or not signature or not expires.isdigit():
            raise UploadRejectedError(
                "this upload link is not signed: use the URL the API returned, unchanged"
            )
        if not hmac.compare_digest(self._signature(upload_id, int(expires)), signature):
            raise UploadRejectedError(
                "invalid upload link signature: use the URL the API returned, unchanged"
            )
        moment = now or dt.datetime.now(dt.UTC)
        if int(expires) <= moment.timestamp():
            raise UploadRejectedError("this upload link has expired; create the dataset again for a new one")


def load_or_create_secret(path: Path) -> str:
    """The secret kept in `path`, created (readable by the owner only) if the file does not exist yet."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # made by an earlier start, or by a process starting beside this one
        return path.read_text(encoding="utf-8").strip()
    secret = secrets.token_hex(32)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(secret + "\n")
    return secret
