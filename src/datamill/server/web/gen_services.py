"""The generation services the generate pages call, and streaming a stored file to the browser.

The services are built per request over the app's store and blobs; `stream` serves a seed file, a
generated sample or a run's ZIP to the signed-in tenant.
"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import quote

from fastapi.responses import StreamingResponse

from datamill.server.web.deps import Web
from datamill.services.errors import NotFoundError
from datamill.services.generation.common import DownloadTarget
from datamill.services.generation.evaluations import EvaluationService
from datamill.services.generation.runs import RunService
from datamill.services.generation.seeds import SeedDatasetService
from datamill.services.generation.specs import SpecService
from datamill.text.fetch_policy import FetchPolicy

_CHUNK = 1 << 20


def seeds(web: Web) -> SeedDatasetService:
    return SeedDatasetService(web.context.store, web.context.blobs)


def specs(web: Web) -> SpecService:
    return SpecService(web.context.store, web.context.blobs, web.context.runs.settings.price_table)


def runs(web: Web) -> RunService:
    settings = web.context.runs.settings
    return RunService(
        web.context.store,
        web.context.blobs,
        settings.price_table,
        FetchPolicy.with_allowed(settings.fetch_allow),
    )


def evaluations(web: Web) -> EvaluationService:
    return EvaluationService(web.context.store, web.context.runs.settings.price_table)


def read_text(web: Web, target: DownloadTarget, limit: int = 200_000) -> str:
    """The first `limit` bytes of a stored file as text (undecodable bytes replaced)."""
    with web.context.blobs.open_read(target.blob_key) as handle:
        return handle.read(limit).decode("utf-8", errors="replace")


def stream(web: Web, target: DownloadTarget) -> StreamingResponse:
    """The stored file as an attachment named after it."""
    blobs = web.context.blobs
    if not blobs.exists(target.blob_key):
        raise NotFoundError("file", target.filename)
    handle = blobs.open_read(target.blob_key)

    def chunks() -> Iterator[bytes]:
        with handle:
            while chunk := handle.read(_CHUNK):
                yield chunk

    ascii_name = (
        target.filename.encode("ascii", "replace").decode("ascii").replace('"', "_").replace("?", "_")
    )
    disposition = f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(target.filename, safe='')}"
    return StreamingResponse(
        chunks(), media_type=target.content_type, headers={"Content-Disposition": disposition}
    )
