"""Image fetching: a row's image URLs downloaded through the safe URL fetcher, before any model sees them.

Runs first among the row steps when the mapping has an image column. Each URL is fetched under the
``DATAMILL_FETCH_ALLOW`` policy (internal addresses refused, size and time capped); a row whose image cannot
be fetched is rejected with the reason. Parts that already hold bytes (files, data URIs) are left as they are.
"""

from __future__ import annotations

from typing import ClassVar

from datamill.steps.base import Row, RowStep, StepContext
from datamill.steps.images import fetch_image
from datamill.text.fetch import SafeFetcher
from datamill.text.fetch_policy import FetchPolicy


class FetchImages(RowStep):
    """Replaces the image URLs in ``_images`` with the downloaded images."""

    name: ClassVar[str] = "image_fetch"
    input_columns = ("_images",)
    output_columns = ("_images",)

    def __init__(self, policy: FetchPolicy | None = None) -> None:
        self._policy = policy

    async def process_row(self, row: Row, ctx: StepContext) -> list[Row] | None:
        images = row.get("_images") or []
        if not any(part.data is None and part.url for part in images):
            return None
        async with SafeFetcher(self._policy) as fetcher:
            row["_images"] = [await fetch_image(part, fetcher) for part in images]
        return None
