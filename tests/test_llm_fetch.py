"""The safe URL fetcher: internal addresses refused (literal, resolved, redirected to), limits enforced."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from ipaddress import ip_address

import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult

from datamill.core.errors import ConfigError
from datamill.llm.guard import remote_allowed
from datamill.services.settings.entry import Settings
from datamill.text.fetch import FetchFailed, FetchRefused, SafeFetcher
from datamill.text.fetch_policy import FetchPolicy, internal_reason


class ScriptedResolver(AbstractResolver):
    """Answers host names from a table, as a DNS server under an attacker's control would."""

    def __init__(self, table: dict[str, list[str]]) -> None:
        self.table = table
        self.asked: list[str] = []

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        self.asked.append(host)
        return [
            {"hostname": host, "host": a, "port": port, "family": socket.AF_INET, "proto": 0, "flags": 0}
            for a in self.table[host]
        ]

    async def close(self) -> None:
        return None


@pytest.fixture
async def files() -> AsyncIterator[str]:
    """A loopback file server: /ok, /big (chunked), /declared-big, /slow, /to?url=..., /loop, /echo."""

    async def big(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        for _ in range(64):
            await response.write(b"x" * 32 * 1024)
        return response

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(1.5)
        return web.Response(body=b"late")

    async def echo(request: web.Request) -> web.Response:
        return web.json_response({"authorization": request.headers.get("Authorization")})

    async def ok(request: web.Request) -> web.Response:
        return web.Response(body=b"hello", content_type="image/png")

    async def declared_big(request: web.Request) -> web.Response:
        return web.Response(body=b"y" * 4096)

    async def redirect(request: web.Request) -> web.Response:
        raise web.HTTPFound(request.query.get("url", "/loop"))

    app = web.Application()
    app.router.add_get("/ok", ok)
    app.router.add_get("/big", big)
    app.router.add_get("/declared-big", declared_big)
    app.router.add_get("/slow", slow)
    app.router.add_get("/to", redirect)
    app.router.add_get("/loop", redirect)
    app.router.add_get("/echo", echo)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    await runner.cleanup()


def _allowing(*entries: str, **limits: float) -> FetchPolicy:
    return FetchPolicy.with_allowed(entries, **limits)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/",
        "http://[::1]/",
        "http://10.1.2.3/",
        "http://192.168.0.10:8080/x",
        "http://169.254.169.254/latest/meta-data/",
        "http://100.100.100.200/latest/meta-data/",
        "http://[fd00:ec2::254]/",
        "http://[::ffff:127.0.0.1]/",
        "http://[::ffff:a9fe:a9fe]/",
        "http://[2002:7f00:1::]/",
        "http://[64:ff9b::a00:1]/",
        "http://0.0.0.0/",
        "http://[::]/",
        "http://224.0.0.1/",
        "http://[ff02::1]/",
        "http://240.0.0.1/",
    ],
)
async def test_internal_addresses_are_refused(url: str) -> None:
    async with SafeFetcher(FetchPolicy()) as fetcher:
        with pytest.raises(FetchRefused, match="address; allow it with DATAMILL_FETCH_ALLOW"):
            await fetcher.fetch(url)


@pytest.mark.parametrize(
    "url", ["file:///etc/passwd", "ftp://example.com/x", "gopher://127.0.0.1/", "nohost"]
)
async def test_other_schemes_are_refused(url: str) -> None:
    async with SafeFetcher(FetchPolicy()) as fetcher:
        with pytest.raises(FetchRefused, match="only http and https"):
            await fetcher.fetch(url)


async def test_a_host_name_resolving_to_loopback_is_refused(files: str) -> None:
    port = files.rsplit(":", 1)[1]
    async with SafeFetcher(FetchPolicy()) as fetcher:
        with pytest.raises(FetchRefused, match=r"localhost is .*loopback"):
            await fetcher.fetch(f"http://localhost:{port}/ok")


@pytest.mark.parametrize("url", ["http://2130706433/", "http://127.1/", "http://0x7f000001/"])
async def test_legacy_numeric_forms_of_loopback_are_refused(url: str) -> None:
    async with SafeFetcher(FetchPolicy()) as fetcher:
        with pytest.raises(FetchRefused):
            await fetcher.fetch(url)


async def test_one_internal_address_among_public_ones_refuses_the_host() -> None:
    # Refused at resolution, before any connection: the public address is never dialled.
    resolver = ScriptedResolver({"mixed.test": ["8.8.8.8", "169.254.169.254"]})
    async with SafeFetcher(FetchPolicy(), resolver=resolver) as fetcher:
        with remote_allowed(), pytest.raises(FetchRefused, match=r"169.254.169.254, a link-local"):
            await fetcher.fetch("http://mixed.test/")
    assert resolver.asked == ["mixed.test"]


async def test_an_allowed_loopback_server_is_fetched(files: str) -> None:
    async with SafeFetcher(_allowing("127.0.0.1")) as fetcher:
        result = await fetcher.fetch(f"{files}/ok")
    assert (result.status, result.body, result.content_type) == (200, b"hello", "image/png")


