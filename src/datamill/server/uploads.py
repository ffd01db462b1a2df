"""The upload link: a bare ``PUT`` of raw bytes to a signed URL (Adaption API).

The SDK sends no Authorization and no Content-Type, only the bytes with a Content-Length, and treats any
non-2xx (a redirect included) as failure; so the link is checked (`signing`), the bytes are streamed into
blob storage under the size limit, and the answer is a plain 200 with a small JSON body.
"""

from __future__ import annotations

import datetime as dt
from urllib.parse import urlencode

from fastapi import APIRouter, Request

from datamill.core.errors import ValidationError
from datamill.server.auth import Context
from datamill.server.signing import UPLOAD, LinkExpired, LinkInvalid, LinkSigner
from datamill.services.datasets.uploads import UploadTicket
from datamill.services.errors import UploadRejectedError

UPLOAD_PATH = "/_uploads"

router = APIRouter(include_in_schema=False)


def upload_url(request: Request, context: Context, ticket: UploadTicket) -> str:
    """The signed link for one upload slot, on the configured public URL or the host the request came to."""
    base = context.settings.public_url or str(request.base_url).rstrip("/")
    return f"{base}{UPLOAD_PATH}/{ticket.upload_id}?{upload_query(context.signer, ticket)}"


def upload_query(signer: LinkSigner, ticket: UploadTicket) -> str:
    """The query string (``token=...``) that authorises one PUT to the ticket's slot until it expires."""
    return urlencode({"token": signer.sign(UPLOAD, {"upload_id": ticket.upload_id}, ticket.expires_at)})


def verify_upload(signer: LinkSigner, upload_id: str, token: str | None, now: dt.datetime) -> None:
    """Check an upload link's token.

    Raises:
        UploadRejectedError: The token is missing, altered, made for another upload, or expired.
    """
    if not token:
        raise UploadRejectedError("this upload link is not signed: use the URL the API returned, unchanged")
    try:
        grant = signer.verify(UPLOAD, token, now)
    except LinkExpired:
        raise UploadRejectedError(
            "this upload link has expired; create the dataset again for a new one"
        ) from None
    except LinkInvalid:
        grant = {}
    if grant.get("upload_id") != upload_id:
        raise UploadRejectedError("invalid upload link signature: use the URL the API returned, unchanged")


def _content_length(request: Request) -> int | None:
    value = request.headers.get("content-length")
    if value is None:
        return None
    if not (value.isascii() and value.isdigit()):
        raise ValidationError.of("Content-Length", f"must be a byte count, got {value!r}")
    return int(value)


@router.put(UPLOAD_PATH + "/{upload_id}")
async def put_upload(
    upload_id: str,
    request: Request,
    context: Context,
    token: str | None = None,
) -> dict[str, object]:
    """Receive one file's bytes."""
    verify_upload(context.signer, upload_id, token, dt.datetime.now(dt.UTC))
    info = await context.uploads.receive(upload_id, request.stream(), _content_length(request))
    return {"upload_id": upload_id, "size_bytes": info.size, "sha256": info.sha256}
