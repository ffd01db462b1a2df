"""Signed download links: how the Dataframer-compatible API hands out files (seed files, samples, ZIPs).

The SDK's download calls answer JSON with a ``download_url`` that the caller fetches with any HTTP client
and no API key, so the link carries its own proof. The token in ``GET /_downloads/{token}`` is made by the
server's one link signer (`datamill.server.signing`, with the download salt) over the blob key, file name,
content type and expiry time. A link whose token was altered, or whose hour has passed, answers 403; a blob
deleted since (its dataset deleted) 404.
The bytes are streamed with ``Content-Disposition: attachment`` and the file's content type.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel

from datamill.server.auth import Context
from datamill.server.signing import DOWNLOAD, LinkExpired, LinkInvalid, LinkSigner
from datamill.services.errors import NotFoundError
from datamill.services.generation.common import CodedError, DownloadTarget
from datamill.services.generation.zip_downloads import ZipState

DOWNLOAD_PATH = "/_downloads"
#: How long a download link stays valid.
DOWNLOAD_TTL = dt.timedelta(hours=1)
_CHUNK = 1 << 20

router = APIRouter(include_in_schema=False)


class LinkRejectedError(CodedError):
    """A download link that was altered or has expired (403)."""

    status = 403


def sign_download(signer: LinkSigner, target: DownloadTarget, expires_at: dt.datetime) -> str:
    """A token that authorises fetching `target` until `expires_at`."""
    grant = {"k": target.blob_key, "f": target.filename, "t": target.content_type}
    return signer.sign(DOWNLOAD, grant, expires_at)


def verify_download(signer: LinkSigner, token: str, now: dt.datetime | None = None) -> DownloadTarget:
    """The target of a valid download token.

    Raises:
        LinkRejectedError: The token is malformed, its signature does not match, or it has expired.
    """
    try:
        grant = signer.verify(DOWNLOAD, token, now)
    except LinkExpired:
        raise LinkRejectedError(
            "this download link has expired; ask the API for the file again for a new one", "link_expired"
        ) from None
    except LinkInvalid:
        grant = {}
    if not {"k", "f", "t"} <= grant.keys():
        raise LinkRejectedError(
            "invalid download link signature: use the download_url the API returned, unchanged",
            "invalid_link",
        )
    return DownloadTarget(grant["k"], grant["f"], grant["t"])


def download_url(request: Request, context: Context, target: DownloadTarget) -> str:
    """A signed link to `target`, valid for an hour, on the public URL or the host the request came to."""
    token = sign_download(context.signer, target, dt.datetime.now(dt.UTC) + DOWNLOAD_TTL)
    base = context.settings.public_url or str(request.base_url).rstrip("/")
    return f"{base}{DOWNLOAD_PATH}/{token}"


def download_body(request: Request, context: Context, target: DownloadTarget) -> dict[str, str]:
    """The JSON the download endpoints answer: ``{download_url, filename, content_type}``."""
    return {
        "download_url": download_url(request, context, target),
        "filename": target.filename,
        "content_type": target.content_type,
    }


def zip_answer(request: Request, context: Context, state: ZipState, model: type[BaseModel]) -> JSONResponse:
    """A ZIP download's answer in `model`: 202 with a null link while the ZIP builds, then 200 with it.

    `model` names the fields its API answers among ``download_url``, ``status`` (``generating`` or
    ``ready``) and ``size_bytes``.
    """
    fields = set(model.model_fields)
    if not state.ready or state.target is None:
        building = {"download_url": None, "status": "generating", "size_bytes": None}
        return JSONResponse(model(**{k: v for k, v in building.items() if k in fields}).model_dump(), 202)
    ready = {
        "download_url": download_url(request, context, state.target),
        "status": "ready",
        "size_bytes": state.size_bytes,
    }
    return JSONResponse(model(**{k: v for k, v in ready.items() if k in fields}).model_dump())


def _disposition(filename: str) -> str:
    ascii_name = filename.encode("ascii", "replace").decode("ascii").replace('"', "_").replace("?", "_")
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename, safe='')}"


@router.get(DOWNLOAD_PATH + "/{token}")
def get_download(token: str, request: Request, context: Context) -> StreamingResponse:
    """Serve the bytes a signed link names."""
    target = verify_download(context.signer, token)
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
