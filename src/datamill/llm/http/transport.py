"""The HTTP transport every hosted provider shares: kept-alive HTTP/1.1 connections, JSON in and out.

Requests go through `datamill.llm.http.http1` connections rather than aiohttp or httpx: at 256 concurrent
calls httpx 0.28 spends about 20 ms of CPU per call, aiohttp about 0.15 ms and this transport about 0.04 ms
(see bench/gateway_throughput.py), and on two cores client CPU per call caps throughput.

Connections are pooled per (scheme, host, port, proxy) and per event loop. At most ``pool_size`` requests
are in flight in all and ``max_per_host`` to one host (one request per connection, so these cap the open
connections too); a request waiting for a slot waits within its own deadline. A request that finds its
kept-alive connection closed by the server before any reply arrived is sent once more on a new connection
(the server never saw it). A failure that no retry can mend (see `datamill.llm.http.connect`) is a
`ConnectionConfigError`; any other failure is a `TransientError` for the gateway's retry policy.

Proxies and trusted CAs come from the environment the transport is given (the one the entry point read,
passed down through the routing; none when not given), read when the first request needs them: see
`datamill.llm.http.proxies` and `datamill.llm.http.tls`.

A transport made with an ``address_check`` (the one serving endpoints a tenant named) connects directly,
never through a proxy, and dials only addresses the check passes (`datamill.llm.http.connect`). It never
follows redirects (no transport does: a 3xx is an answer), so no redirect can lead it elsewhere.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import ssl
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import orjson

from datamill.core.errors import PermanentModelError, TransientError, UnreadReplyError
from datamill.llm.guard import BLOCK_REMOTE_ENV, remote_blocked
from datamill.llm.http.connect import open_connection
from datamill.llm.http.deadlines import Deadlines
from datamill.llm.http.http1 import MAX_BODY_BYTES, Http1Connection, ProtocolError
from datamill.llm.http.interface import HttpReply
from datamill.llm.http.proxies import Proxy, ProxyRules
from datamill.llm.http.tls import tls_context
from datamill.llm.types import AddressCheck

_USER_AGENT = "datamill"
_Reply = tuple[int, dict[str, str], bytes]
_Key = tuple[str, str, int, str]
_MAX_IDLE_PER_HOST = 1024

__all__ = ["BLOCK_REMOTE_ENV", "HttpReply", "HttpTransport", "header_block"]


@dataclass(frozen=True, slots=True)
class _Target:
    """A URL split once: where to connect and the start of every request to it."""

    key: _Key
    host: str
    port: int
    tls: bool
    proxy: Proxy | None
    prefix: bytes  # request line, Host, User-Agent, Accept-Encoding (and Proxy-Authorization)


class _Slots:
    """A counting limit that costs a comparison when a slot is free (no coroutine, no future)."""

    __slots__ = ("_waiters", "free")

    def __init__(self, size: int) -> None:
        self.free = size
        self._waiters: deque[asyncio.Future[None]] = deque()

    def try_take(self) -> bool:
        if self.free > 0 and not self._waiters:
            self.free -= 1
            return True
        return False

    async def take(self) -> None:
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self.give()  # handed a slot, then cancelled: pass it on
            else:
                self._waiters.remove(waiter)
            raise

    def give(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # the slot goes straight to the next waiter
                return
        self.free += 1


class HttpTransport:
    """Pools of kept-alive HTTP/1.1 connections, opened lazily."""

    def __init__(
        self,
        *,
        pool_size: int = 1024,
        max_per_host: int = 512,
        max_body_bytes: int = MAX_BODY_BYTES,
        environ: Mapping[str, str] | None = None,
        address_check: AddressCheck | None = None,
    ) -> None:
        """A transport; nothing is opened or read until the first request.

        Args:
            pool_size: the most requests in flight in all.
            max_per_host: the most requests in flight to one host (through one proxy).
            max_body_bytes: the largest reply body accepted, on the wire and decoded.
            environ: where the proxy and CA variables are read (none when None).
            address_check: when given, connections are direct and only to addresses it passes.
        """
        self._pool_size = pool_size
        self._max_per_host = max_per_host
        self._factory = functools.partial(Http1Connection, max_body_bytes)
        self._environ: Mapping[str, str] = {} if environ is None else environ
        self._idle: dict[_Key, list[Http1Connection]] = {}
        self._slots: _Slots | None = None
        self._host_slots: dict[_Key, _Slots] = {}
        self._deadlines: Deadlines | None = None
        self._targets: dict[tuple[str, str | None], _Target] = {}
        self._tls: ssl.SSLContext | None = None
        self._proxies: ProxyRules | None = None
        self._address_check = address_check

    async def post_json(
        self,
        url: str,
        payload: Any,
        *,
        headers: dict[str, str] | None = None,
        timeout_s: float = 120.0,
        proxy: str | None = None,
    ) -> HttpReply:
        """POST a JSON body and return status, headers (lower-cased names) and raw body.

        ``proxy`` is the route's own proxy (None: the environment's; ``"none"``: direct).

        Raises:
            TransientError: on a timeout, a dropped connection or a reply that is not valid HTTP.
            ConnectionConfigError: the host does not resolve, refuses the connection, presents a certificate
                that does not verify, or its proxy cannot be reached or refuses the tunnel.
            ConfigError: a proxy or CA variable, or the route's proxy, is invalid.
            PermanentModelError: when remote hosts are blocked and the URL is not loopback, or a header
                value holds a line break.
        """
        target = self._targets.get((url, proxy)) or self._target(url, proxy)
        body = orjson.dumps(payload)
        data = b"".join(
            (target.prefix, header_block(headers), b"Content-Length: %d\r\n\r\n" % len(body), body)
        )
        return await self._exchange(url, target, data, timeout_s)

    async def request(
        self,
        method: str,
        url: str,
        *,
        body: bytes = b"",
        content_type: str | None = None,
        headers: dict[str, str] | None = None,
        timeout_s: float = 120.0,
        proxy: str | None = None,
    ) -> HttpReply:
        """Send any request (a GET, an upload) and return the whole reply, whatever its status.

        The same pools, limits, deadlines and errors as `post_json`; ``content_type`` names the body's type
        (a GET sends none).
        """
        target = self._target(url, proxy, method=method.upper(), content_type=content_type, keep=False)
        length = b"Content-Length: %d\r\n" % len(body) if body or method.upper() != "GET" else b""
        data = b"".join((target.prefix, header_block(headers), length, b"\r\n", body))
        return await self._exchange(url, target, data, timeout_s)

    async def _exchange(self, url: str, target: _Target, data: bytes, timeout_s: float) -> HttpReply:
        slots, deadlines = self._bind()
        host_slots = self._host_slots.get(target.key) or self._host_slots.setdefault(
            target.key, _Slots(self._max_per_host)
        )
        deadline = deadlines.loop.time() + timeout_s
        try:
            if not slots.try_take():
                async with asyncio.timeout_at(deadline):
                    await slots.take()
            try:
                if not host_slots.try_take():
                    async with asyncio.timeout_at(deadline):
                        await host_slots.take()
                try:
                    status, reply_headers, reply_body = await self._send(target, data, deadlines, deadline)
                finally:
                    host_slots.give()
            finally:
                slots.give()
        except _Unread as exc:
            cause = exc.__cause__
            if isinstance(cause, TimeoutError):
                message = f"timed out after {timeout_s:g}s calling {url}"
            else:
                message = f"connection error calling {url}: {exc}"
            raise UnreadReplyError(f"{message} (a reply the provider bills all the same)") from cause
        except TimeoutError as exc:
            raise TransientError(f"timed out after {timeout_s:g}s calling {url}") from exc
        except (OSError, ProtocolError) as exc:
            raise TransientError(f"connection error calling {url}: {exc}") from exc
        return HttpReply(status, reply_headers, reply_body)

    @property
    def open_connections(self) -> int:
        """Kept-alive connections waiting in the pools."""
        return sum(not c.closed for pool in self._idle.values() for c in pool)

    async def aclose(self) -> None:
        """Close every pooled connection."""
        for pool in self._idle.values():
            for conn in pool:
                conn.close()
        self._idle.clear()
        if self._deadlines is not None:
            self._deadlines.close()

    async def _send(self, target: _Target, data: bytes, deadlines: Deadlines, deadline: float) -> _Reply:
        pool = self._idle.get(target.key)
        while pool:
            conn = pool.pop()
            if conn.closed:
                continue
            try:
                return await self._on(conn, target, data, deadlines, deadline)
            except ConnectionError:
                if conn.answered:
                    raise
                # The server closed this idle connection before reading the request: try a new one.
        async with asyncio.timeout_at(deadline):
            conn = await self._connect(target)
        return await self._on(conn, target, data, deadlines, deadline)

    async def _on(
        self, conn: Http1Connection, target: _Target, data: bytes, deadlines: Deadlines, deadline: float
    ) -> _Reply:
        deadlines.watch(conn, deadline)
        try:
            reply = await conn.request(data)
        except TimeoutError as exc:
            conn.close()  # sent, and the provider answers (and bills) it after the client is gone
            raise _Unread(str(exc)) from exc
        except (OSError, ProtocolError) as exc:
            conn.close()
            if 200 <= conn.reply_status < 300:
                raise _Unread(str(exc)) from exc
            raise
        except BaseException:
            conn.close()
            raise
        finally:
            deadlines.done(conn)
        if conn.reusable:
            pool = self._idle.setdefault(target.key, [])
            if len(pool) < _MAX_IDLE_PER_HOST:
                pool.append(conn)
                return reply
        conn.close()
        return reply

    async def _connect(self, target: _Target) -> Http1Connection:
        tls = None
        if target.tls:
            if self._tls is None:
                self._tls = tls_context(self._environ)
            tls = self._tls
        return await open_connection(
            target.host,
            target.port,
            tls=tls,
            proxy=target.proxy,
            factory=self._factory,
            address_check=self._address_check,
        )

    def _bind(self) -> tuple[_Slots, Deadlines]:
        """The in-flight limits and deadlines of this loop (another loop's pooled connections are dropped)."""
        loop = asyncio.get_running_loop()
        if self._slots is None or self._deadlines is None or loop is not self._deadlines.loop:
            self._idle.clear()
            self._host_slots.clear()
            self._slots = _Slots(self._pool_size)
            self._deadlines = Deadlines(loop)
        return self._slots, self._deadlines

    def _target(
        self,
        url: str,
        route_proxy: str | None,
        *,
        method: str = "POST",
        content_type: str | None = "application/json",
        keep: bool = True,
    ) -> _Target:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https") or not parts.hostname:
            raise PermanentModelError(f"not an http(s) URL: {url!r}", status=400)
        if self._proxies is None:
            self._proxies = ProxyRules.from_environ(self._environ)
        host = parts.hostname
        proxy = None if self._address_check else self._proxies.for_url(scheme, host, route_proxy)
        if self._address_check is None:  # else the check judges each address dialled, this switch included
            self._check_host_allowed(proxy.host if proxy is not None else host, url)
        tls = scheme == "https"
        default_port = 443 if tls else 80
        port = parts.port or default_port
        netloc = f"[{host}]" if ":" in host else host
        host_header = netloc if port == default_port else f"{netloc}:{port}"
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        if proxy is not None and not tls:  # absolute form, to the proxy
            path = f"http://{host_header}{path}"
            if proxy.authorization:
                host_header += f"\r\nProxy-Authorization: {proxy.authorization}"
        kind = f"Content-Type: {content_type}\r\n" if content_type else ""
        prefix = (
            f"{method} {path} HTTP/1.1\r\nHost: {host_header}\r\nUser-Agent: {_USER_AGENT}\r\n"
            f"Accept: application/json\r\nAccept-Encoding: identity\r\n{kind}"
        ).encode("latin-1")
        key = (scheme, host, port, proxy.url if proxy is not None else "")
        target = _Target(key, host, port, tls, proxy, prefix)
        if not keep:
            return target
        if len(self._targets) > 256:
            self._targets.clear()
        self._targets[(url, route_proxy)] = target
        return target

    def _check_host_allowed(self, host: str, url: str) -> None:
        # The network guard (`datamill.llm.guard`): refuse any connection to a host that is not loopback (the
        # proxy's host when there is one). Checked when the transport first meets a URL.
        if not remote_blocked():
            return
        if host == "localhost":
            return
        try:
            if ipaddress.ip_address(host).is_loopback:
                return
        except ValueError:
            pass
        raise PermanentModelError(f"remote model requests are blocked ({BLOCK_REMOTE_ENV}=1): {url}")


def header_block(headers: dict[str, str] | None) -> bytes:
    """The header lines of ``headers``.

    Raises:
        PermanentModelError: a name or value holds a line break, or a name a colon.
    """
    if not headers:
        return b""
    lines = []
    for name, value in headers.items():
        if "\r" in name or "\n" in name or "\r" in value or "\n" in value or ":" in name:
            raise PermanentModelError(
                f"header {name!r} holds a line break or a colon in its name; check the API key and the "
                "route's headers",
                status=400,
            )
        lines.append(f"{name}: {value}\r\n")
    return "".join(lines).encode("utf-8")


class _Unread(Exception):
    """A request that was sent and billed, whose reply did not arrive whole."""
