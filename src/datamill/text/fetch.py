"""The one way datamill fetches a URL a user (or a model) gave it, safe against server-side request forgery.

`SafeFetcher` allows only http and https, resolves host names itself and refuses internal addresses (see
`datamill.text.fetch_policy`) unless the operator allowed them. The check lives in the resolver of the
aiohttp connector, so the address checked is the address connected to: a host name cannot resolve to a
public address for the check and to an internal one for the connection. Redirects are followed by hand, at
most ``max_redirects`` of them, each new URL checked again (and credentials dropped when the origin
changes). The body is streamed and the fetch fails as soon as it passes ``max_bytes``; the whole fetch,
redirects and body included, must finish within ``timeout_s``.

`SafeFetcher.fetch` answers the whole body; `SafeFetcher.stream` hands it over chunk by chunk (an import
writes each chunk to storage as it arrives, so a large file never sits in memory), under the same checks.

Errors::

    FetchError        (a DatamillError; ``url`` and ``reason``)
     ├── FetchRefused  the URL is not allowed: scheme, malformed, an internal address
     └── FetchFailed   it was allowed but did not work: unreachable, too slow, too large, too many redirects
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver
from yarl import URL

from datamill.core.errors import DatamillError
from datamill.text.fetch_policy import FetchPolicy, parse_address

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_CREDENTIALS = ("authorization", "cookie", "proxy-authorization")


class FetchError(DatamillError):
    """A URL that could not be fetched; ``reason`` says why."""

    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        self.reason = reason
        super().__init__(f"{url}: {reason}")


class FetchRefused(FetchError):
    """The URL may not be fetched: not http(s), malformed, or an internal address not on the allow-list."""


class FetchFailed(FetchError):
    """The URL was allowed but the fetch did not work: unreachable, too slow, too large, redirect loop."""


@dataclass(frozen=True, slots=True)
class FetchResult:
    """A fetched response: the final URL after redirects, the status, the headers and the whole body."""

    url: str
    status: int
    headers: Mapping[str, str]
    body: bytes

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def content_type(self) -> str:
        """The media type of the body (``Content-Type`` without parameters), lowercase."""
        return self.headers.get("content-type", "").split(";", 1)[0].strip().lower()

    def json(self) -> Any:
        """The body parsed as JSON; raises ValueError when it is not."""
        return orjson.loads(self.body)


@dataclass(frozen=True, slots=True)
class FetchStream:
    """A response whose body is read as it arrives: the final URL, the status, the headers, `chunks`."""

    url: str
    status: int
    headers: Mapping[str, str]
    _response: aiohttp.ClientResponse
    _limit: int

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def content_type(self) -> str:
        """The media type of the body (``Content-Type`` without parameters), lowercase."""
        return self.headers.get("content-type", "").split(";", 1)[0].strip().lower()

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body, chunk by chunk.

        Raises:
            FetchFailed: the body passes the byte limit, or the connection breaks.
        """
        seen = 0
        try:
            async for chunk in self._response.content.iter_chunked(64 * 1024):
                seen += len(chunk)
                if seen > self._limit:
                    raise FetchFailed(self.url, f"the body is larger than the limit of {self._limit:,} bytes")
                yield chunk
        except aiohttp.ClientError as exc:
            raise FetchFailed(self.url, f"{type(exc).__name__}: {exc}") from exc


class _Refusal(Exception):
    """Raised inside the connector's resolver; turned into `FetchRefused` with the URL."""


class GuardedResolver(AbstractResolver):
    """Resolves a host name and refuses it when any of its addresses is one the policy forbids."""

    def __init__(self, policy: FetchPolicy, inner: AbstractResolver | None = None) -> None:
        self._policy = policy
        self._inner = inner or ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        for result in results:
            address = parse_address(result["host"])
            if address is None:
                raise _Refusal(f"{host} resolved to {result['host']!r}, which is not an address")
            reason = self._policy.refusal(host, address)
            if reason is not None:
                raise _Refusal(reason)
        return results

    async def close(self) -> None:
        await self._inner.close()


