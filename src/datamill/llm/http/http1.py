"""A lean HTTP/1.1 client connection for JSON APIs: one request at a time, kept alive between requests.

Why not aiohttp: a model call is one small POST and one small reply, and on a two-core machine the client's
CPU per call caps throughput. aiohttp spends about 150 µs of CPU per request at 256 in flight (headers
multidicts, timers, stream readers, tracing hooks); this connection writes the request in one ``write`` and
parses the reply in place, for about 40 µs (measured with ``bench/gateway_throughput.py``).

What it speaks: ``Content-Length``, ``Transfer-Encoding: chunked`` and read-until-close bodies; interim 1xx
replies are skipped; ``Connection: close`` and HTTP/1.0 replies end the connection after the reply; gzip and
deflate bodies are decoded (requests ask for ``identity``, but a server may compress anyway). It does not
follow redirects, pipeline requests or use proxies. TLS comes from the event loop (``ssl`` module).
"""

from __future__ import annotations

import asyncio
import zlib
from typing import cast

#: The most bytes a reply's status line and headers may take.
MAX_HEAD_BYTES = 64 * 1024


class ProtocolError(Exception):
    """A reply that is not valid HTTP/1.1 (or uses a feature this client does not speak)."""


class Http1Connection(asyncio.Protocol):
    """One connection; `request` sends a request and waits for its whole reply."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        #: Whether any reply bytes arrived since the last request was sent (a reused connection that the
        #: server closed before answering is safe to retry on a new one).
        self.answered = False
        self.reusable = False
        self._buffer = bytearray()
        self._eof = False
        self._waiter: asyncio.Future[tuple[int, dict[str, str], bytes]] | None = None
        self._head: tuple[int, dict[str, str], bool] | None = None
        self._chunks: list[bytes] = []
        self._trailers = False

    # -- asyncio.Protocol --------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport; uvloop's does not subclass asyncio.Transport, so no isinstance check.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if self._waiter is None:  # bytes nobody asked for: the connection cannot be trusted any more
            self.close()
            return
        self._buffer += data
        self.answered = True
        self._advance()

    def eof_received(self) -> bool:
        self._eof = True
        self._finish_or_fail()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._eof = True
        self._finish_or_fail(exc)

    # -- requests ----------------------------------------------------------------------------------------

    async def request(self, data: bytes) -> tuple[int, dict[str, str], bytes]:
        """Send one serialised request and return (status, lower-cased headers, body)."""
        self.answered = self.reusable = False
        if self.transport is None or self.closed or self.transport.is_closing():
            raise ConnectionResetError("the connection is closed")
        waiter: asyncio.Future[tuple[int, dict[str, str], bytes]] = asyncio.get_running_loop().create_future()
        self._waiter, self._head = waiter, None
        self._chunks, self._trailers = [], False
        self.transport.write(data)
        return await waiter

    def expire(self) -> None:
        """Fail the request in flight with TimeoutError (its deadline passed) and drop the connection."""
        if self._waiter is not None and not self._waiter.done():
            self._fail(TimeoutError("the request's deadline passed"))

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    # -- parsing -----------------------------------------------------------------------------------------

    def _finish_or_fail(self, exc: Exception | None = None) -> None:
        if self._waiter is None or self._waiter.done():
            return
        self._advance()  # completes a body that runs until the connection closes
        if self._waiter is not None and not self._waiter.done():
            reason = f": {exc}" if exc is not None else ""
            self._fail(
                ConnectionResetError(f"the server closed the connection before the reply ended{reason}")
            )

    def _fail(self, exc: BaseException) -> None:
        waiter, self._waiter = self._waiter, None
        self.reusable = False
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)
        self.close()

    def _advance(self) -> None:
        try:
            self._parse()
        except ProtocolError as exc:
            self._fail(exc)

    def _parse(self) -> None:
        while self._head is None:
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self._buffer) > MAX_HEAD_BYTES:
                    raise ProtocolError("reply headers exceed 64 KB")
                return
            status, headers, keep_alive = _parse_head(bytes(self._buffer[:end]))
            del self._buffer[: end + 4]
            if 100 <= status < 200:
                continue  # an interim reply (100 Continue, 103 Early Hints): the real one follows
            self._head = (status, headers, keep_alive)
        status, headers, keep_alive = self._head
        if status in (204, 304):
            self._done(b"", keep_alive)
        elif "chunked" in headers.get("transfer-encoding", ""):
            self._parse_chunks(keep_alive)
        elif "content-length" in headers:
            size = _content_length(headers["content-length"])
            if len(self._buffer) >= size:
                body = bytes(self._buffer[:size])
                del self._buffer[:size]
                self._done(body, keep_alive)
        elif self._eof:
            body = bytes(self._buffer)
            self._buffer.clear()
            self._done(body, False)

    def _parse_chunks(self, keep_alive: bool) -> None:
        buffer = self._buffer
        while True:
            line_end = buffer.find(b"\r\n")
            if line_end < 0:
                return
            if self._trailers:
                if line_end == 0:  # the blank line after the trailers
                    del buffer[:2]
                    self._done(b"".join(self._chunks), keep_alive)
                    return
                del buffer[: line_end + 2]  # a trailer field: ignored
                continue
            try:
                size = int(bytes(buffer[:line_end]).split(b";", 1)[0].strip(), 16)
            except ValueError as exc:
                raise ProtocolError("a chunk size is not a hexadecimal number") from exc
            if size == 0:
                del buffer[: line_end + 2]
                self._trailers = True
                continue
            if len(buffer) < line_end + 2 + size + 2:
                return
            start = line_end + 2
            self._chunks.append(bytes(buffer[start : start + size]))
            del buffer[: start + size + 2]

    def _done(self, body: bytes, keep_alive: bool) -> None:
        assert self._head is not None
        status, headers, _ = self._head
        encoding = headers.get("content-encoding", "identity").strip().lower()
        if encoding in ("gzip", "x-gzip", "deflate"):
            try:
                body = zlib.decompress(body, 47 if encoding != "deflate" else zlib.MAX_WBITS)
            except zlib.error:
                if encoding != "deflate":
                    raise ProtocolError("the gzip body does not decode") from None
                body = zlib.decompress(body, -zlib.MAX_WBITS)  # raw deflate, as some servers send it
        elif encoding not in ("identity", ""):
            raise ProtocolError(f"the reply uses an unsupported content encoding {encoding!r}")
        waiter, self._waiter = self._waiter, None
        self.reusable = keep_alive and not self._buffer and not self._eof and not self.closed
        if waiter is not None and not waiter.done():
            waiter.set_result((status, headers, body))


def _parse_head(head: bytes) -> tuple[int, dict[str, str], bool]:
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
        raise ProtocolError(f"not an HTTP/1.x status line: {lines[0][:80]!r}")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep:
            raise ProtocolError(f"a header line without a colon: {line[:80]!r}")
        key = name.strip().lower()
        value = value.strip()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    connection = headers.get("connection", "").lower()
    keep_alive = "close" not in connection and (parts[0] != "HTTP/1.0" or "keep-alive" in connection)
    return int(parts[1]), headers, keep_alive


def _content_length(value: str) -> int:
    try:
        size = int(value.split(",")[0].strip())
    except ValueError as exc:
        raise ProtocolError(f"Content-Length is not a number: {value[:40]!r}") from exc
    if size < 0:
        raise ProtocolError("Content-Length is negative")
    return size
