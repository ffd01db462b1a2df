"""The HTTP client refuses what a strict parser refuses, against a loopback server that writes exact bytes."""

from __future__ import annotations

import asyncio
import functools
import tracemalloc
import zlib
from collections.abc import AsyncIterator

import pytest

from datamill.core.errors import TransientError
from datamill.llm.http.http1 import MAX_BODY_BYTES
from datamill.llm.http.transport import HttpTransport
from raw_http import Start, fixed, raw_servers


@pytest.fixture
async def start() -> AsyncIterator[Start]:
    async with raw_servers() as start_server:
        yield start_server


def _chunked(name: str, value: str, *, close: bool = False) -> list[bytes]:
    head = f"HTTP/1.1 200 OK\r\n{name}: {value}\r\n" + ("Connection: close\r\n" if close else "") + "\r\n"
    chunks = [head.encode(), b'6\r\n{"a": \r\n', b"2\r\n1}\r\n", b"0\r\n\r\n"]
    return [*chunks, b""] if close else chunks


@pytest.mark.parametrize("value", ["Chunked", "CHUNKED", "chunked"])
async def test_chunked_is_understood_in_any_letter_case_on_a_kept_alive_connection(
    start: Start, value: str
) -> None:
    raw = await start(lambda _r: _chunked("Transfer-Encoding", value))
    transport = HttpTransport()

    replies = [await transport.post_json(raw.url, {}, timeout_s=5) for _ in range(2)]

    assert [r.json() for r in replies] == [{"a": 1}, {"a": 1}]
    assert raw.connections == 1  # the reply ended at its last chunk: the connection was reused
    await transport.aclose()


async def test_chunked_in_capitals_is_decoded_when_the_server_closes(start: Start) -> None:
    raw = await start(lambda _r: _chunked("TRANSFER-ENCODING", "Chunked", close=True))
    reply = await HttpTransport().post_json(raw.url, {}, timeout_s=5)
    assert reply.body == b'{"a": 1}'  # never the raw chunk framing


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        ("Content-Length: 5, 200", "Content-Length"),
        ("Content-Length: 5, 5", "Content-Length"),
        ("Content-Length: +5", "Content-Length"),
        ("Content-Length: -1", "Content-Length"),
        ("Content-Length: 5\r\nContent-Length: 6", "Duplicate Content-Length"),
        ("Content-Length: 99999999999999999999999", "Content-Length overflow"),
        ("Content-Length: 5\r\nTransfer-Encoding: chunked", "can't be present with"),
    ],
)
async def test_bad_lengths_are_refused(start: Start, header: str, reason: str) -> None:
    raw = await start(lambda _r: [f"HTTP/1.1 200 OK\r\n{header}\r\n\r\nhello".encode()])
    with pytest.raises(TransientError, match=reason):
        await HttpTransport().post_json(raw.url, {}, timeout_s=5)


@pytest.mark.parametrize("size", [b"0x5", b"+5", b"-5", b"5 5", b"g"])
async def test_chunk_sizes_that_are_not_plain_hexadecimal_are_refused(start: Start, size: bytes) -> None:
    head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    raw = await start(lambda _r: [head + size + b"\r\nhello\r\n0\r\n\r\n"])
    with pytest.raises(TransientError, match="chunk size"):
        await HttpTransport().post_json(raw.url, {}, timeout_s=5)


async def test_a_last_chunk_written_plus_zero_is_refused(start: Start) -> None:
    head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    raw = await start(lambda _r: [head + b"5\r\nhello\r\n+0\r\n\r\n"])
    with pytest.raises(TransientError, match="chunk size"):
        await HttpTransport().post_json(raw.url, {}, timeout_s=5)


