"""A lean HTTP/1.1 client connection for JSON APIs: one request at a time, kept alive between requests.

Why not aiohttp: a model call is one small POST and one small reply, and on a two-core machine the client's
CPU per call caps throughput. aiohttp spends about 150 µs of CPU per request at 256 in flight (headers
multidicts, timers, stream readers, tracing hooks); this connection writes the request in one ``write`` and
hands the reply bytes to httptools (llhttp, the parser of Node.js and uvicorn), about 2 µs a reply.

The parser is strict, and so is the client around it. A reply is refused (`ProtocolError`, the connection
dropped) when llhttp refuses it: a ``Content-Length`` that is a list (``5, 200``), signed or repeated with
another value, ``Content-Length`` beside ``Transfer-Encoding``, chunk sizes that are not plain hexadecimal
(``0x5``, ``+0``), bare LF line ends, folded header lines, bytes after a ``Connection: close`` reply; and
when this client refuses it: a transfer coding other than ``chunked`` (in any letter case), a status line
and headers over `MAX_HEAD_BYTES`, a body over the connection's ``max_body_bytes`` before or after decoding
(a gzip bomb stops at the cap, it is never inflated whole), an unknown content coding, or bytes the server
sends after the reply on a kept-alive connection.

What it speaks: ``Content-Length``, chunked and read-until-close bodies; interim 1xx replies are skipped;
``Connection: close`` and HTTP/1.0 replies end the connection after the reply; gzip and deflate bodies are
decoded (requests ask for ``identity``, but a server may compress anyway). It does not follow redirects or
pipeline requests. TLS comes from the event loop (``ssl`` module); proxies are `datamill.llm.http.proxies`.
"""

from __future__ import annotations

import asyncio
import zlib
from typing import cast

import httptools

#: The most bytes a reply's status line and headers may take.
MAX_HEAD_BYTES = 64 * 1024
#: The most bytes a reply's body may take, on the wire and after decoding (a connection's default).
MAX_BODY_BYTES = 32 * 1024 * 1024

_Reply = tuple[int, dict[str, str], bytes]
_INFLATE_STEP = 1 << 20


class ProtocolError(Exception):
    """A reply that is not valid HTTP/1.1 (or uses a feature this client does not speak)."""