async def test_allowed_by_host_name_and_by_network(files: str) -> None:
    port = files.rsplit(":", 1)[1]
    resolver = ScriptedResolver({"files.test": ["127.0.0.1"], "img.corp.test": ["127.0.0.1"]})
    for policy in (_allowing("files.test", "*.corp.test"), _allowing("127.0.0.0/8")):
        async with SafeFetcher(policy, resolver=resolver) as fetcher:
            assert (await fetcher.fetch(f"http://files.test:{port}/ok")).body == b"hello"
            assert (await fetcher.fetch(f"http://img.corp.test:{port}/ok")).body == b"hello"


async def test_a_redirect_to_loopback_from_an_allowed_server_is_refused(files: str) -> None:
    port = files.rsplit(":", 1)[1]
    resolver = ScriptedResolver({"files.test": ["127.0.0.1"], "localhost": ["127.0.0.1", "::1"]})
    async with SafeFetcher(_allowing("files.test"), resolver=resolver) as fetcher:
        assert (await fetcher.fetch(f"http://files.test:{port}/ok")).body == b"hello"
        for target in (f"{files}/ok", f"http://localhost:{port}/ok", "http://169.254.169.254/"):
            with pytest.raises(FetchRefused, match=r"loopback|link-local"):
                await fetcher.fetch(f"http://files.test:{port}/to?url={target}")


async def test_redirects_are_followed_and_bounded(files: str) -> None:
    async with SafeFetcher(_allowing("127.0.0.1", max_redirects=3)) as fetcher:
        result = await fetcher.fetch(f"{files}/to?url=/ok")
        assert (result.url, result.body) == (f"{files}/ok", b"hello")
        with pytest.raises(FetchFailed, match="more than 3 redirects"):
            await fetcher.fetch(f"{files}/loop")


async def test_credentials_are_dropped_when_a_redirect_changes_origin(files: str) -> None:
    port = files.rsplit(":", 1)[1]
    resolver = ScriptedResolver({"other.test": ["127.0.0.1"]})
    headers = {"Authorization": "Bearer secret"}
    async with SafeFetcher(_allowing("127.0.0.1", "other.test"), resolver=resolver) as fetcher:
        same = await fetcher.fetch(f"{files}/to?url=/echo", headers=headers)
        other = await fetcher.fetch(f"{files}/to?url=http://other.test:{port}/echo", headers=headers)
    assert same.json() == {"authorization": "Bearer secret"}
    assert other.json() == {"authorization": None}


async def test_bodies_past_the_size_cap_fail(files: str) -> None:
    async with SafeFetcher(_allowing("127.0.0.1", max_bytes=1024 * 1024)) as fetcher:
        with pytest.raises(FetchFailed, match="larger than the limit of 1,048,576 bytes"):
            await fetcher.fetch(f"{files}/big")  # chunked: no Content-Length, cut while streaming
        with pytest.raises(FetchFailed, match="4,096 bytes; the limit is 100"):
            await fetcher.fetch(f"{files}/declared-big", max_bytes=100)
        assert len((await fetcher.fetch(f"{files}/big", max_bytes=4 * 1024 * 1024)).body) == 2 * 1024 * 1024


async def test_a_slow_server_fails_at_the_time_cap(files: str) -> None:
    async with SafeFetcher(_allowing("127.0.0.1", timeout_s=0.3)) as fetcher:
        with pytest.raises(FetchFailed, match=r"took longer than 0.3 s"):
            await fetcher.fetch(f"{files}/slow")


async def test_an_unreachable_allowed_server_fails_with_a_reason() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: connections are refused
        async with SafeFetcher(_allowing("127.0.0.1")) as fetcher:
            with pytest.raises(FetchFailed, match="ClientConnectorError"):
                await fetcher.fetch(f"http://127.0.0.1:{port}/")


def _from_setting(value: str) -> FetchPolicy:
    return FetchPolicy.with_allowed(Settings.from_env({"DATAMILL_FETCH_ALLOW": value}).fetch_allow)


def test_the_allow_list_setting() -> None:
    policy = _from_setting(" files.internal, *.corp.example ,10.0.0.0/8,,::1")
    assert policy.host_allowed("FILES.internal.")
    assert policy.host_allowed("a.b.corp.example")
    assert not policy.host_allowed("corp.example")
    assert not policy.host_allowed("evil-files.internal")
    with remote_allowed():  # judges addresses only; nothing is dialled
        assert policy.refusal("x", ip_address("10.9.8.7")) is None
        assert policy.refusal("x", ip_address("192.168.1.1")) is not None
    assert Settings.from_env({}).fetch_allow == ()
    with pytest.raises(ConfigError, match="DATAMILL_FETCH_ALLOW: 'bad host' is neither"):
        _from_setting("bad host")


def test_public_addresses_are_not_internal() -> None:
    for public in ("8.8.8.8", "2606:4700::1111", "::ffff:8.8.8.8"):
        assert internal_reason(ip_address(public)) is None
