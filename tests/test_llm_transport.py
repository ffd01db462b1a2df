"""The HTTP/1.1 transport against a loopback server that writes exact reply bytes."""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import AsyncIterator

import pytest

from datamill.core.errors import ConnectionConfigError, PermanentModelError, TransientError, UnreadReplyError
from datamill.llm.http.transport import HttpTransport
from raw_http import Start, fixed, raw_servers


@pytest.fixture
async def start() -> AsyncIterator[Start]:
    async with raw_servers() as start_server:
        yield start_server


async def test_a_reply_with_a_length_is_read_and_the_connection_kept_alive(start: Start) -> None:
    raw = await start(fixed("200 OK", b'{"a": 1}', "X-Request-Id: r1", "x-dup: 1", "X-Dup: 2"))
    transport = HttpTransport()

    first = await transport.post_json(raw.url, {"q": 1}, headers={"Authorization": "Bearer k"})
    second = await transport.post_json(raw.url, {"q": 2})

    assert (first.status, first.json(), second.json()) == (200, {"a": 1}, {"a": 1})
    assert first.headers["x-request-id"] == "r1"
    assert first.headers["x-dup"] == "1, 2"
    assert raw.connections == 1
    assert b"Authorization: Bearer k\r\n" in raw.requests[0]
    assert raw.requests[1].endswith(b'{"q":2}')
    await transport.aclose()
    assert transport.open_connections == 0


async def test_chunked_gzip_and_interim_replies_are_decoded(start: Start) -> None:
    packed = gzip.compress(b'{"text": "' + b"x" * 3000 + b'"}')
    half = len(packed) // 2

    def reply(_request: bytes) -> list[bytes]:
        return [
            b"HTTP/1.1 100 Continue\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Encoding: gzip\r\n\r\n",
            b"%x;ext=1\r\n" % half + packed[:half] + b"\r\n",
            b"%x\r\n" % (len(packed) - half) + packed[half:] + b"\r\n0\r\n",
            b"Trailer-Field: t\r\n\r\n",
        ]

    raw = await start(reply)
    transport = HttpTransport()
    result = await transport.post_json(raw.url, {})
    assert result.json() == {"text": "x" * 3000}
    assert (await transport.post_json(raw.url, {})).status == 200
    assert raw.connections == 1
    await transport.aclose()


async def test_connection_close_and_read_until_close_bodies(start: Start) -> None:
    raw = await start(lambda _r: [b"HTTP/1.1 503 Busy\r\nConnection: close\r\n\r\n", b"busy", b""])
    transport = HttpTransport()

    replies = [await transport.post_json(raw.url, {}) for _ in range(2)]

    assert [(r.status, r.body) for r in replies] == [(503, b"busy"), (503, b"busy")]
    assert raw.connections == 2  # the server said close: nothing was kept
    assert transport.open_connections == 0


async def test_an_idle_connection_the_server_closed_is_replaced(start: Start) -> None:
    raw = await start(fixed("200 OK", b"{}"))
    raw.close_idle_after_reply = True
    transport = HttpTransport()

    await transport.post_json(raw.url, {})
    await asyncio.sleep(0.05)  # the server closes the kept-alive connection
    assert (await transport.post_json(raw.url, {})).status == 200

    assert raw.connections == 2
    assert len(raw.requests) == 2  # each request was sent once
    await transport.aclose()


async def test_a_kept_alive_connection_dropped_unanswered_is_retried_on_a_new_one(start: Start) -> None:
    def reply(request: bytes) -> list[bytes]:
        if len(raw.requests) == 2:  # the server drops its kept-alive connection instead of answering
            return [b""]
        return [b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n", b"{}"]

    raw = await start(reply)
    transport = HttpTransport()
    await transport.post_json(raw.url, {})
    assert (await transport.post_json(raw.url, {})).status == 200
    assert raw.connections == 2
    assert len(raw.requests) == 3
    await transport.aclose()


async def test_a_reply_cut_short_is_a_transient_error(start: Start) -> None:
    raw = await start(lambda _r: [b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n", b'{"a"', b""])
    with pytest.raises(TransientError, match=r"connection error calling .*before the reply ended"):
        await HttpTransport().post_json(raw.url, {})


async def test_a_2xx_reply_cut_short_was_billed_and_an_error_reply_was_not(start: Start) -> None:
    ok = await start(lambda _r: [b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n", b'{"a"', b""])
    with pytest.raises(UnreadReplyError):
        await HttpTransport().post_json(ok.url, {})
    failed = await start(lambda _r: [b"HTTP/1.1 500 Oops\r\nContent-Length: 100\r\n\r\n", b'{"a"', b""])
    with pytest.raises(TransientError) as caught:
        await HttpTransport().post_json(failed.url, {})
    assert not isinstance(caught.value, UnreadReplyError)


async def test_a_reply_that_is_not_http_is_a_transient_error(start: Start) -> None:
    raw = await start(lambda _r: [b"SSH-2.0-OpenSSH\r\n\r\n"])
    with pytest.raises(TransientError, match=r"not a valid HTTP/1\.x reply"):
        await HttpTransport().post_json(raw.url, {})


async def test_a_slow_reply_times_out(start: Start) -> None:
    raw = await start(lambda _r: [b"HTTP/1.1 200 OK\r\n"] + [b"X-Wait: 1\r\n"] * 50)
    transport = HttpTransport()
    with pytest.raises(UnreadReplyError, match=r"timed out after 0.1s"):  # sent: the provider bills it
        await transport.post_json(raw.url, {}, timeout_s=0.1)
    assert transport.open_connections == 0  # a connection with a reply still coming is never reused


async def test_a_refused_connection_is_a_configuration_error(start: Start) -> None:
    raw = await start(fixed("200 OK", b"{}"))
    url = raw.url.replace(str(raw.port), "1")
    with pytest.raises(ConnectionConfigError, match=r"127\.0\.0\.1:1 refused the connection") as caught:
        await HttpTransport().post_json(url, {})
    assert caught.value.kind == "refused"


async def test_a_header_value_with_a_line_break_is_refused_before_sending(
    start: Start,
) -> None:
    raw = await start(fixed("200 OK", b"{}"))
    with pytest.raises(PermanentModelError, match="Authorization"):
        await HttpTransport().post_json(raw.url, {}, headers={"Authorization": "Bearer key\n"})
    assert raw.requests == []
