"""Loopback servers that speak raw bytes: an HTTP server whose replies are exact bytes, and an HTTP proxy.

`RawServer` answers each request with the bytes its ``reply`` function returns (written chunk by chunk), so
tests can send replies no well-behaved server library would. `ConnectProxy` is a forward proxy: ``CONNECT``
tunnels (every tunnel goes to one loopback port, whatever host was asked for) and absolute-form requests
(forwarded to the same port); it records what it was asked.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

Reply = Callable[[bytes], list[bytes]]  # request head+body -> chunks to write (b"" = close)


@dataclass
class RawServer:
    """A loopback HTTP server whose replies are raw bytes, written chunk by chunk."""

    reply: Reply
    connections: int = 0
    open_now: int = 0
    most_open: int = 0
    requests: list[bytes] = field(default_factory=list)
    close_idle_after_reply: bool = False
    pause_s: float = 0.01
    port: int = 0
    server: asyncio.Server | None = None

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.open_now += 1
        self.most_open = max(self.most_open, self.open_now)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
                request = head + await reader.readexactly(length)
                self.requests.append(request)
                for chunk in self.reply(request):
                    if chunk == b"":
                        return
                    writer.write(chunk)
                    await writer.drain()
                    await asyncio.sleep(self.pause_s)
                if self.close_idle_after_reply:
                    return
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            return
        finally:
            self.open_now -= 1
            writer.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1/chat"

    async def start(self, tls: ssl.SSLContext | None = None) -> RawServer:
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", 0, ssl=tls)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.server.wait_closed(), 1)


def fixed(status: str, body: bytes, *extra: str) -> Reply:
    head = f"HTTP/1.1 {status}\r\nContent-Length: {len(body)}\r\n" + "".join(f"{h}\r\n" for h in extra)
    return lambda _request: [head.encode() + b"\r\n", body]


@dataclass
class ConnectProxy:
    """A loopback forward proxy that sends every tunnel and request to ``upstream_port`` on 127.0.0.1."""

    upstream_port: int
    #: Answer CONNECT with this status instead of tunnelling (e.g. 407).
    refuse_with: int | None = None
    heads: list[bytes] = field(default_factory=list)
    port: int = 0
    server: asyncio.Server | None = None

    @property
    def connects(self) -> list[bytes]:
        return [h for h in self.heads if h.startswith(b"CONNECT ")]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> ConnectProxy:
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.server.wait_closed(), 1)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()
            return
        self.heads.append(head)
        if head.startswith(b"CONNECT ") and self.refuse_with is not None:
            writer.write(b"HTTP/1.1 %d Refused\r\nContent-Length: 0\r\n\r\n" % self.refuse_with)
            await writer.drain()
            writer.close()
            return
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        if head.startswith(b"CONNECT "):
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        else:
            up_writer.write(head)  # the absolute-form request, forwarded as it came
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))

    def saw_request(self, marker: bytes) -> bool:
        return any(marker in h for h in self.heads)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()


Start = Callable[[Reply], Awaitable[RawServer]]


@contextlib.asynccontextmanager
async def raw_servers() -> AsyncIterator[Start]:
    """A function that starts `RawServer`s on loopback, each closed when the block ends."""
    started: list[RawServer] = []

    async def start(reply: Reply) -> RawServer:
        raw = await RawServer(reply).start()
        started.append(raw)
        return raw

    try:
        yield start
    finally:
        for raw in started:
            await raw.close()
