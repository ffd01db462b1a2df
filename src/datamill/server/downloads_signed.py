"""Signed download links: how the Dataframer-compatible API hands out files (seed files, samples, ZIPs).

The SDK's download calls answer JSON with a ``download_url`` that the caller fetches with any HTTP client
and no API key, so the link carries its own proof. The token in ``GET /_downloads/{token}`` is the
base64url JSON of the blob key, file name, content type and expiry time, a dot, and an HMAC-SHA256 over
that text keyed by the server secret (the one upload links use, under another label). A link whose token
was altered, or whose hour has passed, answers 403; a blob deleted since (its dataset deleted) 404.
The bytes are streamed with ``Content-Disposition: attachment`` and the file's content type.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from datamill.server.auth import Context
from datamill.server.signing import load_or_create_secret
from datamill.services.errors import NotFoundError
from datamill.services.generation.common import CodedError, DownloadTarget

DOWNLOAD_PATH = "/_downloads"
#: How long a download link stays valid.
DOWNLOAD_TTL = dt.timedelta(hours=1)
_CHUNK = 1 << 20

router = APIRouter(include_in_schema=False)


class LinkRejectedError(CodedError):
    """A download link that was altered or has expired (403)."""

    status = 403


class DownloadSigner:
    """Makes and checks download tokens; see the module docstring."""

    def __init__(self, secret: str) -> None:
        self._key = secret.encode("utf-8")

    def _signature(self, payload: str) -> str:
        return hmac.new(self._key, f"GET\n{payload}".encode(), hashlib.sha256).hexdigest()

    def token(self, target: DownloadTarget, expires_at: dt.datetime) -> str:
        """A token that authorises fetching `target` until `expires_at`."""
        fields = {
            "k": target.blob_key,
            "f": target.filename,
            "t": target.content_type,
            "e": int(expires_at.timestamp()),
        }
        raw = json.dumps(fields, separators=(",", ":")).encode("utf-8")
        payload = base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")
        return f"{payload}.{self._signature(payload)}"

    def verify(self, token: str, now: dt.datetime | None = None) -> DownloadTarget:
        """The target of a valid token.

        Raises:
            LinkRejectedError: The token is malformed, its signature does not match, or it has expired.
        """
        payload, _, signature = token.partition(".")
        if not signature or not hmac.compare_digest(self._signature(payload), signature):
            raise LinkRejectedError(
                "invalid download link signature: use the download_url the API returned, unchanged",
                "invalid_link",
            )
        fields = _decode(payload)
        moment = now or dt.datetime.now(dt.UTC)
        if int(fields["e"]) <= moment.timestamp():
            raise LinkRejectedError(
                "this download link has expired; ask the API for the file again for a new one",
                "link_expired",
            )
        return DownloadTarget(str(fields["k"]), str(fields["f"]), str(fields["t"]))


def _decode(payload: str) -> dict[str, Any]:
    try:
        raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
        fields = json.loads(raw)
    except (binascii.Error, ValueError) as exc:  # signed but unreadable: only a changed secret does this
        raise LinkRejectedError("malformed download link", "invalid_link") from exc
    if not isinstance(fields, dict) or not {"k", "f", "t", "e"} <= fields.keys():
        raise LinkRejectedError("malformed download link", "invalid_link")
    return fields


def download_signer(request: Request, context: Context) -> DownloadSigner:
    """The app's signer (made once, from the server secret)."""
    signer: DownloadSigner | None = getattr(request.app.state, "download_signer", None)
    if signer is None:
        settings = context.settings
        signer = DownloadSigner(settings.signing_secret or load_or_create_secret(settings.secret_path))
        request.app.state.download_signer = signer
    return signer


def download_url(request: Request, context: Context, target: DownloadTarget) -> str:
    """A signed link to `target`, valid for an hour, on the public URL or the host the request came to."""
    token = download_signer(request, context).token(target, dt.datetime.now(dt.UTC) + DOWNLOAD_TTL)
    base = context.settings.public_url or str(request.base_url).rstrip("/")
    return f"{base}{DOWNLOAD_PATH}/{token}"


def download_body(request: Request, context: Context, target: DownloadTarget) -> dict[str, str]:
    """The JSON the download endpoints answer: ``{download_url, filename, content_type}``."""
    return {
        "download_url": download_url(request, context, target),
        "filename": target.filename,
        "content_type": target.content_type,
    }


def _disposition(filename: str) -> str:
    ascii_name = filename.encode("ascii", "replace").decode("ascii").replace('"', "_").replace("?", "_")
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename, safe='')}"


@router.get(DOWNLOAD_PATH + "/{token}")
def get_download(token: str, request: Request, context: Context) -> StreamingResponse:
    """Serve the bytes a signed link names."""
    target = download_signer(request, context).verify(token)
    try:
        if not context.blobs.exists(target.blob_key):
            raise FileNotFoundError(target.blob_key)
        handle = context.blobs.open_read(target.blob_key)
    except FileNotFoundError:  # its dataset or run was deleted since the link was made
        raise NotFoundError("file", target.filename) from None

    def chunks() -> Iterator[bytes]:
        with handle:
            while chunk := handle.read(_CHUNK):
                yield chunk

    return StreamingResponse(
        chunks(),
        media_type=target.content_type,
        headers={"Content-Disposition": _disposition(target.filename)},
    )
