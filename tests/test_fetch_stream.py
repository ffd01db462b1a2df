"""The safe fetcher's streaming mode: the body arrives chunk by chunk (never held whole), under the same
policy as a plain fetch: redirects followed and checked again, the byte cap enforced while it streams."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from datamill.text.fetch import FetchFailed, FetchRefused, SafeFetcher
from datamill.text.fetch_policy import FetchPolicy

CHUNK = 64 * 1024


@pytest.fixture
async def held() -> AsyncIterator[tuple[str, asyncio.Event]]:
    """``/held`` sends one chunk, then waits for the event before sending the rest; ``/to`` redirects."""
    release = asyncio.Event()

    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        await response.write(b"a" * CHUNK)
        await asyncio.wait_for(release.wait(), 10)
        for _ in range(4):
            await response.write(b"b" * CHUNK)
        return response

    async def to(request: web.Request) -> web.Response:
        raise web.HTTPFound(request.query["url"])

    app = web.Application()
    app.router.add_get("/held", handler)
    app.router.add_get("/to", to)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}", release
    release.set()
    await runner.cleanup()


async def _read_all(fetcher: SafeFetcher, url: str) -> int:
    async with fetcher.stream(url) as response:
        return sum([len(chunk) async for chunk in response.chunks()])


def _allowing_loopback(**limits: object) -> FetchPolicy:
    return FetchPolicy.with_allowed(["127.0.0.1"], **limits)


async def test_the_first_chunk_arrives_before_the_server_sends_the_rest(
    held: tuple[str, asyncio.Event],
) -> None:
    base, release = held
    async with SafeFetcher(_allowing_loopback()) as fetcher, fetcher.stream(f"{base}/held") as response:
        assert response.status == 200
        chunks = response.chunks()
        first = await anext(chunks)  # a buffering fetch would wait here for a body that never ends
        release.set()
        rest = [chunk async for chunk in chunks]
    assert first.startswith(b"a")
    assert len(first) + sum(map(len, rest)) == 5 * CHUNK


async def test_the_byte_cap_stops_the_stream(held: tuple[str, asyncio.Event]) -> None:
    base, release = held
    release.set()
    async with SafeFetcher(_allowing_loopback(max_bytes=2 * CHUNK)) as fetcher:
        with pytest.raises(FetchFailed, match="larger than the limit"):
            await _read_all(fetcher, f"{base}/held")


async def test_a_redirect_is_followed_and_checked_again(held: tuple[str, asyncio.Event]) -> None:
    base, release = held
    release.set()
    async with SafeFetcher(_allowing_loopback()) as fetcher:
        async with fetcher.stream(f"{base}/to?url=/held") as response:
            assert response.url.endswith("/held")
            assert sum([len(c) async for c in response.chunks()]) == 5 * CHUNK
        with pytest.raises(FetchRefused, match=r"169\.254\.169\.254"):
            await _read_all(fetcher, f"{base}/to?url=http://169.254.169.254/latest/meta-data/")
