"""The HTTP transport every hosted provider shares: kept-alive HTTP/1.1 connections, JSON in and out.

Requests go through `datamill.llm.http.http1` connections rather than aiohttp or httpx: at 256 concurrent
calls httpx 0.28 spends about 20 ms of CPU per call, aiohttp about 0.15 ms and this transport about 0.04 ms
(see bench/gateway_throughput.py), and on two cores client CPU per call caps throughput.

Connections are pooled per (scheme, host, port) and per event loop, at most ``pool_size`` requests in flight.
A request that finds its kept-alive connection closed by the server before any reply arrived is sent once
more on a new connection (the server never saw it); any other failure is a `TransientError` for the
gateway's retry policy.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import ssl
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import orjson

from datamill.core.errors import PermanentModelError, TransientError
from datamill.llm.http.deadlines import Deadlines
from datamill.llm.http.http1 import Http1Connection, ProtocolError

#: Set to 1 (as the test suite does) to refuse any model request to a host that is not loopback. A transport
#: reads it when it first meets a URL (an allowed URL is remembered with its connection details).
BLOCK_REMOTE_ENV = "DATAMILL_BLOCK_REMOTE_MODELS"
_USER_AGENT = "datamill"
_Reply = tuple[int, dict[str, str], bytes]
_MAX_IDLE_PER_HOST = 1024


@dataclass(slots=True)
class HttpReply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)


@dataclass(frozen=True, slots=True)
class _Target:
    """A URL split once: where to connect and the start of every request to it."""

    key: tuple[str, str, int]
    host: str
    port: int
    tls: bool
    prefix: bytes  # request line, Host, User-Agent, Accept-Encoding


class HttpTransport:
    """Pools of kept-alive HTTP/1.1 connections, opened lazily."""

    def __init__(self, *, pool_size: int = 1024) -> None:
        self._pool_size = pool_size
        self._idle: dict[tuple[str, str, int], list[Http1Connection]] = {}
        self._slots: asyncio.Semaphore | None = None
        self._deadlines: Deadlines | None = None
        self._targets: dict[str, _Target] = {}
        self._tls: ssl.SSLContext | None = None

    async def post_json(
        self, url: str, payload: Any, *, headers: dict[str, str] | None = None, timeout_s: float = 120.0
    ) -> HttpReply:
        """POST a JSON body and return status, headers (lower-cased names) and raw body.

        Raises:
            TransientError: on a timeout, a connection failure or a reply that is not valid HTTP.
            PermanentModelError: when remote hosts are blocked and the URL is not loopback, or a header
                value holds a line break.
        """
        target = self._targets.get(url) or self._target(url)
        body = orjson.dumps(payload)
        data = b"".join(
            (target.prefix, _header_block(headers), b"Content-Length: %d\r\n\r\n" % len(body), body)
        )
        slots, deadlines = self._bind()
        deadline = deadlines.loop.time() + timeout_s
        try:
            if slots.locked():
                async with asyncio.timeout_at(deadline):
                    await slots.acquire()
            else:
                await slots.acquire()  # a free slot: no wait, no timer
            try:
                status, reply_headers, reply_body = await self._send(target, data, deadlines, deadline)
            finally:
                slots.release()
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
        loop = asyncio.get_running_loop()
        if target.tls:
            if self._tls is None:
                self._tls = ssl.create_default_context()
            _, conn = await loop.create_connection(
                Http1Connection, target.host, target.port, ssl=self._tls, server_hostname=target.host
            )
        else:
            _, conn = await loop.create_connection(Http1Connection, target.host, target.port)
        return conn

    def _bind(self) -> tuple[asyncio.Semaphore, Deadlines]:
        """The in-flight limit and deadlines of this loop (another loop's pooled connections are dropped)."""
        loop = asyncio.get_running_loop()
        if self._slots is None or self._deadlines is None or loop is not self._deadlines.loop:
            self._idle.clear()
            self._slots = asyncio.Semaphore(self._pool_size)
            self._deadlines = Deadlines(loop)
        return self._slots, self._deadlines

    def _target(self, url: str) -> _Target:
        _check_host_allowed(url)
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https") or not parts.hostname:
            raise PermanentModelError(f"not an http(s) URL: {url!r}", status=400)
        tls = scheme == "https"
        default_port = 443 if tls else 80
        port = parts.port or default_port
        host = parts.hostname
        netloc = f"[{host}]" if ":" in host else host
        host_header = netloc if port == default_port else f"{netloc}:{port}"
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        prefix = (
            f"POST {path} HTTP/1.1\r\nHost: {host_header}\r\nUser-Agent: {_USER_AGENT}\r\n"
            "Accept: application/json\r\nAccept-Encoding: identity\r\nContent-Type: application/json\r\n"
        ).encode("latin-1")
        target = _Target((scheme, host, port), host, port, tls, prefix)
        if len(self._targets) > 256:
            self._targets.clear()
        self._targets[url] = target
        return target


def _header_block(headers: dict[str, str] | None) -> bytes:
    if not headers:
        return b""
    lines = []
    for name, value in headers.items():
        text = f"{name}: {value}\r\n"
        if "\r" in name or "\n" in name or "\r" in value or "\n" in value or ":" in name:
            raise PermanentModelError(
                f"header {name!r} holds a line break or a colon in its name; check the API key and the "
                "route's headers",
                status=400,
            )
        lines.append(text)
    return "".join(lines).encode("utf-8")


def _check_host_allowed(url: str) -> None:
    if os.environ.get(BLOCK_REMOTE_ENV, "") not in ("1", "true", "yes"):
        return
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return
    try:
        if ipaddress.ip_address(host).is_loopback:
            return
    except ValueError:
        pass
    raise PermanentModelError(f"remote model requests are blocked ({BLOCK_REMOTE_ENV}=1): {url}")