@pytest.mark.parametrize("coding", ["gzip, chunked", "chunked, gzip", "chunked, chunked", "identity"])
async def test_transfer_codings_other_than_chunked_are_refused(start: Start, coding: str) -> None:
    raw = await start(lambda _r: _chunked("Transfer-Encoding", coding))
    with pytest.raises(TransientError, match="unsupported transfer coding"):
        await HttpTransport().post_json(raw.url, {}, timeout_s=5)


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        (b"HTTP/1.1 200 OK\nContent-Length: 2\n\n{}", "CR"),  # bare LF line ends
        (b"HTTP/1.1 200 OK\r\nX-A: 1\r\n  folded\r\nContent-Length: 2\r\n\r\n{}", "whitespace"),
        (b"HTTP/1.1 200 OK\r\nContent-Length : 2\r\n\r\n{}", "header field"),
        (b"HTTP/1.1 200 OK\r\nContent-Encoding: br\r\nContent-Length: 2\r\n\r\n{}", "content coding"),
    ],
)
async def test_malformed_heads_and_unknown_codings_are_refused(
    start: Start, reply: bytes, reason: str
) -> None:
    raw = await start(lambda _r: [reply])
    with pytest.raises(TransientError, match=reason):
        await HttpTransport().post_json(raw.url, {}, timeout_s=5)


async def test_a_switch_of_protocols_is_refused(start: Start) -> None:
    raw = await start(
        lambda _r: [b"HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: h2c\r\n\r\n"]
    )
    with pytest.raises(TransientError, match="switched protocols"):
        await HttpTransport().post_json(raw.url, {}, timeout_s=5)


async def test_a_head_over_64_kb_is_refused(start: Start) -> None:
    raw = await start(lambda _r: [b"HTTP/1.1 200 OK\r\n", b"X-Big: " + b"a" * 70_000 + b"\r\n"])
    with pytest.raises(TransientError, match="headers exceed 64 KB"):
        await HttpTransport().post_json(raw.url, {}, timeout_s=5)


async def test_a_body_over_the_cap_is_refused_before_it_is_read_whole(start: Start) -> None:
    raw = await start(fixed("200 OK", b"x" * 5000))
    with pytest.raises(TransientError, match="body exceeds 1000 bytes"):
        await HttpTransport(max_body_bytes=1000).post_json(raw.url, {}, timeout_s=5)


@functools.cache
def _bomb(decoded_mb: int, wbits: int) -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, wbits)
    block = b"\0" * (1 << 20)
    return b"".join(packer.compress(block) for _ in range(decoded_mb)) + packer.flush()


@pytest.mark.parametrize(
    ("coding", "wbits", "cap", "decoded_mb"),
    [("gzip", 31, MAX_BODY_BYTES, 64), ("deflate", 15, 1 << 20, 16), ("deflate", -15, 1 << 20, 16)],
)
async def test_a_compression_bomb_stops_at_the_cap_without_inflating_whole(
    start: Start, coding: str, wbits: int, cap: int, decoded_mb: int
) -> None:
    packed = _bomb(decoded_mb, wbits)  # a few dozen KB that would inflate to decoded_mb MB
    raw = await start(fixed("200 OK", packed, f"Content-Encoding: {coding}"))
    tracemalloc.start()
    try:
        with pytest.raises(TransientError, match=f"decodes to more than {cap} bytes"):
            await HttpTransport(max_body_bytes=cap).post_json(raw.url, {}, timeout_s=30)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < cap + (4 << 20)  # the cap and a few 1 MB steps, never the whole inflated body


async def test_a_compressed_body_within_the_cap_is_decoded(start: Start) -> None:
    packed = zlib.compress(b'{"text": "' + b"y" * 50_000 + b'"}')
    raw = await start(fixed("200 OK", packed, "Content-Encoding: deflate"))
    reply = await HttpTransport().post_json(raw.url, {}, timeout_s=5)
    assert reply.json() == {"text": "y" * 50_000}


async def test_a_truncated_gzip_body_is_refused(start: Start) -> None:
    packed = zlib.compressobj(9, zlib.DEFLATED, 31)
    body = packed.compress(b"z" * 10_000) + packed.flush()
    raw = await start(fixed("200 OK", body[: len(body) // 2], "Content-Encoding: gzip"))
    with pytest.raises(TransientError, match="gzip body is cut short"):
        await HttpTransport().post_json(raw.url, {}, timeout_s=5)


async def test_bytes_after_a_reply_end_the_connection(start: Start) -> None:
    raw = await start(lambda _r: [b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}HTTP/1.1 200 OK\r\n"])
    transport = HttpTransport()

    first = await transport.post_json(raw.url, {}, timeout_s=5)
    await asyncio.sleep(0.05)
    second = await transport.post_json(raw.url, {}, timeout_s=5)

    assert (first.json(), second.json()) == ({}, {})
    assert raw.connections == 2  # the connection with stray bytes on it was never reused
    await transport.aclose()