class Http1Connection(asyncio.Protocol):
    """One connection; `request` sends a request and waits for its whole reply."""

    def __init__(self, max_body_bytes: int = MAX_BODY_BYTES) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        #: Whether any reply bytes arrived since the last request was sent (a reused connection that the
        #: server closed before answering is safe to retry on a new one).
        self.answered = False
        self.reusable = False
        self.max_body_bytes = max_body_bytes
        self._parser = httptools.HttpResponseParser(self)
        self._eof = False
        self._waiter: asyncio.Future[_Reply] | None = None
        self._reset()

    def _reset(self) -> None:
        self._headers: dict[str, str] = {}
        self._body: list[bytes] = []
        self._size = 0
        self._head_size = 0
        self._status = 0  # the final reply's status, set once its headers are complete

    # -- asyncio.Protocol --------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport; uvloop's does not subclass asyncio.Transport, so no isinstance check.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if self._waiter is None:  # bytes nobody asked for: the connection cannot be trusted any more
            self.close()
            return
        self.answered = True
        if not self._status:
            self._head_size += len(data)
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(ProtocolError("the server switched protocols (101), which this client does not speak"))
            return
        except httptools.HttpParserError as exc:
            cause = exc.__context__
            self._fail(
                cause
                if isinstance(cause, ProtocolError)
                else ProtocolError(f"not a valid HTTP/1.x reply: {exc}")
            )
            return
        if not self._status and self._head_size > MAX_HEAD_BYTES:
            self._fail(ProtocolError(f"reply headers exceed {MAX_HEAD_BYTES // 1024} KB"))

    def eof_received(self) -> bool:
        self._eof = True
        self._finish_or_fail()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._eof = True
        self._finish_or_fail(exc)

    # -- httptools callbacks -----------------------------------------------------------------------------

    def on_message_begin(self) -> None:
        if self._waiter is None:
            raise ProtocolError("the server sent bytes after its reply")

    def on_header(self, name: bytes, value: bytes) -> None:
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        headers = self._headers
        headers[key] = f"{headers[key]}, {text}" if key in headers else text

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        if status < 200:
            return  # an interim reply (100 Continue, 103 Early Hints): the real one follows
        coding = self._headers.get("transfer-encoding")
        if coding is not None and coding.strip().lower() != "chunked":
            raise ProtocolError(f"the reply uses an unsupported transfer coding {coding[:40]!r}")
        self._status = status

    def on_body(self, body: bytes) -> None:
        self._size += len(body)
        if self._size > self.max_body_bytes:
            raise ProtocolError(f"the reply body exceeds {self.max_body_bytes} bytes")
        self._body.append(body)

    def on_message_complete(self) -> None:
        if not self._status:
            self._reset()  # the end of an interim reply
            return
        self._done(self._parser.should_keep_alive())

    # -- requests ----------------------------------------------------------------------------------------

    @property
    def reply_status(self) -> int:
        """The status of the reply being read: 0 until its headers are complete."""
        return self._status

    async def request(self, data: bytes) -> _Reply:
        """Send one serialised request and return (status, lower-cased headers, body)."""
        self.answered = self.reusable = False
        if self.transport is None or self.closed or self.transport.is_closing():
            raise ConnectionResetError("the connection is closed")
        waiter: asyncio.Future[_Reply] = asyncio.get_running_loop().create_future()
        self._waiter = waiter
        self.transport.write(data)
        return await waiter

    def expire(self) -> None:
        """Fail the request in flight with TimeoutError (its deadline passed) and drop the connection."""
        if self._waiter is not None and not self._waiter.done():
            self._fail(TimeoutError("the request's deadline passed"))

    def close(self) -> None:
        self.closed = True
        self.reusable = False
        if self.transport is not None:
            self.transport.abort()

    # -- replies -----------------------------------------------------------------------------------------

    def _finish_or_fail(self, exc: Exception | None = None) -> None:
        if self._waiter is None or self._waiter.done():
            return
        headers = self._headers
        if self._status and "content-length" not in headers and "transfer-encoding" not in headers:
            self._done(False)  # a body that runs until the connection closes
            return
        reason = f": {exc}" if exc is not None else ""
        self._fail(ConnectionResetError(f"the server closed the connection before the reply ended{reason}"))

    def _fail(self, exc: BaseException) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)
        self.close()

    def _done(self, keep_alive: bool) -> None:
        status, headers, chunks = self._status, self._headers, self._body
        self._reset()
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        encoding = headers.get("content-encoding")
        if encoding is not None:
            try:
                body = decode_body(body, encoding, self.max_body_bytes)
            except ProtocolError as exc:
                self._fail(exc)
                return
        waiter, self._waiter = self._waiter, None
        self.reusable = keep_alive and not self._eof and not self.closed
        if waiter is not None and not waiter.done():
            waiter.set_result((status, headers, body))


def decode_body(body: bytes, encoding: str, limit: int) -> bytes:
    """``body`` decoded from its content coding, refused once it decodes to more than ``limit`` bytes.

    Raises:
        ProtocolError: an unknown coding, a body that does not decode, or one larger than ``limit`` decoded.
    """
    coding = encoding.strip().lower()
    if coding in ("identity", ""):
        return body
    if coding in ("gzip", "x-gzip"):
        return _inflate(body, 16 + zlib.MAX_WBITS, limit, "gzip")
    if coding == "deflate":
        try:
            return _inflate(body, zlib.MAX_WBITS, limit, "deflate")
        except zlib.error:
            return _inflate(body, -zlib.MAX_WBITS, limit, "deflate")  # raw deflate, as some servers send it
    raise ProtocolError(f"the reply uses an unsupported content coding {encoding[:40]!r}")


def _inflate(body: bytes, wbits: int, limit: int, name: str) -> bytes:
    """Inflate in 1 MB steps, so a bomb stops near ``limit`` bytes instead of at twice that or more."""
    inflater = zlib.decompressobj(wbits)
    pieces: list[bytes] = []
    size = 0
    data = body
    try:
        while True:
            piece = inflater.decompress(data, _INFLATE_STEP)
            size += len(piece)
            if size > limit:
                raise ProtocolError(f"the {name} body decodes to more than {limit} bytes")
            pieces.append(piece)
            data = inflater.unconsumed_tail
            if not data or inflater.eof:
                break
    except zlib.error:
        if name == "deflate" and wbits > 0:
            raise
        raise ProtocolError(f"the {name} body does not decode") from None
    if not inflater.eof:
        raise ProtocolError(f"the {name} body is cut short")
    return pieces[0] if len(pieces) == 1 else b"".join(pieces)