class SafeFetcher:
    """Fetches http(s) URLs under a `FetchPolicy` (no internal address allowed when None).

    Args:
        policy: what may be reached, and the size, time and redirect limits.
        resolver: the DNS resolver asked before the policy's check (the system's when None).
    """

    def __init__(
        self, policy: FetchPolicy | None = None, *, resolver: AbstractResolver | None = None
    ) -> None:
        self.policy = policy if policy is not None else FetchPolicy()
        self._resolver = resolver
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> SafeFetcher:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool (a later fetch opens a new one)."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def fetch(
        self,
        url: str,
        *,
        method: str = "GET",
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        max_bytes: int | None = None,
    ) -> FetchResult:
        """Fetch ``url``, following redirects; answers whatever status the server gives.

        Raises:
            FetchRefused: the URL, or a URL it redirects to, is not allowed.
            FetchFailed: the server is unreachable, too slow, sends too much, or redirects too often.
        """
        limit = self.policy.max_bytes if max_bytes is None else max_bytes
        try:
            async with asyncio.timeout(self.policy.timeout_s):
                return await self._follow(url, method, json, dict(headers or {}), limit)
        except TimeoutError:
            raise FetchFailed(url, f"took longer than {self.policy.timeout_s:g} s") from None

    @contextlib.asynccontextmanager
    async def stream(
        self, url: str, *, headers: Mapping[str, str] | None = None, max_bytes: int | None = None
    ) -> AsyncIterator[FetchStream]:
        """GET `url`, following redirects, and hand over its body as it arrives (`FetchStream.chunks`).

        The time limit covers the whole block: redirects, and the body however the caller reads it.

        Raises:
            FetchRefused: the URL, or a URL it redirects to, is not allowed.
            FetchFailed: unreachable, too slow, too large (declared, or once the chunks pass the limit), or
                too many redirects.
        """
        limit = self.policy.max_bytes if max_bytes is None else max_bytes
        try:
            async with asyncio.timeout(self.policy.timeout_s):
                current, response = await self._open_following(url, dict(headers or {}))
                try:
                    declared = response.content_length
                    if declared is not None and declared > limit:
                        raise FetchFailed(
                            str(current), f"the body is {declared:,} bytes; the limit is {limit:,}"
                        )
                    reply_headers = {k.lower(): v for k, v in response.headers.items()}
                    yield FetchStream(str(current), response.status, reply_headers, response, limit)
                finally:
                    response.release()
        except TimeoutError:
            raise FetchFailed(url, f"took longer than {self.policy.timeout_s:g} s") from None

    async def _open_following(self, url: str, headers: dict[str, str]) -> tuple[URL, aiohttp.ClientResponse]:
        """The first response of a GET to `url` that is not a redirect, its body unread."""
        current = self._checked(url)
        for _ in range(self.policy.max_redirects + 1):
            try:
                response = await self._ensure_session().request(
                    "GET", current, headers=headers, allow_redirects=False
                )
            except _Refusal as exc:
                raise FetchRefused(str(current), str(exc)) from None
            except aiohttp.InvalidURL as exc:
                raise FetchRefused(str(current), f"not a valid URL: {exc}") from exc
            except aiohttp.ClientError as exc:
                raise FetchFailed(str(current), f"{type(exc).__name__}: {exc}") from exc
            location = response.headers.get("location")
            if response.status not in _REDIRECTS or not location:
                return current, response
            response.release()
            try:
                target = self._checked(str(current.join(URL(location))))
            except ValueError as exc:
                raise FetchRefused(url, f"redirects to a malformed URL {location!r}: {exc}") from exc
            if target.origin() != current.origin():
                headers = {k: v for k, v in headers.items() if k.lower() not in _CREDENTIALS}
            current = target
        raise FetchFailed(url, f"more than {self.policy.max_redirects} redirects")

    async def _follow(
        self, url: str, method: str, body: Any, headers: dict[str, str], limit: int
    ) -> FetchResult:
        current = self._checked(url)
        for _ in range(self.policy.max_redirects + 1):
            status, reply_headers, data = await self._once(current, method, body, headers, limit)
            location = reply_headers.get("location")
            if status not in _REDIRECTS or not location:
                return FetchResult(str(current), status, reply_headers, data)
            try:
                target = self._checked(str(current.join(URL(location))))
            except ValueError as exc:
                raise FetchRefused(url, f"redirects to a malformed URL {location!r}: {exc}") from exc
            if target.origin() != current.origin():
                headers = {k: v for k, v in headers.items() if k.lower() not in _CREDENTIALS}
            if status == 303 or (status in (301, 302) and method != "GET"):
                method, body = "GET", None
            current = target
        raise FetchFailed(url, f"more than {self.policy.max_redirects} redirects")

    def _checked(self, url: str) -> URL:
        """``url`` parsed, when its scheme is http(s) and a literal address in it is allowed."""
        try:
            parsed = URL(url)
        except (ValueError, TypeError) as exc:
            raise FetchRefused(str(url), f"not a valid URL: {exc}") from exc
        if parsed.scheme not in ("http", "https"):
            raise FetchRefused(
                url, f"only http and https URLs can be fetched, not {parsed.scheme or 'none'!r}"
            )
        if not parsed.host:
            raise FetchRefused(url, "the URL has no host")
        address = parse_address(parsed.host)
        if address is not None:  # literal addresses never reach the resolver, so they are checked here
            reason = self.policy.refusal(parsed.host, address)
            if reason is not None:
                raise FetchRefused(url, reason)
        return parsed

    async def _once(
        self, url: URL, method: str, body: Any, headers: dict[str, str], limit: int
    ) -> tuple[int, dict[str, str], bytes]:
        try:
            async with self._ensure_session().request(
                method, url, json=body, headers=headers, allow_redirects=False
            ) as response:
                reply_headers = {k.lower(): v for k, v in response.headers.items()}
                declared = response.content_length
                if declared is not None and declared > limit:
                    raise FetchFailed(str(url), f"the body is {declared:,} bytes; the limit is {limit:,}")
                data = bytearray()
                async for chunk in response.content.iter_chunked(64 * 1024):
                    data += chunk
                    if len(data) > limit:
                        raise FetchFailed(str(url), f"the body is larger than the limit of {limit:,} bytes")
                return response.status, reply_headers, bytes(data)
        except _Refusal as exc:
            raise FetchRefused(str(url), str(exc)) from None
        except aiohttp.InvalidURL as exc:
            raise FetchRefused(str(url), f"not a valid URL: {exc}") from exc
        except aiohttp.ClientError as exc:
            raise FetchFailed(str(url), f"{type(exc).__name__}: {exc}") from exc

    def _ensure_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            resolver = GuardedResolver(self.policy, self._resolver)
            connector = aiohttp.TCPConnector(resolver=resolver, use_dns_cache=False, limit=64)
            self._session = aiohttp.ClientSession(connector=connector, trust_env=False)
        return self._session
