"""Image URLs are downloaded through the safe fetcher before a model sees them; refusals reject the row."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from datamill.core.adapt_request import parse_adapt_request
from datamill.llm.gateway import Gateway
from datamill.llm.providers.fake import FakeProvider
from datamill.llm.routing import Routing
from datamill.llm.types import ImagePart
from datamill.pipelines.plan import plan_adaptation
from datamill.steps.base import RowRejected, StepContext
from datamill.steps.image_fetch import FetchImages
from datamill.text.fetch_policy import FetchPolicy

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16
LOOPBACK = FetchPolicy.with_allowed(["127.0.0.1"])


@pytest.fixture
async def images() -> AsyncIterator[str]:
    async def png(request: web.Request) -> web.Response:
        return web.Response(body=PNG, content_type="application/octet-stream")

    async def page(request: web.Request) -> web.Response:
        return web.Response(text="<html>login</html>", content_type="text/html")

    app = web.Application()
    app.router.add_get("/cat.png", png)
    app.router.add_get("/page", page)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    await runner.cleanup()


async def test_an_allowed_image_url_is_downloaded(images: str) -> None:
    row = {"_images": [ImagePart(url=f"{images}/cat.png"), ImagePart(data=b"GIF89a", media_type="image/gif")]}
    assert await FetchImages(LOOPBACK).process_row(row, StepContext()) is None
    fetched, kept = row["_images"]
    assert (fetched.data, fetched.media_type, fetched.url) == (PNG, "image/png", None)
    assert kept.data == b"GIF89a"


async def test_an_internal_image_url_rejects_the_row_by_default(images: str) -> None:
    for url in (f"{images}/cat.png", "http://169.254.169.254/latest/meta-data/iam/", "file:///etc/passwd"):
        with pytest.raises(RowRejected, match=r"image URL .*(loopback|link-local|only http and https)"):
            await FetchImages().process_row({"_images": [ImagePart(url=url)]}, StepContext())


@pytest.mark.parametrize(
    ("path", "reason"), [("/missing.png", "HTTP 404"), ("/page", "text/html, not an image")]
)
async def test_a_url_that_is_not_an_image_rejects_the_row(images: str, path: str, reason: str) -> None:
    with pytest.raises(RowRejected, match=reason):
        await FetchImages(LOOPBACK).process_row({"_images": [ImagePart(url=images + path)]}, StepContext())


async def test_rows_without_urls_are_left_alone() -> None:
    row = {"_images": [ImagePart(data=PNG)]}
    await FetchImages().process_row(row, StepContext())
    await FetchImages().process_row({"_images": []}, StepContext())
    assert row["_images"][0].data == PNG


async def test_an_image_column_puts_the_fetch_first_among_row_steps() -> None:
    routing = Routing.from_dict({"routes": {"seeing/*": {"provider": "fake", "vision": True}}})
    async with Gateway(routing, providers={"fake": FakeProvider()}) as gateway:
        model = gateway.model("seeing/m")
        with_image = parse_adapt_request({"column_mapping": {"prompt": "q", "image": "img"}})
        without = parse_adapt_request({"column_mapping": {"prompt": "q"}})
        assert plan_adaptation(with_image, model, total_rows=1).row_steps[0].name == "image_fetch"
        assert "image_fetch" not in plan_adaptation(without, model, total_rows=1).step_names
